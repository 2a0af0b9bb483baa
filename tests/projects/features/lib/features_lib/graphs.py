"""A graph in a plain folder named by `dependencies` (no pyproject): importable by module path."""

import os

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    greeting: str
    overridden: str


def greet(state: State) -> State:
    return {"greeting": os.environ.get("FEATURES_GREETING"), "overridden": os.environ.get("FEATURES_OVERRIDDEN")}


graph = StateGraph(State).add_node(greet).add_edge(START, "greet").compile()
