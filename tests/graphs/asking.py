"""Graphs that call interrupt() away from the root graph's single path: inside a
subgraph (`subgraph_asks`), and in two parallel branches at once (`parallel_asks`).
Each answer is appended to `answers`."""

import operator
from typing import Annotated

from langgraph.graph import START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    answers: Annotated[list, operator.add]


def _ask(name: str):
    def ask(state: State) -> dict:
        return {"answers": [interrupt({"question": f"{name}?"})]}

    ask.__name__ = name
    return ask


_inner = StateGraph(State)
_inner.add_node("ask", _ask("inner"))
_inner.add_edge(START, "ask")

_outer = StateGraph(State)
_outer.add_node("sub", _inner.compile())
_outer.add_edge(START, "sub")
subgraph_asks = _outer

_parallel = StateGraph(State)
for _name in ("left", "right"):
    _parallel.add_node(_name, _ask(_name))
    _parallel.add_edge(START, _name)
parallel_asks = _parallel
