"""A graph that misbehaves on request, for isolation tests: first -> culprit.

`culprit` misbehaves as its input says: `block_seconds` holds the event loop
with time.sleep inside `async def` (what a synchronous client called from an
async node does); `unstorable` returns a value no checkpointer can serialise;
`swallow_cancel` waits forever and ignores the first cancellation it gets (as
code that catches CancelledError does, or Python 3.11's wait_for when one
arrives as its inner await completes).
"""

import asyncio
import operator
import time
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[Any], operator.add]
    block_seconds: float
    unstorable: bool
    swallow_cancel: bool


async def first(state: State) -> dict:
    return {"log": ["first"]}


async def culprit(state: State) -> dict:
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
