"""Python values ↔ the JSON the API carries.

Graph state holds LangChain messages, pydantic models, dataclasses, datetimes;
clients in other languages read JSON. `to_json` makes any state value JSON-safe,
turning messages into the wire shape of the `runs/wait` contract:
`{"role", "type", "content", "id", "name"?, "tool_calls"?, "tool_call_id"?}`.
Input needs no conversion: LangGraph's `add_messages` accepts message dicts in
any form LangChain knows.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

# LangChain message type -> the seed contract's role.
_ROLES = {"human": "user", "ai": "ai", "tool": "tool", "system": "system", "function": "function"}


def message_to_json(msg: BaseMessage) -> dict[str, Any]:
    """A LangChain message (or chunk) in the wire shape.

    Fields are read from the model's `__dict__` (then its extras: LangChain messages allow
    them), not with `getattr(msg, name, None)`: every name a message lacks costs pydantic an
    AttributeError, which was most of the conversion's time for a long conversation."""
    fields, extra = msg.__dict__, msg.__pydantic_extra__ or _NO_EXTRA
    mtype = msg.type.removesuffix("Chunk").lower().removesuffix("message") or msg.type
    mtype = {"aimessage": "ai", "ai": "ai"}.get(mtype, mtype)
    out: dict[str, Any] = {
        "role": fields.get("role") or extra.get("role") or _ROLES.get(mtype, mtype),
        "type": mtype,
        "content": to_json(msg.content),
        "id": msg.id,
    }
    if msg.name:
        out["name"] = msg.name
    if tool_calls := fields.get("tool_calls") or extra.get("tool_calls"):
        out["tool_calls"] = [{"id": tc.get("id"), "name": tc["name"], "args": to_json(tc.get("args", {}))}
                             for tc in tool_calls]
    if isinstance(msg, BaseMessageChunk):
        if chunks := fields.get("tool_call_chunks") or extra.get("tool_call_chunks"):
            out["tool_call_chunks"] = [{k: to_json(c.get(k)) for k in ("id", "name", "args", "index")} for c in chunks]
    if tool_call_id := fields.get("tool_call_id") or extra.get("tool_call_id"):
        out["tool_call_id"] = tool_call_id
    if (fields.get("status") or extra.get("status")) == "error":
        out["status"] = "error"
    if usage := fields.get("usage_metadata") or extra.get("usage_metadata"):
        out["usage_metadata"] = to_json(usage)
    return out


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
        return {to_json(k if type(k) is str else str(k)): to_json(v) for k, v in value.items()}
    if kind is list:
        return [to_json(v) for v in value]
    if value is None or kind is bool or kind is int:
        return value
    return _other_to_json(value)


def _other_to_json(value: Any) -> Any:
    if isinstance(value, str):  # a str subclass (the exact type is inlined above: a call per string costs ~5%)
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, BaseMessage):
        return message_to_json(value)
    if isinstance(value, Mapping):
        return {to_json(str(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, dt.timedelta)):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "model_dump"):  # pydantic v2
        return to_json(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if hasattr(value, "_asdict"):  # NamedTuple
        return to_json(value._asdict())
    return repr(value)


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
