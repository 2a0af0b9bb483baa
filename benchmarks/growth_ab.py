"""A/B of two code trees on a growing thread: each tree's replica continues one chat thread, and
the same graph in-process another, a turn of each in turn (a new random order every turn).

    python -m benchmarks.growth_ab --old /path/to/old/checkout [--turns 200] [--granularity LOW|FULL]

Prints, at turns 10, 50, 100, 150, 200, ...: each side's median latency over the 10 turns up to
there and its ratio to in-process; then the server CPU each replica spent a turn (from /proc),
which drifts less with the machine than latency. Make the old tree with `git worktree add DIR
COMMIT`; it runs on this tree's database schema, so compare trees whose SQL functions agree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import random
import statistics
import time
import uuid

from benchmarks import bench
from benchmarks.ab import replica

HERE = pathlib.Path(__file__).resolve().parent


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, type=pathlib.Path, help="the tree to compare against")
    parser.add_argument("--new", default=HERE.parent, type=pathlib.Path, help="the tree to measure (default: this one)")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--granularity", default="LOW", choices=["LOW", "FULL"])
    args = parser.parse_args()
    granularity = f"GRANULARITY_{args.granularity}"
    order = random.Random(1)
    with bench.scratch_database() as dsn:
        replicas = {name: await replica(name, dsn, tree.resolve()).start()
                    for name, tree in (("OLD", args.old), ("NEW", args.new))}
        local = await bench.InProcess(dsn).open()
        try:
            services = {name: bench.Service(r) for name, r in replicas.items()}
            threads = {name: str(uuid.uuid4()) for name in ("OLD", "NEW", "in-process")}
            took: dict[str, dict[int, float]] = {name: {} for name in threads}
            cpu = dict.fromkeys(replicas, 0.0)
            for turn in range(1, args.turns + 1):
                message = {"messages": [{"role": "user", "content": f"turn {turn}"}]}
                names = list(threads)
                order.shuffle(names)
                for name in names:
                    pid = replicas[name].proc.pid if name in replicas else None
                    before = _cpu_seconds(pid) if pid else 0.0
                    start = time.perf_counter()
                    if pid:
                        await services[name].wait("chat", message, threads[name], granularity=granularity)
                    else:
                        await local.invoke("chat", message, threads[name])
                    took[name][turn] = time.perf_counter() - start
                    if pid:
                        cpu[name] += _cpu_seconds(pid) - before
            for mark in (m for m in (10, 50, 100, 150, 200, 300, 400) if m <= args.turns):
                window = range(max(1, mark - 9), mark + 1)
                p50 = {name: statistics.median(took[name][t] for t in window) * 1000 for name in threads}
                here = p50["in-process"]
                print(f"turn {mark}: OLD {p50['OLD']:.2f} NEW {p50['NEW']:.2f} in-process {here:.2f} ms | "
                      f"OLD/in-process {p50['OLD'] / here:.2f} NEW/in-process {p50['NEW'] / here:.2f}")
            print(f"server CPU a turn: OLD {cpu['OLD'] / args.turns * 1000:.2f} ms, "
                  f"NEW {cpu['NEW'] / args.turns * 1000:.2f} ms")
        finally:
            await local.close()
            for r in replicas.values():
                await r.close()


if __name__ == "__main__":
    asyncio.run(main())
