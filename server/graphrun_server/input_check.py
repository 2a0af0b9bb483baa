"""A run's input checked against its graph before the run is recorded.

What a client sends as `spec.input` (or `spec.input_value`) is held to the contract the graph
declares, the JSON schema `AssistantService` serves as `input_schema`, so that bad input is
`INVALID_ARGUMENT` naming the field (`spec.input.count`, `spec.input_value[2]`) rather than a
run that fails at its first step and leaves its thread in ERROR:

- A pydantic state is validated by the model itself, as LangGraph's nodes validate it: the same
  coercions (`"2"` is an int), the same errors, over the state the input would make (on a
  thread that holds values, those count: an input there may be a partial update).
- Other states (TypedDict, dataclass) and the functional API's single value are checked against
  the JSON schema: the type of each key set to a plain value, and for a key with a reducer
  (which takes updates of its own shape) the update applied as LangGraph's input step applies
  it: a reducer that refuses it (`operator.add` given an int for a list) refuses the input, and
  what it makes must be of the key's type. Message keys take LangChain's forms, which the schema
  does not describe: registry's `message_violations` checks them. A required key must be given, or held by the
  thread, where LangGraph itself would fail without it (a dataclass state, built at each node).
  A TypedDict state's keys LangGraph never demands: an input that sets some of them is a partial
  update of the state, legal in LangGraph, and only one that sets none, on a thread that holds
  none (the graph would start from nothing), is refused naming the required keys.
- A graph with a state takes a JSON object (LangGraph: "Expected dict").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pydantic
from jsonschema.exceptions import ValidationError as SchemaError
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.channels.last_value import LastValue
from langgraph.pregel import Pregel

from .errors import FieldViolation, InvalidArgument
from .incoming import message_channels
from .registry import Assistant

log = logging.getLogger(__name__)


@dataclass
class _Contract:
    """What one graph takes as input (built once per served graph)."""

    keys: frozenset[str] | None  # the input's state keys; None: the input is one value (functional API)
    reduced: frozenset[str]  # keys with a reducer (not messages): the update is applied, then checked
    required: tuple[str, ...]  # keys the schema requires
    demanded: bool  # LangGraph fails without the required keys (a dataclass state)
    model: type[pydantic.BaseModel] | None  # a pydantic input schema: it validates, not the JSON schema
    validator: jsonschema.protocols.Validator | None  # types; None when there is nothing to check


_contracts: dict[int, tuple[Assistant, _Contract]] = {}


async def check_input(
    assistant: Assistant, value: Any, field: str, thread_id: str | None, checkpoint_id: str | None
) -> None:
    """Raise InvalidArgument naming each part of `value` the graph would refuse; `field` is the
    request's field (`input` or `input_value`); the thread (at `checkpoint_id`, for a fork) is
    read only when what it holds decides."""
    if value is None:  # no input: the run continues from the checkpoint
        return
    path = f"spec.{field}"
    contract = _contract(assistant)
    if contract.keys is None:
        violations = list(_schema_violations(contract.validator, value, path))
    elif not isinstance(value, dict):
        violations = [
            FieldViolation(
                path, f"must be a JSON object (graph {assistant.graph_id!r} takes its state's keys), not {_kind(value)}"
            )
        ]
    else:
        violations = assistant.message_violations(assistant.as_input(value), path)
        if contract.model is not None:
            violations += await _model_violations(assistant, contract.model, value, path, thread_id, checkpoint_id)
        else:
            state = {k: v for k, v in value.items() if k in contract.keys and k not in contract.reduced}
            made, refused = await _reduced(assistant, contract, value, path, thread_id, checkpoint_id)
            violations += refused
            violations += _schema_violations(contract.validator, state | made, path)
            violations += await _missing(assistant, contract, value, path, thread_id, checkpoint_id)
    if violations:
        raise InvalidArgument(violations)


# -- the contract ---------------------------------------------------------------------


def prepare(assistants) -> None:
    """Build every graph's input contract now, at start-up: building one (jsonschema checks the
    schema itself) took ~0.2 s, which the first run of each graph paid."""
    for assistant in assistants:
        _contract(assistant)


def _contract(assistant: Assistant) -> _Contract:
    """The graph's input contract, from the schema AssistantService serves (cached: graphs are
    loaded once)."""
    cached = _contracts.get(id(assistant))
    if cached is None or cached[0] is not assistant:
        cached = _contracts[id(assistant)] = (assistant, _build_contract(assistant))
    return cached[1]


def _build_contract(assistant: Assistant) -> _Contract:
    """A state graph's types are checked key by key, only for keys that hold what is sent (no
    reducer); a graph taking one value is checked whole."""
    schema = assistant.schemas()["input"]
    graph = assistant.graph
    keys, input_type = _input_keys(graph)
    if keys is None:
        return _Contract(None, frozenset(), (), False, None, _validator(assistant, schema))
    model = input_type if isinstance(input_type, type) and issubclass(input_type, pydantic.BaseModel) else None
    skip = message_channels(graph)
    plain = {k for k in keys if isinstance(graph.channels.get(k), LastValue) and k not in skip}
    reduced = {k for k in keys if isinstance(graph.channels.get(k), BinaryOperatorAggregate) and k not in skip}
    typed = {
        **schema,
        "required": [],
        "properties": {k: v for k, v in (schema.get("properties") or {}).items() if k in plain | reduced},
    }
    typed.pop("additionalProperties", None)  # LangGraph drops keys the input schema lacks
    validator = _validator(assistant, typed) if model is None and typed["properties"] else None
    return _Contract(
        frozenset(keys),
        frozenset(reduced),
        tuple(k for k in schema.get("required") or () if k in keys),
        dataclasses.is_dataclass(input_type),
        model,
        validator,
    )


def _input_keys(graph: Pregel) -> tuple[list[str] | None, Any]:
    """(the state keys the input may set, the input schema's type); (None, None) for a graph whose
    input is one value (an `@entrypoint`)."""
    builder = getattr(graph, "builder", None)
    schemas = getattr(builder, "schemas", None) or {}
    input_type = getattr(builder, "input_schema", None)
    if input_type in schemas:
        return [k for k in schemas[input_type] if k in graph.channels], input_type
    if isinstance(graph.input_channels, list):  # a Pregel built by hand
        return list(graph.input_channels), None
    return None, None


def _validator(assistant: Assistant, schema: dict) -> jsonschema.protocols.Validator | None:
    """A validator for the schema, without the parts that describe LangChain messages (their
    JSON schema is stricter than the forms LangChain reads: a `{"role", "content"}` dict matches
    several message types, which `oneOf` refuses). None when nothing is left to check (an
    unannotated `@entrypoint`'s schema is just a title)."""
    schema = _without_messages(schema)
    if not schema.keys() - {"title", "description", "default", "$defs"}:
        return None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:  # a schema LangGraph made from an odd type: check nothing
        log.warning("graph %s: its input schema cannot be checked (%s)", assistant.graph_id, exc.message)
        return None
    return cls(schema)


_REF = re.compile(r'"\$ref":\s*"#/\$defs/([^"]+)"')
_MESSAGE_FIELDS = {"content", "additional_kwargs", "response_metadata"}  # every LangChain message's (BaseMessage)


def _without_messages(schema: dict) -> dict:
    """The schema with every property (or the whole, for one value) that refers to a LangChain
    message type dropped."""
    defs = schema.get("$defs") or {}
    messages = {name for name, d in defs.items() if (d.get("properties") or {}).keys() >= _MESSAGE_FIELDS}
    grown = True
    while grown:  # definitions that hold messages hold them too
        more = {
            name for name, d in defs.items() if name not in messages and set(_REF.findall(json.dumps(d))) & messages
        }
        messages |= more
        grown = bool(more)
    if not messages:
        return schema

    def refers(part: Any) -> bool:
        return bool(set(_REF.findall(json.dumps(part))) & messages)

    if "properties" not in schema:
        return {} if refers({k: v for k, v in schema.items() if k != "$defs"}) else schema
    return {**schema, "properties": {k: v for k, v in schema["properties"].items() if not refers(v)}}


# -- JSON schema checks ---------------------------------------------------------------


def _schema_violations(
    validator: jsonschema.protocols.Validator | None, value: Any, path: str
) -> Iterator[FieldViolation]:
    if validator is None:
        return
    seen = set()
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        for violation in _describe(error, path):
            if violation.field not in seen:
                seen.add(violation.field)
                yield violation


def _describe(error: SchemaError, path: str) -> list[FieldViolation]:
    """One schema error as field violations, each saying what was expected, not repeating the value."""
    where = _path(path, error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        return [
            FieldViolation(_path(where, [name]), "is required")
            for name in error.validator_value
            if name not in error.instance
        ]
    if error.validator == "type":
        return [FieldViolation(where, f"must be {_types(error.validator_value)}, not {_kind(error.instance)}")]
    if error.validator in ("anyOf", "oneOf"):
        types = [branch.get("type") for branch in error.validator_value]
        if all(isinstance(t, str) for t in types):
            return [FieldViolation(where, f"must be {_types(types)}, not {_kind(error.instance)}")]
        return [FieldViolation(where, "matches none of the forms the input schema allows")]
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return [FieldViolation(where, f"must be one of {', '.join(json.dumps(a) for a in allowed)}")]
    return [FieldViolation(where, error.message)]


_ARTICLES = {
    "integer": "an integer",
    "object": "an object",
    "array": "a list",
    "null": "null",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
}


def _types(names: str | list[str]) -> str:
    names = [names] if isinstance(names, str) else names
    return " or ".join(_ARTICLES.get(n, n) for n in names)


def _kind(value: Any) -> str:
    """What JSON value this is, for messages: "a string", "a list", …"""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return {str: "a string", float: "a number", list: "a list", dict: "an object"}.get(type(value), "null")


def _path(base: str, parts: Any) -> str:
    """spec.input + ("items", 2, "name") -> spec.input.items[2].name"""
    for part in parts:
        base += f"[{part}]" if isinstance(part, int) else f".{part}"
    return base


async def _missing(
    assistant: Assistant, contract: _Contract, value: dict, path: str, thread_id: str | None, checkpoint_id: str | None
) -> list[FieldViolation]:
    """Required keys the input leaves out where LangGraph would fail without them, or where the
    graph would start from nothing at all (see the module docstring)."""
    missing = [k for k in contract.required if k not in value]
    if not missing or (not contract.demanded and contract.keys & value.keys()):  # a partial update
        return []
    held = await _thread_values(assistant, thread_id, checkpoint_id) if thread_id else {}
    if not contract.demanded:  # a TypedDict state: any one of its keys would do
        if contract.keys & held.keys():  # an empty update of a state the thread holds
            return []
        why = "is required unless the input sets another key of the state (it sets none, and the thread holds none)"
        return [FieldViolation(_path(path, [k]), why) for k in missing]
    return [FieldViolation(_path(path, [k]), "is required") for k in missing if k not in held]


async def _reduced(
    assistant: Assistant, contract: _Contract, value: dict, path: str, thread_id: str | None, checkpoint_id: str | None
) -> tuple[dict[str, Any], list[FieldViolation]]:
    """The input's keys that have a reducer, each applied to a fresh channel as LangGraph's input
    step applies it: (what they make, to check against their types; the keys whose reducer refused
    the update). A reducer that refuses it on a fresh channel is tried again over what the thread
    holds (it may need a value to add to); what that makes is not type-checked (it includes the
    thread's own values), nor is an update that a fresh channel takes as its value without the
    reducer (a key whose type has no empty value, such as `list[str] | None`)."""
    made, refused, held = {}, [], None
    for key in contract.reduced & value.keys():
        spec = assistant.graph.channels[key]
        try:
            fresh = spec.copy()
            reduces = fresh.is_available()  # else (a type with no empty value) the update becomes the value
            result = _apply(fresh, value[key])
            if reduces:
                made[key] = result
            continue
        except Exception as exc:  # noqa: BLE001 - the reducer's own error: the run would fail at its input step
            reason = _reason(exc)
        if thread_id and held is None:
            held = await _thread_values(assistant, thread_id, checkpoint_id)
        if held and key in held:
            try:
                _apply(spec.from_checkpoint(held[key]), value[key])
                continue
            except Exception as exc:  # noqa: BLE001 - as above
                reason = _reason(exc)
        refused.append(FieldViolation(_path(path, [key]), f"cannot update the state: {reason}"))
    return made, refused


def _apply(channel, update: Any) -> Any:
    channel.update([update])
    return channel.get()


# -- pydantic states ------------------------------------------------------------------


async def _model_violations(
    assistant: Assistant,
    model: type[pydantic.BaseModel],
    value: dict,
    path: str,
    thread_id: str | None,
    checkpoint_id: str | None,
) -> list[FieldViolation]:
    """The model's errors for the state the input makes: on a fresh thread first; where that
    fails on a thread that holds values, again over them (LangGraph validates the whole state)."""
    violations = _validate(assistant, model, value, {}, path)
    if violations and thread_id:
        held = await _thread_values(assistant, thread_id, checkpoint_id)
        if held:
            violations = _validate(assistant, model, value, held, path)
    return violations


def _validate(
    assistant: Assistant, model: type[pydantic.BaseModel], value: dict, held: dict[str, Any], path: str
) -> list[FieldViolation]:
    """Apply the input to the graph's channels (reducers included: `add_messages` builds the
    messages) as LangGraph's input step does, then validate the state as its nodes do."""
    graph = assistant.graph
    skip = set(message_channels(graph))  # bad messages: reported by message_violations
    state, violations = {}, []
    for key in model.model_fields:
        if key in held and key in graph.channels:
            state[key] = held[key]
    for key, item in assistant.messages_from_json(assistant.as_input(value)).items():
        if key not in graph.channels:
            continue
        spec = graph.channels[key]
        channel = spec.from_checkpoint(held[key]) if key in held else spec.copy()
        try:
            channel.update([item])
            state[key] = channel.get()
        except Exception as exc:  # noqa: BLE001 - a reducer refuses the update: the run would fail at its input step
            if key not in skip:
                violations.append(FieldViolation(_path(path, [key]), f"cannot update the state: {_reason(exc)}"))
            state.pop(key, None)
    try:
        model.model_validate(state)
    except pydantic.ValidationError as exc:
        violations += [
            FieldViolation(_path(path, e["loc"]), "is required" if e["type"] == "missing" else e["msg"])
            for e in exc.errors()
            if e["type"] == "missing" or not (e["loc"] and e["loc"][0] in skip)
        ]
    except Exception as exc:  # noqa: BLE001 - a validator raising something pydantic does not wrap
        violations.append(FieldViolation(path, f"is refused by {model.__name__}: {_reason(exc)}"))
    return violations


def _reason(exc: Exception) -> str:
    return str(exc).split("\n")[0] or type(exc).__name__


async def _thread_values(assistant: Assistant, thread_id: str, checkpoint_id: str | None) -> dict[str, Any]:
    """The values the thread holds (at the checkpoint a fork starts from); {} for a new thread."""
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    saved = await assistant.graph.checkpointer.aget_tuple({"configurable": configurable})
    return dict(saved.checkpoint.get("channel_values") or {}) if saved is not None else {}
