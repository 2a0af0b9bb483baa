"""Graphs whose state holds what JSON cannot say by itself, for tests/test_values.py.

- `every_message`: adds one message of each LangChain kind, every field set (content
  blocks, names, ids, additional_kwargs, response_metadata, usage_metadata, tool calls,
  invalid tool calls, a tool's artifact and status), and a chunk (add_messages keeps it as
  its message).
- `keeps_messages`: a node that changes nothing, so the state holds just what came in.
- `streams_chunks`: a chat model streams a message in chunks carrying tool-call chunks,
  usage and response metadata.
- `odd_values`: a state with a value of each non-JSON type the README's table names.
- `edits_in_place`: a node drafts a message, the next changes that message object in place and
  returns it: each `values` event shows the message as it was then.
- `meddles`: a node that notes what the conversation's messages say, then changes them in
  place without writing them back (which LangGraph does not store): each turn must see them
  as stored, however the server reads them.
"""

import dataclasses
import datetime as dt
import decimal
import enum
import operator
import typing
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, ChatMessage, FunctionMessage,
                                     HumanMessage, SystemMessage, ToolMessage)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel
from typing_extensions import TypedDict

USAGE = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
         "input_token_details": {"cache_read": 2}, "output_token_details": {"reasoning": 1}}


def every_kind() -> list[BaseMessage]:
    """One message of each kind with every field LangChain serialises set to something."""
    return [
        SystemMessage("be brief", id="sys-1", name="policy", additional_kwargs={"__openai_role__": "developer"},
                      response_metadata={"source": "config"}),
        HumanMessage([{"type": "text", "text": "what is on this picture?"},
                      {"type": "image", "url": "https://example.com/roof.png", "mime_type": "image/png"}],
                     id="human-1", name="alice", additional_kwargs={"locale": "de-DE"},
                     response_metadata={"channel": "web"}),
        AIMessage([{"type": "text", "text": "let me look that up"}], id="ai-1", name="assistant",
                  tool_calls=[{"name": "search", "args": {"query": "roof", "limit": 3, "exact": True},
                               "id": "call-1", "type": "tool_call"}],
                  invalid_tool_calls=[{"name": "lookup", "args": "{not json", "id": "call-2",
                                       "error": "arguments are not JSON", "type": "invalid_tool_call"}],
                  usage_metadata=USAGE,
                  response_metadata={"finish_reason": "tool_calls", "model_name": "demo-1",
                                     "model_provider": "demo", "logprobs": None},
                  additional_kwargs={"refusal": None, "reasoning": {"summary": ["looked at the question"]}}),
        ToolMessage("no records found", id="tool-1", name="search", tool_call_id="call-1",
                    artifact={"rows": [], "took_ms": 12, "query": {"q": "roof"}}, status="error",
                    additional_kwargs={"attempt": 2}, response_metadata={"cached": False}),
        FunctionMessage('{"value": 42}', name="calculator", id="fn-1", additional_kwargs={"legacy": True}),
        ChatMessage("looks fine to me", role="reviewer", id="chat-1", name="bob",
                    response_metadata={"score": 0.5}),
        AIMessageChunk("streamed answer", id="chunk-1", usage_metadata=USAGE, chunk_position="last",
                       response_metadata={"finish_reason": "stop", "model_name": "demo-1"}),
    ]


def _add_every_kind(state: MessagesState) -> dict:
    return {"messages": every_kind()}


def _keep(state: MessagesState) -> dict:
    return {}


def _graph(node) -> StateGraph:
    builder = StateGraph(MessagesState)
    builder.add_node(node.__name__.strip("_"), node)
    builder.add_edge(START, node.__name__.strip("_"))
    return builder


every_message = _graph(_add_every_kind)
keeps_messages = _graph(_keep)


class ChunkedModel(BaseChatModel):
    """A chat model that streams one tool-calling answer in three chunks."""

    @property
    def _llm_type(self) -> str:
        return "chunked-demo"

    def _chunks(self) -> Iterator[AIMessageChunk]:
        meta = {"model_name": "demo-1", "model_provider": "demo"}  # once: LangChain concatenates strings
        yield AIMessageChunk("Looking ", id="stream-1", response_metadata={"model_provider": "demo"},
                             tool_call_chunks=[{"name": "search", "args": '{"query": ', "id": "call-9", "index": 0}])
        yield AIMessageChunk("it up", id="stream-1", additional_kwargs={"refusal": None},
                             tool_call_chunks=[{"name": None, "args": '"roof"}', "id": None, "index": 0}])
        yield AIMessageChunk("", id="stream-1", usage_metadata=USAGE, chunk_position="last",
                             response_metadata={"finish_reason": "tool_calls", **meta})

    def _stream(self, messages, stop=None, run_manager=None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks():  # LangChain reports each to the callbacks (LangGraph's messages mode)
            yield ChatGenerationChunk(message=chunk)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        whole = None
        for generation in self._stream(messages, stop, run_manager, **kwargs):
            whole = generation if whole is None else whole + generation
        return ChatResult(generations=[ChatGeneration(message=whole.message)])


async def _call_model(state: MessagesState) -> dict:
    return {"messages": [await ChunkedModel().ainvoke(state["messages"])]}


streams_chunks = _graph(_call_model)


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Invoice(BaseModel):
    number: int
    total: decimal.Decimal
    issued: dt.date


@dataclasses.dataclass
class Point:
    x: float
    label: str


class Pair(typing.NamedTuple):
    left: int
    right: str


class Odd(TypedDict, total=False):
    moment: dt.datetime
    naive_moment: dt.datetime
    day: dt.date
    clock: dt.time
    span: dt.timedelta
    ident: uuid.UUID
    price: decimal.Decimal
    blob: bytes
    tags: set
    frozen: frozenset
    pair: tuple
    named: Pair
    colour: Colour
    level: Level
    invoice: Invoice
    point: Point
    not_finite: list  # a float NaN on its own would be stored inline in jsonb, which refuses it
    keyed: dict


def _write_odd_values(state: Odd) -> dict:
    return {
        "moment": dt.datetime(2026, 3, 1, 12, 30, 5, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "naive_moment": dt.datetime(2026, 3, 1, 12, 30),
        "day": dt.date(2026, 3, 1),
        "clock": dt.time(7, 45, 30),
        "span": dt.timedelta(days=1, hours=2, seconds=3.5),
        "ident": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "price": decimal.Decimal("19.99"),
        "blob": b"\x00\xffgraphrun",
        "tags": {"roof", "heating", "lift"},
        "frozen": frozenset({3, 1, 2}),
        "pair": (1, "two"),
        "named": Pair(1, "two"),
        "colour": Colour.RED,
        "level": Level.HIGH,
        "invoice": Invoice(number=7, total=decimal.Decimal("10.50"), issued=dt.date(2026, 1, 31)),
        "point": Point(1.5, "origin"),
        "not_finite": [float("nan"), float("inf"), -float("inf")],
        "keyed": {1: "one", uuid.UUID(int=1): "uuid", dt.date(2026, 1, 1): "day"},
    }


odd_values = StateGraph(Odd)
odd_values.add_node("write", _write_odd_values)
odd_values.add_edge(START, "write")


class Meddled(MessagesState, total=False):
    seen: Annotated[list, operator.add]


def _meddle(state: Meddled) -> dict:
    """Notes each message (content, kwargs, tool calls), then changes every part of each in place."""
    seen = [[m.id, m.content, dict(m.additional_kwargs), [dict(c) for c in getattr(m, "tool_calls", [])]]
            for m in state["messages"]]
    for message in state["messages"]:
        message.content = "changed in place"
        message.additional_kwargs["meddled"] = True
        for call in getattr(message, "tool_calls", []):
            call["args"]["meddled"] = True
    return {"seen": [seen]}


meddles = StateGraph(Meddled)
meddles.add_node("meddle", _meddle)
meddles.add_edge(START, "meddle")


def _draft(state: MessagesState) -> dict:
    return {"messages": [AIMessage("draft", id="edited", additional_kwargs={"stage": "draft"})]}


def _edit(state: MessagesState) -> dict:
    message = state["messages"][-1]
    message.content = "final"
    message.additional_kwargs["stage"] = "final"
    return {"messages": [message]}


edits_in_place = StateGraph(MessagesState)
edits_in_place.add_node("draft", _draft)
edits_in_place.add_node("edit", _edit)
edits_in_place.add_edge(START, "draft")
edits_in_place.add_edge("draft", "edit")
