"""Graphs whose context schema is a pydantic model (forbidding extra keys) or a TypedDict."""

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import NotRequired, TypedDict


class State(TypedDict, total=False):
    seen: dict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(default=0.5, ge=0, le=2)
    retries: int = 2


def read_strict(state: State, runtime: Runtime[Strict]) -> State:
    return {"seen": {"type": type(runtime.context).__name__, **runtime.context.model_dump()}}


pydantic_graph = StateGraph(State, context_schema=Strict).add_node("read", read_strict).add_edge(START, "read").compile()


class Loose(TypedDict):
    tenant: str
    region: NotRequired[str]


def read_loose(state: State, runtime: Runtime[Loose]) -> State:
    return {"seen": {"type": type(runtime.context).__name__, **runtime.context}}


typed_dict_graph = StateGraph(State, context_schema=Loose).add_node("read", read_loose).add_edge(START, "read").compile()
