"""Python values → the JSON the API carries.

Graph state holds LangChain messages, pydantic models, dataclasses, datetimes;
clients in other languages read JSON. `to_json` makes any state value JSON-safe,
each non-JSON type written one way (the README's table "Values that are not JSON"),
never as a Python repr. Messages take the wire shape of the `runs/wait` contract,
`{"role", "type", "content", "id", "name"?, "tool_calls"?, "tool_call_id"?}`, plus every
other field LangChain keeps on them when it is set, so that a message read from a
state and written back (input, `UpdateState`) is the same message (see incoming.py).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import marshal
import math
import numbers
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from pydantic_core import to_jsonable_python

from .bounded_cache import BoundedCache

# LangChain message type -> the seed contract's role.
_ROLES = {"human": "user", "ai": "ai", "tool": "tool", "system": "system", "function": "function"}


class WireMessage(dict):
    """A message in the wire shape, as `message_to_json` remembers it (see `ConvertedMessages`).
    A dict like any other to its readers, which never change it: the same one answers every
    call that holds the message. `encoded` is its protobuf `Value`, and `header` what makes
    that one element of a `ListValue`; both made once, by the servicers (servicers/convert.py)."""

    __slots__ = ("encoded", "header")
    encoded: bytes
    header: bytes


class ConvertedMessages(BoundedCache[tuple[type, "str | None"], tuple[bytes, WireMessage]]):
    """A message's wire shape, kept for the next answer that holds it: a long conversation's
    state is answered whole every turn, and all but its newest messages were converted before.

    Keyed by the message's class and id, and valid while its fields are what they were when it
    was converted, type for type: they are compared as `marshal` writes them (which tells True
    from 1, -0.0 from 0.0, a tuple from a list, and writes nothing but plain Python data). A
    message changed, or another under the same id, is converted anew; a message holding anything
    `marshal` refuses (a datetime, a Decimal, an object) is converted each time, as are chunks
    (each streamed chunk of a message shares its id). The first kept go first beyond `limit`
    bytes (an estimate: `BYTES_PER_KEPT_BYTE` for each byte of a message's fields as written).
    `hits`: conversions answered as kept; `misses`: made anew."""

    def __init__(self, limit: int):
        super().__init__(limit, lambda _key, kept: len(kept[0]) * BYTES_PER_KEPT_BYTE)

    def convert(self, msg: BaseMessage) -> dict[str, Any]:
        key = (type(msg), msg.id)
        try:  # before converting: a field changed meanwhile (another thread) is a miss next time
            fields = marshal.dumps((msg.__dict__, msg.__pydantic_extra__), 2)
        except ValueError:  # not plain Python data
            return _message_to_json(msg)
        kept = self.get(key)
        if kept is not None and kept[0] == fields:
            self.hits += 1
            return kept[1]
        self.misses += 1
        wire = WireMessage(_message_to_json(msg))
        if len(fields) <= LARGEST_KEPT:
            self.keep(key, (fields, wire))
        return wire


# What a kept message costs per byte of its fields as `marshal` writes them: those bytes, its
# wire shape (dicts; its strings are the message's own) and its protobuf form (~the same size).
BYTES_PER_KEPT_BYTE = 4
# A message whose fields take more is not kept: rare, and each would crowd out many others.
LARGEST_KEPT = 256 * 1024

# Sized once at start-up (app.py); 0 keeps nothing.
converted = ConvertedMessages(0)


def message_to_json(msg: BaseMessage) -> dict[str, Any]:
    """A LangChain message (or chunk) in the wire shape, with every field it carries (see
    `_message_to_json`); a message with an id, as converted before if it did not change since."""
    if converted.limit and msg.id is not None and not isinstance(msg, BaseMessageChunk):
        return converted.convert(msg)
    return _message_to_json(msg)


def _message_to_json(msg: BaseMessage) -> dict[str, Any]:
    """A LangChain message (or chunk) in the wire shape, with every field it carries.

    Fields are read from the model's `__dict__` (then its extras: LangChain messages allow
    them), not with `getattr(msg, name, None)`: every name a message lacks costs pydantic an
    AttributeError, which was most of the conversion's time for a long conversation."""
    fields, extra = msg.__dict__, msg.__pydantic_extra__ or _NO_EXTRA
    get = fields.get
    mtype = _TYPES.get(msg.type) or _wire_type(msg.type)
    out: dict[str, Any] = {
        "role": get("role") or extra.get("role") or _ROLES.get(mtype, mtype),
        "type": mtype,
        "content": to_json(msg.content),
        "id": msg.id,
    }
    if (name := get("name")) is not None:
        out["name"] = name
    if tool_calls := get("tool_calls") or extra.get("tool_calls"):
        out["tool_calls"] = [to_json(tc) if "id" in tc else {"id": None, **to_json(tc)} for tc in tool_calls]
    if tool_call_id := get("tool_call_id") or extra.get("tool_call_id"):
        out["tool_call_id"] = tool_call_id
    if (get("status") or extra.get("status")) == "error":  # "success" is the default
        out["status"] = "error"
    if (artifact := get("artifact")) is not None:
        out["artifact"] = to_json(artifact)
    if value := get("additional_kwargs"):
        out["additional_kwargs"] = to_json(value)
    if value := get("response_metadata"):
        out["response_metadata"] = to_json(value)
    if value := get("invalid_tool_calls"):
        out["invalid_tool_calls"] = to_json(value)
    if value := get("usage_metadata"):
        out["usage_metadata"] = to_json(value)
    if isinstance(msg, BaseMessageChunk):
        if chunks := get("tool_call_chunks"):
            out["tool_call_chunks"] = to_json(chunks)
        if position := get("chunk_position"):
            out["chunk_position"] = position
    return out


def _wire_type(message_type: str) -> str:
    """ "AIMessageChunk" -> "ai", "human" -> "human": a chunk is written as its message's type."""
    wire = message_type.removesuffix("Chunk").lower().removesuffix("message") or message_type
    _TYPES[message_type] = wire
    return wire


_TYPES: dict[str, str] = {}
_NO_EXTRA: dict[str, Any] = {}


def to_json(value: Any) -> Any:
    """Make value JSON-safe: dicts with string keys, lists, str, float/int, bool, None.

    NUL characters become U+FFFD: PostgreSQL's jsonb cannot store them, and a run
    whose state held one could otherwise never record its events or its end.
    """
    kind = type(value)  # the common exact types first: a state holds thousands of them
    if kind is str:
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if kind is dict:
        return {k if type(k) is str and "\x00" not in k else _key(k): to_json(v) for k, v in value.items()}
    if kind is list:
        return [to_json(v) for v in value]
    if value is None or kind is bool or kind is int:
        return value
    return _other_to_json(value)


def _other_to_json(value: Any) -> Any:
    """Everything but the exact JSON types, as the README's table says."""
    if isinstance(value, BaseMessage):  # first: a state holds hundreds of them
        return message_to_json(value)
    if isinstance(value, str):  # a str subclass (a str-valued Enum too): its string
        return to_json(str.__str__(value))
    if isinstance(value, int):  # an int subclass (an IntEnum too): its number
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else _NON_FINITE[str(float(value))]
    if isinstance(value, Mapping):
        return {_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a NamedTuple: an object of its fields
        return to_json(value._asdict())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (set, frozenset)):  # sorted where the items compare: the same set, the same array
        items = [to_json(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return to_jsonable_python(value)  # ISO 8601, as pydantic writes it: "P1DT2H", "PT1.5S"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)  # exact: "19.99"
    if isinstance(value, numbers.Integral):  # numpy's integers and the like
        return int(value)
    if isinstance(value, numbers.Real):
        return to_json(float(value))
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode()
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": to_json(str(value))}
    if hasattr(value, "model_dump"):  # pydantic v2: its fields, each written by these rules
        return to_json(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if type(value).__str__ is not object.__str__:  # a type that says how it reads: a path, an address
        return to_json(str(value))
    return f"{type(value).__module__}.{type(value).__qualname__}"  # nothing better than its type: no repr


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # as proto3 JSON spells them


def _key(key: Any) -> str:
    """An object key: a string as itself (NUL replaced), anything else written by these rules,
    then as JSON text if that is not a string (1 -> "1", True -> "true", (1, 2) -> "[1,2]")."""
    value = to_json(key)
    return value if type(value) is str else json.dumps(value, separators=(",", ":"), sort_keys=True)


def from_struct_value(value: Any) -> Any:
    """Undo protobuf Struct's all-numbers-are-doubles: 3.0 becomes 3 again.

    Struct cannot tell 3 from 3.0; graphs (and LangGraph's recursion_limit)
    expect integers where JSON clients wrote integers.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: from_struct_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_struct_value(v) for v in value]
    return value
