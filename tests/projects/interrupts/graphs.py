"""Graphs for LangGraph's interrupt semantics: two questions asked at once, and a plain chain."""

import operator
from typing import Annotated

from langgraph.graph import START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    topic: str
    answers: Annotated[list[str], operator.add]


def ask_legal(state: State) -> State:
    return {"answers": [f"legal: {interrupt('legal ok?')}"]}


def ask_finance(state: State) -> State:
    return {"answers": [f"finance: {interrupt('finance ok?')}"]}


parallel = (StateGraph(State).add_node(ask_legal).add_node(ask_finance)
            .add_edge(START, "ask_legal").add_edge(START, "ask_finance").compile())


def first(state: State) -> State:
    return {"answers": ["first"]}


def second(state: State) -> State:
    return {"answers": ["second"]}


def third(state: State) -> State:
    return {"answers": [f"third: {interrupt('go on?')}"]}


chain = (StateGraph(State).add_node(first).add_node(second).add_node(third)
         .add_edge(START, "first").add_edge("first", "second").add_edge("second", "third").compile())
