"""Join latency across replicas: how long after an event happens on replica A a client
joined through replica B receives it. Also the takeover time after SIGKILL.

    python -m benchmarks.join_latency
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time

from benchmarks.bench import CONFIG, pct, scratch_database, spec, table
from graphrun.v1 import run_service_pb2 as pb
from tests.support.replicas import Replica


async def main() -> None:
    with scratch_database() as dsn:
        a, b = await asyncio.gather(Replica("a", dsn, CONFIG, lease_seconds=2).start(),
                                    Replica("b", dsn, CONFIG, lease_seconds=2).start())
        try:
            lags = []
            for _ in range(20):
                run = (await a.runs.Create(pb.RunServiceCreateRequest(
                    spec=spec("tokens", {"n": 200, "messages": [{"role": "user", "content": "go"}]}),
                    stream_mode=["messages"]))).run
                async for response in b.runs.Join(pb.RunServiceJoinRequest(run_id=run.run_id, batch_events=True)):
                    now = time.time()
                    lags.extend(now - e.event_time.ToNanoseconds() / 1e9 for e in response.events)
            table("Join from another replica: event produced on A -> received on B (ms)",
                  ["events", "p50", "p95", "p99"],
                  [[len(lags), f"{pct(lags, 50) * 1000:.1f}", f"{pct(lags, 95) * 1000:.1f}",
                    f"{pct(lags, 99) * 1000:.1f}"]])

            takeovers = []
            for _ in range(3):
                run = (await a.runs.Create(pb.RunServiceCreateRequest(spec=spec("hang", {"log": []}),
                                                                      stream_mode=["updates"]))).run
                async for response in b.runs.Join(pb.RunServiceJoinRequest(run_id=run.run_id)):
                    break  # it is running on a
                a.signal(signal.SIGKILL)
                killed = time.monotonic()
                await a.exited()
                async for response in b.runs.Join(pb.RunServiceJoinRequest(run_id=run.run_id, after_sequence=1)):
                    if response.event.HasField("metadata"):
                        takeovers.append(time.monotonic() - killed)
                        break
                await b.runs.Cancel(pb.RunServiceCancelRequest(run_id=run.run_id, wait=True))
                await a.close()
                a = await Replica("a", dsn, CONFIG, lease_seconds=2).start()
            table("Takeover after SIGKILL (lease 2 s; s)", ["n", "median", "max"],
                  [[len(takeovers), f"{statistics.median(takeovers):.2f}", f"{max(takeovers):.2f}"]])
        finally:
            await asyncio.gather(a.close(), b.close())


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
