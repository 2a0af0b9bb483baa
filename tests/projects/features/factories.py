"""Graph factories in each form LangGraph Server accepts; each graph reports what its factory saw."""

import contextlib
from dataclasses import dataclass

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph_sdk.runtime import ServerRuntime
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    built_for: str  # what the factory read from the run's config or context
    calls: int  # how many times the factory was called so far
    resource: str  # a context manager factory's resource, as the node saw it


CALLS = {"from_config": 0, "from_async": 0, "from_context_manager": 0, "from_runtime": 0}


def _graph(built_for: str, calls: int, resource: dict | None = None, context_schema: type | None = None):
    def report(state: State) -> State:
        return {"built_for": built_for, "calls": calls, "resource": (resource or {}).get("state", "none")}

    return StateGraph(State, context_schema=context_schema).add_node("report", report).add_edge(START, "report")


def from_config(config: RunnableConfig):
    CALLS["from_config"] += 1
    return _graph(config["configurable"].get("persona", "nobody"), CALLS["from_config"]).compile()


async def from_async(config: RunnableConfig):
    CALLS["from_async"] += 1
    return _graph(config["configurable"].get("persona", "nobody"), CALLS["from_async"])


@contextlib.asynccontextmanager
async def from_context_manager(config: RunnableConfig):
    CALLS["from_context_manager"] += 1
    resource = {"state": "open"}
    try:
        yield _graph(config["configurable"].get("persona", "nobody"), CALLS["from_context_manager"], resource).compile()
    finally:
        resource["state"] = "closed"


@dataclass
class Context:
    persona: str = "default persona"


def from_runtime(runtime: ServerRuntime[Context]):
    CALLS["from_runtime"] += 1
    execution = runtime.execution_runtime
    seen = f"{runtime.access_context}: {execution.context.persona if execution else '-'}"
    return _graph(seen, CALLS["from_runtime"], context_schema=Context).compile()


def failing(config: RunnableConfig):
    if config["configurable"].get("fail"):
        raise ValueError("this factory refuses to build a graph for this run")
    return _graph("ok", 0).compile()
