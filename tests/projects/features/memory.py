"""Long-term memory: facts a user tells the graph on one thread, recalled on any other."""

from dataclasses import dataclass

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict


@dataclass
class Context:
    user_id: str = "anonymous"


class State(TypedDict, total=False):
    remember: str  # a fact to store
    recalled: list[str]  # every fact stored for the user, oldest first


async def remember(state: State, runtime: Runtime[Context]) -> State:
    namespace = ("memories", runtime.context.user_id)
    if state.get("remember"):
        existing = await runtime.store.asearch(namespace, limit=100)
        await runtime.store.aput(namespace, f"fact-{len(existing)}", {"text": state["remember"]})
    items = await runtime.store.asearch(namespace, limit=100)
    return {"recalled": [i.value["text"] for i in sorted(items, key=lambda i: i.key)]}


graph = StateGraph(State, context_schema=Context).add_node(remember).add_edge(START, "remember").compile()


def remember_with_param(state: State, config, *, store: BaseStore) -> State:
    """The older spelling: the store as a node parameter, the user in config["configurable"]."""
    namespace = ("memories", config["configurable"].get("user_id", "anonymous"))
    if state.get("remember"):
        store.put(namespace, f"fact-{len(store.search(namespace, limit=100))}", {"text": state["remember"]})
    return {"recalled": [i.value["text"] for i in sorted(store.search(namespace, limit=100), key=lambda i: i.key)]}


graph_with_store_param = StateGraph(State).add_node("remember", remember_with_param).add_edge(START, "remember")
