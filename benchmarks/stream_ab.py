"""A/B of two code trees on a stream's first event and first token.

    python -m benchmarks.stream_ab --old /path/to/old/checkout [-n 100] [--thread] [--graph agent|paced]

Each tree's server runs as a replica on one scratch database; a `Stream` of each and the same
graph's `astream(stream_mode="messages")` in-process take turns in a new (seeded) random order,
each read to its end, each `Stream` after a bare gRPC call. Prints each tree's p50 time to the
first event and to the first token, the bare call's and in-process's first token. `--thread`
continues one thread per side (a chat UI's case) instead of a new thread per stream; `--graph
paced` streams a token every 5 ms, as a model does, instead of the example agent's burst.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import random
import statistics
import time
import uuid

from benchmarks import bench
from benchmarks.ab import HERE, replica

PACED = {"n": 20, "pause": 0.005, "messages": [{"role": "user", "content": "go"}]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, type=pathlib.Path, help="the tree to compare against")
    parser.add_argument("--new", default=HERE.parent, type=pathlib.Path, help="the tree to measure (default: this one)")
    parser.add_argument("-n", type=int, default=100, help="streams of each")
    parser.add_argument("--thread", action="store_true", help="continue one thread per side")
    parser.add_argument("--graph", default="agent", choices=["agent", "paced"])
    args = parser.parse_args()
    input = bench.QUESTION if args.graph == "agent" else PACED
    order, warmup = random.Random(2), 5
    with bench.scratch_database() as dsn:
        replicas = {name: await replica(name, dsn, tree.resolve()).start()
                    for name, tree in (("OLD", args.old), ("NEW", args.new))}
        local = await bench.InProcess(dsn).open()
        graph = local.graphs[args.graph]
        services = {name: bench.Service(r) for name, r in replicas.items()}
        threads = {name: str(uuid.uuid4()) for name in ("OLD", "NEW", "in-process")}
        firsts: dict[str, list[tuple[float, float]]] = {"OLD": [], "NEW": []}
        bare, local_tokens = [], []
        try:
            for i in range(warmup + args.n):
                sides = ["OLD", "NEW", "in-process"]
                order.shuffle(sides)
                for side in sides:
                    thread_id = threads[side] if args.thread else str(uuid.uuid4())
                    if side == "in-process":
                        token = await bench.local_first_token(graph, input, thread_id)
                        if i >= warmup:
                            local_tokens.append(token * 1000)
                        continue
                    start = time.perf_counter()
                    await services[side].bare_call()
                    call = (time.perf_counter() - start) * 1000
                    event, token = await bench.first_event_and_token(services[side], args.graph, input, thread_id)
                    if i >= warmup:
                        bare.append(call)
                        firsts[side].append((event * 1000, token * 1000))
        finally:
            await local.close()
            for r in replicas.values():
                await r.close()
    for side, times in firsts.items():
        print(f"{side}: first event p50 {statistics.median(t[0] for t in times):.2f} ms, "
              f"first token p50 {statistics.median(t[1] for t in times):.2f} ms")
    print(f"bare gRPC call p50 {statistics.median(bare):.2f} ms; "
          f"in-process first token p50 {statistics.median(local_tokens):.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
