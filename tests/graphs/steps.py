"""A three-step pipeline for tests: first -> second -> third.

Each node appends its name to `log`. Input flags steer it:
`fail_at` names a node that raises ValueError; `hang_at` names a node that
waits until the run is stopped (for deadline tests). `second` also emits a
custom stream event.
"""

import asyncio
import operator
from typing import Annotated

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    fail_at: str
    hang_at: str
    nul: bool  # `third` writes a NUL character, which PostgreSQL's jsonb cannot hold


def _node(name: str):
    async def node(state: State) -> dict:
        if state.get("fail_at") == name:
            raise ValueError(f"{name} failed on purpose")
        if state.get("hang_at") == name:
            await asyncio.Event().wait()  # until the run is cancelled
        if name == "second":
            get_stream_writer()({"progress": "halfway"})
        if name == "third" and state.get("nul"):
            return {"log": ["third\x00"]}
        return {"log": [name]}

    node.__name__ = name
    return node


builder = StateGraph(State)
for name in ("first", "second", "third"):
    builder.add_node(name, _node(name))
builder.add_edge(START, "first")
builder.add_edge("first", "second")
builder.add_edge("second", "third")
builder.add_edge("third", END)
graph = builder  # an uncompiled StateGraph: the server compiles it with its checkpointer
