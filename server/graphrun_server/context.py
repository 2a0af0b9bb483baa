"""A run's runtime context (LangGraph >= 0.6), checked and built as LangGraph Server does.

A graph with a `context_schema` (a dataclass, TypedDict or pydantic model) reads
`runtime.context`. LangGraph Server always gives it one: the run's `context`, or, for
clients written before context existed, the keys of `config.configurable` that are
fields of the schema; keys outside the schema are dropped, and the schema's defaults
fill the rest (an absent context is an empty one). graphrun does the same, and checks
the context before a run is recorded, so a context the schema refuses (a wrong type, a
required field missing, a field a pydantic model forbids) is INVALID_ARGUMENT naming
`spec.context.<field>` rather than a run that fails at its first node.

The context is stored as JSON with the run; each attempt builds it again from that.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, get_type_hints

from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

from .errors import FieldViolation


@functools.cache
def _adapter(schema: type) -> TypeAdapter:
    return TypeAdapter(schema)


def _fields(schema: type) -> set[str] | None:
    """The schema's field names (None: not a schema of fields)."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return set(schema.model_fields)
    if dataclasses.is_dataclass(schema):
        return {f.name for f in dataclasses.fields(schema) if f.init}
    if is_typeddict(schema):
        return set(get_type_hints(schema))
    return None


def _decides_extras(schema: type) -> bool:
    """A pydantic model that forbids or keeps extra keys: it sees the keys the caller sent."""
    return (
        isinstance(schema, type)
        and issubclass(schema, BaseModel)
        and schema.model_config.get("extra") in ("allow", "forbid")
    )


def select(schema: type | None, context: dict[str, Any] | None, configurable: dict[str, Any]) -> dict[str, Any] | None:
    """The context values a run passes on: its own, else the schema's fields found in its
    configurable; without a schema, the context as given. Keys of the context the schema does
    not have are dropped, as LangGraph Server drops them, unless a pydantic model decides."""
    if schema is None:
        return context
    names = _fields(schema)
    if context is None:
        return {k: v for k, v in configurable.items() if names is None or k in names}
    if names is None or _decides_extras(schema):
        return dict(context)
    return {k: v for k, v in context.items() if k in names}


def violations(
    schema: type | None, values: dict[str, Any] | None, path: str = "spec.context", *, partial: bool = False
) -> list[FieldViolation]:
    """What the schema refuses in the values `select` chose (`partial`: all but missing fields)."""
    if schema is None or values is None:
        return []
    try:
        _adapter(schema).validate_python(values)
    except ValidationError as exc:
        out = []
        for error in exc.errors(include_url=False):
            if error["type"] == "missing" and (partial or is_typeddict(schema)):
                continue  # LangGraph hands a TypedDict context over as it is: a node may not need the key
            where = ".".join(str(part) for part in error["loc"])
            out.append(FieldViolation(f"{path}.{where}" if where else path, error["msg"]))
        return out
    except Exception as exc:  # noqa: BLE001 - a schema pydantic cannot read: LangGraph will coerce it at run time
        return [] if type(exc).__name__ == "PydanticSchemaGenerationError" else [FieldViolation(path, str(exc))]
    return []


def build(schema: type | None, values: dict[str, Any] | None) -> Any:
    """The context object the graph reads: the schema's instance (a dict for a TypedDict)."""
    if schema is None or values is None:
        return values
    try:
        return _adapter(schema).validate_python(values)
    except Exception:  # noqa: BLE001 - a schema pydantic cannot read, or one that changed: as LangGraph coerces
        if isinstance(schema, type) and (issubclass(schema, BaseModel) or dataclasses.is_dataclass(schema)):
            return schema(**values)
        return values
