"""Graphs whose input graphrun checks before a run is recorded, one per kind of input schema.
Each node uses what it is given, so that input the schema refuses also fails in-process."""

import operator
from dataclasses import dataclass
from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field
from typing_extensions import NotRequired, TypedDict


class Chat(TypedDict):
    """A TypedDict state requiring `messages` (and `topic`, which LangGraph never demands)."""

    messages: Annotated[list[AnyMessage], add_messages]
    topic: str
    turns: NotRequired[int]


def reply(state: Chat) -> dict:
    last = state["messages"][-1]  # IndexError on an empty conversation
    return {"messages": [{"role": "ai", "content": f"re: {last.content}"}], "turns": state.get("turns", 0) + 1}


chat = StateGraph(Chat).add_node(reply).add_edge(START, "reply").compile()


class Owner(BaseModel):
    name: str
    age: int


class Counter(BaseModel):
    """A pydantic state: LangGraph validates it at every node."""

    count: int
    owner: Owner | None = None
    note: str = ""
    messages: Annotated[list[AnyMessage], add_messages] = Field(default_factory=list)


def increment(state: Counter) -> dict:
    return {"count": state.count + 1}


counter = StateGraph(Counter).add_node(increment).add_edge(START, "increment").compile()


@dataclass
class Visit:
    """A dataclass state: LangGraph builds it at every node, so `name` must be there."""

    name: str
    visits: int = 0


def visit(state: Visit) -> dict:
    return {"visits": state.visits + 1}


visits = StateGraph(Visit).add_node(visit).add_edge(START, "visit").compile()


class Notes(TypedDict, total=False):
    """Optional keys: any partial input is a legal update. `log` has a reducer: an update is
    added to what it holds (a list: `operator.add` refuses anything else)."""

    title: str
    body: str
    tags: list[str]
    log: Annotated[list[str], operator.add]


def tidy(state: Notes) -> dict:
    return {"tags": sorted(tag.lower() for tag in state.get("tags", []))}


notes = StateGraph(Notes).add_node(tidy).add_edge(START, "tidy").compile()


@entrypoint()
def double(number: int) -> int:
    """The functional API taking a number."""
    return number * 2


@entrypoint()
def total(numbers: list[int]) -> int:
    """The functional API taking a list."""
    return sum(numbers)


def tally_counts(counts: dict[str, int], update: dict[str, int] | str) -> dict[str, int]:
    """A reducer taking updates of another shape than its value: counts to set, or a name to
    count once more, which must be counted already (KeyError on a thread that does not count it)."""
    if isinstance(update, dict):
        return {**counts, **update}
    return {**counts, update: counts[update] + 1}


class Tally(TypedDict, total=False):
    counts: Annotated[dict[str, int], tally_counts]


def keep(state: Tally) -> dict:
    return {}


tally = StateGraph(Tally).add_node(keep).add_edge(START, "keep").compile()
