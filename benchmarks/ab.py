"""A/B of two code trees: which one answers a Wait faster, and by how much.

    python -m benchmarks.ab --old /path/to/old/checkout [--new .] [--graph pair|agent|chat] [-n 300] [--rounds 3]

Each tree's server runs as a replica (its `server/` and `client/` first on PYTHONPATH) on one
scratch database, next to the same graph run in-process; calls interleave in a new random
order each round (`bench.interleaved`), so the machine's drift hits all alike. A session is run twice, the old replica started first, then the
new one: on this machine the replica started first was 0.2-0.3 ms slower per Wait in A/A runs,
which an A/B started in one order reads as a gain or a loss. Prints the median NEW-OLD of
every round (ms; negative: the new tree is faster) and each side's ratio to in-process.

`--graph chat` continues one thread per caller, starting a new one every 100 turns (0-200
messages): the cost of a growing state. Make the old tree with `git worktree add DIR COMMIT`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import statistics
import uuid

from benchmarks import bench
from tests.support.replicas import Replica

HERE = pathlib.Path(__file__).resolve().parent

INPUTS = {"pair": {"log": []}, "agent": bench.QUESTION}


def replica(name: str, dsn: str, tree: pathlib.Path) -> Replica:
    server = Replica(name, dsn, bench.CONFIG)
    server.env["PYTHONPATH"] = os.pathsep.join([str(tree / "server"), str(tree / "client")])
    return server


def callers(graph: str, services: dict[str, bench.Service], local: bench.InProcess) -> dict[str, callable]:
    if graph != "chat":
        return {**{name: (lambda s=svc: s.wait(graph, INPUTS[graph])) for name, svc in services.items()},
                "in-process": lambda: local.invoke(graph, INPUTS[graph])}
    turns = {name: 0 for name in [*services, "in-process"]}
    threads = {name: str(uuid.uuid4()) for name in turns}

    def turn(name: str):
        turns[name] += 1
        if turns[name] % 100 == 0:
            threads[name] = str(uuid.uuid4())
        message = {"messages": [{"role": "user", "content": f"turn {turns[name]}"}]}
        if name == "in-process":
            return local.invoke("chat", message, threads[name])
        return services[name].wait("chat", message, threads[name])

    return {name: (lambda n=name: turn(n)) for name in turns}


async def session(trees: dict[str, pathlib.Path], first: str, args, differences: list[float]) -> None:
    with bench.scratch_database() as dsn:
        order = [first] + [name for name in trees if name != first]
        replicas = {name: await replica(name, dsn, trees[name]).start() for name in order}
        local = await bench.InProcess(dsn).open()
        try:
            calls = callers(args.graph, {name: bench.Service(r) for name, r in replicas.items()}, local)
            for _ in range(args.rounds):
                times = await bench.interleaved(calls, args.n)
                p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
                differences.append(p50["NEW"] - p50["OLD"])
                print(f"[{first} started first] OLD {p50['OLD']:.2f} NEW {p50['NEW']:.2f} "
                      f"in-process {p50['in-process']:.2f} ms | NEW-OLD {differences[-1]:+.2f} ms | "
                      f"OLD/in-process {p50['OLD'] / p50['in-process']:.3f} "
                      f"NEW/in-process {p50['NEW'] / p50['in-process']:.3f}", flush=True)
        finally:
            await local.close()
            for r in replicas.values():
                await r.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", required=True, type=pathlib.Path, help="the tree to compare against")
    parser.add_argument("--new", default=HERE.parent, type=pathlib.Path, help="the tree to measure (default: this one)")
    parser.add_argument("--graph", default="pair", choices=["pair", "agent", "chat"])
    parser.add_argument("-n", type=int, default=300, help="calls of each per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per start order")
    args = parser.parse_args()
    trees = {"OLD": args.old.resolve(), "NEW": args.new.resolve()}
    differences: list[float] = []
    for first in ("OLD", "NEW"):
        await session(trees, first, args, differences)
    print(f"NEW-OLD over {len(differences)} rounds: median {statistics.median(differences):+.3f} ms, "
          f"mean {statistics.mean(differences):+.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
