"""DEMO chat model: deterministic, offline, rule-based. NOT an LLM.

It exists so the bundled example agent (and its tests) run without network
access or API keys, while still exercising the full ReAct loop and token
streaming. Rules, applied to the last message:

* Human message and `search_archives` bound -> one `search_archives` tool call
  with the question as `query` (empty content).
* Tool message -> a German answer quoting the "[1] ..." record from the tool
  result, including its date.
* Anything else (no tool bound, nothing found) -> a short polite answer.

Streaming (`_stream` / `_astream`) emits word-by-word `AIMessageChunk`s sharing
one message id, and tool calls as `tool_call_chunks` (name first, then the args
JSON in pieces), like real providers do. Set GRAPHRUN_DEMO_TOKEN_DELAY_MS to
slow the stream down for demos.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = ["DemoChatModel"]

SEARCH_TOOL = "search_archives"
DELAY_ENV = "GRAPHRUN_DEMO_TOKEN_DELAY_MS"

# Matches the best ("[1] ...") line of the search_archives tool output.
_RESULT_RE = re.compile(
    r"^\[1\] Archiv: (?P<title>.+?) \((?P<date>\d{1,2}\. \w+ \d{4})\) – (?P<text>.*)$",
    re.MULTILINE,
)
_TOKEN_RE = re.compile(r"\s*\S+")

_NOT_FOUND = (
    "Dazu habe ich im Archiv leider keinen passenden Eintrag gefunden. "
    "Bitte formulieren Sie die Frage anders, zum Beispiel mit dem Namen der Anlage."
)
_NO_TOOLS = (
    "Ich bin ein Demo-Modell ohne Zugriff auf das Archiv und kann diese Frage "
    "leider nicht beantworten. Bitte fragen Sie über den Archiv-Agenten."
)


class DemoChatModel(BaseChatModel):
    """Deterministic stand-in for a chat model (DEMO ONLY, no language understanding)."""

    tool_names: tuple[str, ...] = ()
    """Names of the tools bound via `bind_tools`."""

    token_delay_ms: float | None = None
    """Per-token streaming delay; `None` reads GRAPHRUN_DEMO_TOKEN_DELAY_MS (default 0)."""

    @property
    def _llm_type(self) -> str:
        return "graphrun-demo"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "graphrun-demo", "tool_names": list(self.tool_names)}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        """Return a copy of this model that knows the names of `tools`."""
        names = tuple(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"tool_names": names})

    # --- decision logic -------------------------------------------------------

    def _reply(self, messages: list[BaseMessage]) -> tuple[str, dict[str, Any] | None]:
        """Decide the answer: (text, tool_call or None). Pure and deterministic."""
        last = messages[-1] if messages else None
        if isinstance(last, HumanMessage) and SEARCH_TOOL in self.tool_names:
            question = last.text.strip()
            if question:
                call = {"name": SEARCH_TOOL, "args": {"query": question}, "id": _new_id("call")}
                return "", call
        if isinstance(last, ToolMessage):
            return _answer_from_tool_result(last.text), None
        return _NO_TOOLS, None

    # --- non-streaming --------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if delay := self._delay_seconds():  # as long as streaming the same reply takes
            time.sleep(delay * self._pauses(messages))
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if delay := self._delay_seconds():
            await asyncio.sleep(delay * self._pauses(messages))
        return self._result(messages)

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        text, call = self._reply(messages)
        message = AIMessage(
            content=text,
            tool_calls=[call] if call else [],
            id=_new_id("run"),
            response_metadata=_finish_metadata(call),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _pauses(self, messages: list[BaseMessage]) -> int:
        """The pauses between the reply's tokens when streamed: the delay applies to every run."""
        return max(len(self._chunks(messages)) - 1, 0)

    # --- streaming ------------------------------------------------------------
    # Callbacks (on_llm_new_token) are fired by BaseChatModel itself for every
    # chunk we yield, which is what LangGraph's "messages" stream mode listens to.

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        delay = self._delay_seconds()
        for i, chunk in enumerate(self._chunks(messages)):
            if delay and i:
                time.sleep(delay)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        delay = self._delay_seconds()
        for i, chunk in enumerate(self._chunks(messages)):
            if delay and i:
                await asyncio.sleep(delay)
            yield chunk

    def _chunks(self, messages: list[BaseMessage]) -> list[ChatGenerationChunk]:
        """Split the reply into chunks sharing one id; the last is marked "last"."""
        text, call = self._reply(messages)
        message_id = _new_id("run")
        if call:
            args = json.dumps(call["args"], ensure_ascii=False)
            first = {"name": call["name"], "args": "", "id": call["id"], "index": 0}
            pieces = [first] + [{"name": None, "args": piece, "id": None, "index": 0} for piece in _split_args(args)]
            parts = [AIMessageChunk(content="", tool_call_chunks=[p], id=message_id) for p in pieces]
        else:
            parts = [AIMessageChunk(content=tok, id=message_id) for tok in _TOKEN_RE.findall(text)]
        parts[-1].chunk_position = "last"
        parts[-1].response_metadata = _finish_metadata(call)
        return [ChatGenerationChunk(message=part) for part in parts]

    def _delay_seconds(self) -> float:
        delay_ms = self.token_delay_ms
        if delay_ms is None:
            try:
                delay_ms = float(os.environ.get(DELAY_ENV, "0") or 0)
            except ValueError:
                delay_ms = 0.0
        return max(delay_ms, 0.0) / 1000.0


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def _finish_metadata(call: dict[str, Any] | None) -> dict[str, Any]:
    return {"model_name": "graphrun-demo", "finish_reason": "tool_calls" if call else "stop"}


def _split_args(args: str) -> list[str]:
    """Split an args JSON string into 3 pieces so clients see partial tool args."""
    third = max(len(args) // 3, 1)
    return [p for p in (args[:third], args[third : 2 * third], args[2 * third :]) if p]


def _answer_from_tool_result(result: str) -> str:
    """Phrase a German answer from the best ("[1]") search result, if any."""
    best = _RESULT_RE.search(result)
    if best is None:
        return _NOT_FOUND
    return f"Laut Archiv: {best['title']} am **{best['date']}**. {best['text']}"
