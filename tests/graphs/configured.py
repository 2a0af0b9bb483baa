"""A graph that shows what its run was configured with, for the assistant tests.

Its one node writes, under `seen`, the runtime context it got (a dataclass: `user` required, the
rest with defaults), the caller's `configurable` values (the keys the server and LangGraph set
left out), the tags, the recursion limit, and the assistant and graph ids LangGraph Server puts in
the run's metadata. With `gate` in its input it first waits for the test to open that gate (as
tests/graphs/durable.py's nodes do), so a test can queue another run behind it.
"""

import dataclasses
import os

import psycopg

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
    gate: str
    seen: dict


async def wait_for_gate(name: str) -> None:
    async with await psycopg.AsyncConnection.connect(os.environ["GRAPHRUN_TEST_DSN"], autocommit=True) as conn:
        await conn.execute("LISTEN test_gate")
        await conn.execute("INSERT INTO test_gate_waiter (name) VALUES (%s)", (name,))
        await conn.execute("SELECT pg_notify('test_gate_waiter', %s)", (name,))
        cur = await conn.execute("SELECT 1 FROM test_gate WHERE name = %s", (name,))
        if await cur.fetchone():
            return
        async for note in conn.notifies():
            if note.payload == name:
                return


async def show(state: State, config: RunnableConfig, runtime: Runtime[Persona]) -> State:
    if state.get("gate"):
        await wait_for_gate(state["gate"])
    configurable = {
        k: v
        for k, v in config["configurable"].items()
        if not k.startswith("__") and k not in _SET_BY_THE_SERVER and isinstance(v, (str, int, float, bool, list))
    }
    return {
        "gate": "",
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
