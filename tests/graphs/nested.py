"""A graph whose first node is a subgraph: `inner` (a subgraph: one -> two), then `outer`.

The subgraph writes checkpoints of its own (in its namespace) while it runs, so a
run of it on a new thread writes into that namespace right as it starts.
"""

import operator
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _step(name: str):
    def step(state: State) -> dict:
        return {"log": [name]}

    step.__name__ = name
    return step


inner = StateGraph(State)
inner.add_node("one", _step("inner:one"))
inner.add_node("two", _step("inner:two"))
inner.add_edge(START, "one")
inner.add_edge("one", "two")
inner.add_edge("two", END)

builder = StateGraph(State)
builder.add_node("inner", inner.compile())
builder.add_node("outer", _step("outer"))
builder.add_edge(START, "inner")
builder.add_edge("inner", "outer")
builder.add_edge("outer", END)
graph = builder
