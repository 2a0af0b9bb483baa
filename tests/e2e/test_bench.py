"""The benchmark suite the README quotes still runs, and a Wait still costs no more database round
trips than the same graph run in-process (what the batching into checkpoint transactions buys):
fewer on a new thread, as many on an existing one.

Timings are printed, never asserted: speed is measured by `make bench`, not by tests.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def table_rows(output: str, title: str) -> dict[str, list[str]]:
    """The rows of one printed markdown table, by their first cell."""
    lines = output[output.index(title):].splitlines()[2:]  # past the title and the blank line
    rows = {}
    for line in lines[2:]:  # past the header and its rule
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def quick_bench(admin_dsn: str, sections: str) -> str:
    """What `benchmarks.bench --quick --only <sections>` prints (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--quick", "--only", sections], cwd=ROOT,
        env={**os.environ, "GRAPHRUN_BENCH_ADMIN_DSN": admin_dsn}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_quick_benchmark_prints_its_tables_and_a_wait_saves_round_trips(admin_dsn):
    out = quick_bench(admin_dsn, "latency,cost,cpu")

    latency = table_rows(out, "### Wait latency")
    assert set(latency) == {"pair", "agent"}
    for cells in latency.values():  # every column measured (the overhead may be negative)
        figures = [float(c) for c in cells]
        assert len(figures) == 9 and min(figures[:6] + figures[8:]) > 0, cells

    cost = table_rows(out, "### Database work per run")
    assert float(cost["graphrun Wait"][0]) < float(cost["in-process ainvoke"][0]), cost
    # On an existing thread the acceptance rides ahead of LangGraph's read: no round trip of its own
    # (the fraction above in-process's is the server's lease renewals and claim queries meanwhile).
    turn = "a turn of a thread (chat)"
    assert float(cost[f"graphrun Wait, {turn}"][0]) < float(cost[f"in-process ainvoke, {turn}"][0]) + 1, cost

    cpu = table_rows(out, "### CPU per run")
    assert len(cpu) == 4, cpu
    for name, (wall, caller, server, database) in cpu.items():  # each process's share is measured
        assert float(wall) > 0 and float(caller) > 0, cpu
        assert (float(server or 0) > 0) == name.startswith("graphrun"), cpu


def test_the_stream_join_and_growth_tables_have_every_row_beside_in_process(admin_dsn):
    out = quick_bench(admin_dsn, "stream,join,growth")

    tokens = table_rows(out, "### Token events through Stream")
    assert set(tokens) == {"1 stream", "100 concurrent streams", "1 stream, one event per response",
                           "100 streams, one event per response"}
    for count, graphrun, here, ratio in tokens.values():
        assert int(count) > 0 and float(graphrun) > 0 and float(here) > 0 and float(ratio) > 0
    first = table_rows(out, "### Stream latency")
    assert first["time to first token (agent, demo model)"][2]  # the in-process column is filled
    joined = table_rows(out, "### Join through replica B")
    assert set(joined) == {"paced", "tokens"} and all(int(cells[0]) > 0 for cells in joined.values())
    growth = table_rows(out, "### Wait latency as a thread grows")
    assert {"10"} <= set(growth) and all(len(cells) == 5 for cells in growth.values())


def test_the_ab_script_compares_two_trees_in_both_start_orders(admin_dsn):
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.ab", "--old", str(ROOT), "--graph", "chat", "-n", "3", "--rounds", "1"],
        cwd=ROOT, env={**os.environ, "GRAPHRUN_BENCH_ADMIN_DSN": admin_dsn}, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[OLD started first]" in done.stdout and "[NEW started first]" in done.stdout, done.stdout
    assert "NEW-OLD over 2 rounds" in done.stdout, done.stdout
