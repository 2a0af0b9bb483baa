"""Messages coming in as JSON (run input, `command.update`, `UpdateState`) → the LangChain
messages they stand for, with every field the wire shape carries (see wire.py).

LangChain's own reading of a message dict (`convert_to_messages`) keeps only `content`,
`name`, `id`, `tool_calls`, `tool_call_id` and (for tools) `artifact` and `status`; the rest
(`usage_metadata`, `invalid_tool_calls`, the wire's `role` and `type`, …) lands in
`additional_kwargs`. A message read from a state and written back must be the same message,
so a dict naming its LangChain `type` is built with its message class directly. Any other
form (`{"role": "user", …}`, a string, a tuple, LangChain's serialised envelope) is left to
LangChain, as before.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core import messages as lc
from langchain_core.messages import BaseMessage, convert_to_messages
from langgraph.graph.message import add_messages
from langgraph.pregel import Pregel

_CLASSES: dict[str, type[BaseMessage]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        lc.HumanMessage,
        lc.AIMessage,
        lc.SystemMessage,
        lc.ToolMessage,
        lc.FunctionMessage,
        lc.ChatMessage,
        lc.HumanMessageChunk,
        lc.AIMessageChunk,
        lc.SystemMessageChunk,
        lc.ToolMessageChunk,
        lc.FunctionMessageChunk,
        lc.ChatMessageChunk,
        lc.RemoveMessage,
    )
}
_CHUNKS = {lc.AIMessage: lc.AIMessageChunk}
_FIELDS = {cls: set(cls.model_fields) - {"type"} for cls in _CLASSES.values()}


def message_from_json(value: Any) -> BaseMessage:
    """One message as the graph's `add_messages` will hold it; raises (ValueError,
    pydantic's ValidationError, …) for what is no message."""
    if isinstance(value, dict) and (cls := _CLASSES.get(value.get("type"))) is not None:
        if ("tool_call_chunks" in value or "chunk_position" in value) and cls in _CHUNKS:
            cls = _CHUNKS[cls]  # a streamed chunk: add_messages makes it its message, as LangGraph does
        fields, kwargs, rest = _FIELDS[cls], {}, {}
        for key, item in value.items():
            if key in fields:
                kwargs[key] = item
            elif key not in ("type", "role"):  # the wire's role is derived from the type
                rest[key] = item
        if kwargs.get("content") is None:
            kwargs["content"] = ""
        if rest:  # keys no field takes: in additional_kwargs, where LangChain puts them
            kwargs["additional_kwargs"] = {**rest, **(kwargs.get("additional_kwargs") or {})}
        if kwargs.get("tool_calls"):
            kwargs["tool_calls"] = [_tool_call(tc) for tc in kwargs["tool_calls"]]
        return cls(**kwargs)
    return convert_to_messages([value])[0]


def _tool_call(call: Any) -> Any:
    """An OpenAI-style tool call (`{"id", "function": {"name", "arguments"}}`) as LangChain's."""
    if not isinstance(call, dict) or "function" not in call:
        return call
    args = call["function"]["arguments"]
    return {
        "name": call["function"]["name"],
        "args": json.loads(args) if isinstance(args, str) else args,
        "id": call.get("id"),
        "type": "tool_call",
    }


def message_channels(graph: Pregel) -> list[str]:
    """The graph's state keys whose reducer is LangGraph's `add_messages`."""
    return [name for name, channel in graph.channels.items() if getattr(channel, "operator", None) is add_messages]


def messages_from_json(graph: Pregel, values: Any) -> Any:
    """values with the message dicts of its `add_messages` keys built as messages; other keys,
    and the items LangChain reads in its own way, as they are."""
    if not isinstance(values, dict):
        return values
    out = None
    for key in message_channels(graph):
        given = values.get(key)
        if isinstance(given, list) and any(_ours(m) for m in given):
            out = out or dict(values)
            out[key] = [message_from_json(m) if _ours(m) else m for m in given]
        elif _ours(given):
            out = out or dict(values)
            out[key] = message_from_json(given)
    return values if out is None else out


def _ours(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in _CLASSES
