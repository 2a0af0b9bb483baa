"""Bundled example: a small ReAct agent that answers from the maintenance archive.

Graph: START -> "agent" -> ("tools" -> "agent")* -> END. It is compiled WITHOUT a
checkpointer because the graphrun server injects its own.

Model selection: GRAPHRUN_CHAT_MODEL="provider:model" (e.g. "openai:gpt-4o-mini")
uses `langchain.chat_models.init_chat_model`; otherwise the offline
`DemoChatModel` is used. A real model is created on first use, not at import,
so `langgraph.json` can point at `.../agent.py:graph` on machines without
network access or API keys.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from .demo_model import DemoChatModel
from .tools import TOOLS

__all__ = ["MODEL_ENV", "SYSTEM_PROMPT", "graph", "make_graph"]

MODEL_ENV = "GRAPHRUN_CHAT_MODEL"

SYSTEM_PROMPT = (
    "Du bist ein hilfreicher Assistent der Gebäudeverwaltung. "
    "Beantworte Fragen zu Wartungen, Prüfungen und Reparaturen ausschließlich anhand "
    "des Wartungsarchivs: Rufe dafür das Werkzeug `search_archives` auf und erfinde "
    "nichts. Nenne in der Antwort immer das Datum des Archiveintrags (z. B. "
    "„am 15. Januar 2025“) und die betroffene Anlage. Wenn das Archiv nichts enthält, "
    "sage das höflich. Antworte in der Sprache der Frage, standardmäßig auf Deutsch."
)


def _model_from_env(spec: str) -> BaseChatModel:
    """Build a real chat model via langchain's `init_chat_model` (optional dependency)."""
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise RuntimeError(
            f"{MODEL_ENV}={spec!r} requires the 'langchain' package plus the provider "
            "integration (e.g. `pip install langchain langchain-openai`). "
            f"Unset {MODEL_ENV} to use the offline demo model."
        ) from exc
    try:
        return init_chat_model(spec)
    except ImportError as exc:
        raise RuntimeError(
            f"{MODEL_ENV}={spec!r}: the provider package is missing ({exc}). "
            "Install it, e.g. `pip install langchain-openai` for 'openai:...'."
        ) from exc
    except Exception as exc:  # an unknown provider, a model the provider refuses, a missing API key
        raise RuntimeError(
            f"{MODEL_ENV}={spec!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc


class _LazyBoundModel:
    """Creates and binds the chat model on first use (thread-safe, once)."""

    def __init__(self, model: BaseChatModel | None, tools: list) -> None:
        self._model = model
        self._tools = tools
        self._bound: Runnable[Any, Any] | None = None
        self._lock = threading.Lock()

    def get(self) -> Runnable[Any, Any]:
        if self._bound is None:
            with self._lock:
                if self._bound is None:
                    model = self._model
                    if model is None:
                        spec = os.environ.get(MODEL_ENV, "").strip()
                        model = _model_from_env(spec) if spec else DemoChatModel()
                    self._bound = model.bind_tools(self._tools)
        return self._bound


def make_graph(model: BaseChatModel | None = None, tools: list | None = None) -> CompiledStateGraph:
    """Build the archive agent; `model` overrides GRAPHRUN_CHAT_MODEL / the demo model,
    `tools` replaces the archive tools (e.g. with a failing twin in tests)."""
    tools = list(TOOLS if tools is None else tools)
    if model is None and (spec := os.environ.get(MODEL_ENV, "").strip()):
        model = _model_from_env(spec)  # now: a model that cannot be made stops the server at start-up
    llm = _LazyBoundModel(model, tools)
    system = SystemMessage(content=SYSTEM_PROMPT)

    def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [llm.get().invoke([system, *state["messages"]], config)]}

    async def acall_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        # Plain ainvoke: LangGraph's "messages" stream mode still gets token
        # chunks because langchain-core streams when a streaming handler is attached.
        return {"messages": [await llm.get().ainvoke([system, *state["messages"]], config)]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", RunnableLambda(call_model, afunc=acall_model, name="agent"))
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="archive-agent")


graph = make_graph()
