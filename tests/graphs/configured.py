"""A graph that shows what its run was configured with, for the assistant tests.

Its one node writes, under `seen`, the runtime context it got (a dataclass: `user` required, the
rest with defaults), the caller's `configurable` values (the keys the server and LangGraph set
left out), the tags, the recursion limit, and the assistant and graph ids LangGraph Server puts in
the run's metadata.
"""

import dataclasses

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

_SET_BY_THE_SERVER = {"thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint_map", "langgraph_auth_user_id"}


@dataclasses.dataclass
class Persona:
    user: str
    model: str = "small"
    prompt: str = "You are helpful."
    temperature: float = 0.5


class State(TypedDict, total=False):
    question: str
    seen: dict


def show(state: State, config: RunnableConfig, runtime: Runtime[Persona]) -> State:
    configurable = {
        k: v
        for k, v in config["configurable"].items()
        if not k.startswith("__") and k not in _SET_BY_THE_SERVER and isinstance(v, (str, int, float, bool, list))
    }
    return {
        "seen": {
            "context": dataclasses.asdict(runtime.context),
            "configurable": configurable,
            "tags": [t for t in config.get("tags", []) if not t.startswith("graph:")],
            "recursion_limit": config.get("recursion_limit"),
            "assistant_id": config["metadata"].get("assistant_id"),
            "graph_id": config["metadata"].get("graph_id"),
        }
    }


graph = StateGraph(State, context_schema=Persona).add_node("show", show).add_edge(START, "show").compile()
