"""Checkpoint serialization: LangGraph's own, with the messages it decodes remembered.

Why: reading a thread's checkpoint decodes every message of the conversation, and LangChain
builds each one through pydantic's validation (~8 µs a message here: 3 ms a turn for a
conversation of 400 messages). Turn after turn a conversation's messages are the same bytes.
So the message LangGraph built from a message's bytes the first time is kept, untouched; the
next read of the same bytes gets a deep copy of it (~3 µs): equal to what LangGraph would
build, field for field (which fields were given included), and the graph's own, sharing
nothing mutable (a node that changes a message in place changes its copy only, as it would
a message read anew).

What is kept: messages of LangChain's own classes whose fields hold plain data only (strings,
numbers, booleans, None, and dicts and lists of them: what a model's messages hold), keyed by
their exact encoded bytes, the first kept dropped first beyond a size in bytes. Such a message
decodes the same under every allowlist of LangGraph's serializer (LangChain's messages are on
all of them, and plain data passes none), so the serializers LangGraph derives for strict
msgpack mode share the cache. A message holding anything else (an artifact that is an object)
is decoded each time. Writing is LangGraph's serializer unchanged: what is stored stays what
LangGraph writes and reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.jsonplus import EXT_PYDANTIC_V2, JsonPlusSerializer

from ..bounded_cache import BoundedCache

# A message's encoded bytes above this are not kept: rare, and each would crowd out many others.
LARGEST_KEPT = 256 * 1024
# What a kept message costs, per byte of its encoding: the key, and the decoded object (its
# dicts, sets and strings; measured ~4x the encoding for chat messages).
BYTES_PER_ENCODED_BYTE = 5

_SCALARS = frozenset({str, int, float, bool, type(None)})
_set = object.__setattr__


class NotPlain(Exception):
    """A value holds something other than plain data: its message is not kept."""


def _copy_dict(source: dict) -> dict:
    """A deep copy of plain data, without `copy.deepcopy`'s memo and dispatch (three times as
    fast): a message's fields are a dozen values, mostly strings, None and empty containers."""
    out = {}
    for key, value in source.items():
        kind = type(value)
        if kind in _SCALARS:
            out[key] = value
        elif kind is dict:
            out[key] = _copy_dict(value) if value else {}
        elif kind is list:
            out[key] = _copy_list(value) if value else []
        else:
            raise NotPlain(kind)
    return out


def _copy_list(source: list) -> list:
    out = []
    for value in source:
        kind = type(value)
        if kind in _SCALARS:
            out.append(value)
        elif kind is dict:
            out.append(_copy_dict(value))
        elif kind is list:
            out.append(_copy_list(value))
        else:
            raise NotPlain(kind)
    return out


def fresh_copy(message: BaseMessage) -> BaseMessage:
    """A deep copy of a pydantic message of plain data, as pydantic's own `__deepcopy__` makes it
    (no validation runs, the fields given stay those given). NotPlain for any other."""
    if message.__pydantic_private__:
        raise NotPlain("private attributes")
    cls = type(message)
    clone = cls.__new__(cls)
    _set(clone, "__dict__", _copy_dict(message.__dict__))
    extra = message.__pydantic_extra__
    _set(clone, "__pydantic_extra__", None if extra is None else _copy_dict(extra))
    _set(clone, "__pydantic_fields_set__", set(message.__pydantic_fields_set__))
    _set(clone, "__pydantic_private__", None)
    return clone


def _kept_cost(encoded: bytes, _message: BaseMessage) -> int:
    return len(encoded) * BYTES_PER_ENCODED_BYTE


class CachingSerializer(JsonPlusSerializer):
    """LangGraph's `JsonPlusSerializer` (same settings, same bytes written), whose decoding of
    LangChain messages goes through `messages`: encoded message → the message LangGraph decoded
    from it, never handed out (readers get copies). `cache_bytes` 0: not at all."""

    def __init__(self, *args: Any, cache_bytes: int = 64 * 1024 * 1024, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.messages: BoundedCache[bytes, BaseMessage] = BoundedCache(cache_bytes, _kept_cost)
        stock: Callable[[int, bytes], Any] | None = getattr(self, "_unpack_ext_hook", None)
        if stock is not None and cache_bytes > 0:
            self._unpack_ext_hook = self._remembering(stock)

    def with_msgpack_allowlist(self, extra_allowlist):  # LangGraph's signature
        clone = super().with_msgpack_allowlist(extra_allowlist)
        if clone is not self and self.messages.limit > 0:  # a new decoder of LangGraph's; the same cache
            clone._unpack_ext_hook = clone._remembering(clone._unpack_ext_hook)
        return clone

    def _remembering(self, stock: Callable[[int, bytes], Any]) -> Callable[[int, bytes], Any]:
        messages = self.messages

        def ext_hook(code: int, data: bytes) -> Any:
            if code != EXT_PYDANTIC_V2 or len(data) > LARGEST_KEPT:
                return stock(code, data)
            if (kept := messages.get(data)) is not None:
                messages.hits += 1
                return fresh_copy(kept)
            value = stock(code, data)
            if isinstance(value, BaseMessage) and type(value).__module__.startswith("langchain_core.messages."):
                messages.misses += 1
                with contextlib.suppress(NotPlain):
                    messages.keep(data, fresh_copy(value))  # the decoded value is the graph's to change
            return value

        return ext_hook
