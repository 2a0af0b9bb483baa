"""A graph that misbehaves on request, for isolation tests: first -> culprit (`graph`), or
culprit alone (`culprit_first`).

`culprit` misbehaves as its input says: `block_seconds` holds the event loop
with time.sleep inside `async def` (what a synchronous client called from an
async node does); `unstorable` returns a value no checkpointer can serialise;
`swallow_cancel` waits forever and ignores the first cancellation it gets (as
code that catches CancelledError does, or Python 3.11's wait_for when one
arrives as its inner await completes); `hold_until_gate` holds the event loop until
the test opens that gate (tests/graphs/durable.py's gates, polled with a
synchronous client), for at most 3 s, and says in `log` whether it saw it open.
"""

import asyncio
import operator
import os
import time
from typing import Annotated, Any

import psycopg
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[Any], operator.add]
    block_seconds: float
    unstorable: bool
    swallow_cancel: bool
    hold_until_gate: str


async def first(state: State) -> dict:
    return {"log": ["first"]}


def _gate_opens(name: str, seconds: float) -> bool:
    """Poll for the gate without giving the event loop back (what a synchronous client does)."""
    give_up = time.monotonic() + seconds
    with psycopg.connect(os.environ["GRAPHRUN_TEST_DSN"], autocommit=True) as conn:
        while time.monotonic() < give_up:
            if conn.execute("SELECT 1 FROM test_gate WHERE name = %s", (name,)).fetchone():
                return True
            time.sleep(0.01)  # noqa: ASYNC251 - the misbehaviour under test
    return False


async def culprit(state: State) -> dict:
    if state.get("hold_until_gate"):
        return {"log": ["culprit saw the gate" if _gate_opens(state["hold_until_gate"], 3.0) else "culprit gave up"]}
    if state.get("block_seconds"):
        time.sleep(state["block_seconds"])  # noqa: ASYNC251 - the misbehaviour under test
    if state.get("swallow_cancel"):
        forever = asyncio.Event()
        try:
            await forever.wait()
        except asyncio.CancelledError:
            pass  # the misbehaviour under test
        await forever.wait()
    if state.get("unstorable"):
        return {"log": [object()]}
    return {"log": ["culprit"]}


builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("culprit", culprit)
builder.add_edge(START, "first")
builder.add_edge("first", "culprit")
builder.add_edge("culprit", END)
graph = builder

alone = StateGraph(State)
alone.add_node("culprit", culprit)
alone.add_edge(START, "culprit")
alone.add_edge("culprit", END)
culprit_first = alone
