"""Four steps n1 -> n2 -> n3 -> n4 for durability tests.

Each node appends `tag:node` to `log` and, on completion, records a side effect
(run id, node, attempt) in the test database table `test_side_effect`, so tests
can count how often each step really ran. `gates` maps a node to a gate name
template ("{run_id}", "{attempt}" are filled in): the node waits until the test
opens that gate (a row in `test_gate` plus NOTIFY), then finishes; it announces that it waits
(a row in `test_gate_waiter`, with the task's key, plus NOTIFY), so a test can tell where an
attempt is.
The test database comes from GRAPHRUN_TEST_DSN. With GRAPHRUN_TEST_STEP_LOG set,
each node also appends when it starts and when it stops (finished, failed or
cancelled) to that file, one JSON line each with the system's monotonic clock
(comparable across the replicas of one machine), so tests can check that no step
ran on two replicas at once.
"""

import json
import operator
import os
import time
from typing import Annotated

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    gates: dict[str, str]
    tag: str


async def wait_for_gate(name: str, task_key: str = "") -> None:
    async with await psycopg.AsyncConnection.connect(os.environ["GRAPHRUN_TEST_DSN"], autocommit=True) as conn:
        await conn.execute("LISTEN test_gate")
        # Tell the test this node waits here (tests/helpers.py: reached_gate).
        await conn.execute("INSERT INTO test_gate_waiter (name, task_key) VALUES (%s, %s)", (name, task_key))
        await conn.execute("SELECT pg_notify('test_gate_waiter', %s)", (name,))
        cur = await conn.execute("SELECT 1 FROM test_gate WHERE name = %s", (name,))
        if await cur.fetchone():
            return
        async for note in conn.notifies():
            if note.payload == name:
                return


async def record(run_id: str, node: str, attempt: int) -> None:
    async with await psycopg.AsyncConnection.connect(os.environ["GRAPHRUN_TEST_DSN"], autocommit=True) as conn:
        await conn.execute("INSERT INTO test_side_effect (run_id, node, attempt) VALUES (%s, %s, %s)",
                           (run_id, node, attempt))


def note_step(run_id: str, node: str, attempt: int, phase: str) -> None:
    path = os.environ.get("GRAPHRUN_TEST_STEP_LOG")
    if path:
        line = json.dumps({"run_id": run_id, "node": node, "attempt": attempt, "phase": phase,
                           "at": time.monotonic(), "pid": os.getpid()})
        with open(path, "a") as log:  # one short append: atomic, whoever else writes
            log.write(line + "\n")


def _node(name: str):
    async def node(state: State, config: RunnableConfig) -> dict:
        run = config["configurable"].get("__graphrun_run")  # graphrun's attempt (its CheckpointedRun)
        run_id, attempt = run.fence if run is not None else ("", 0)
        note_step(run_id, name, attempt, "start")
        try:
            gate = (state.get("gates") or {}).get(name)
            if gate:
                # The task's key, as the README tells nodes to make it: the same in every attempt.
                task_key = f"{config['metadata']['run_id']}:{config['configurable']['checkpoint_ns']}"
                await wait_for_gate(gate.format(run_id=run_id, attempt=attempt), task_key)
            await record(run_id, name, attempt)
        finally:
            note_step(run_id, name, attempt, "end")
        return {"log": [f"{state.get('tag', '')}:{name}"]}

    node.__name__ = name
    return node


builder = StateGraph(State)
for name in ("n1", "n2", "n3", "n4"):
    builder.add_node(name, _node(name))
builder.add_edge(START, "n1")
builder.add_edge("n1", "n2")
builder.add_edge("n2", "n3")
builder.add_edge("n3", "n4")
builder.add_edge("n4", END)
graph = builder.compile()
