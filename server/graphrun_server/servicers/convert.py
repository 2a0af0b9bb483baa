"""graphrun.v1 messages ↔ domain values: request parsing (with field-naming
validation) one way, records, states and events the other way."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from langgraph._internal._constants import NS_END, NS_SEP

from graphrun.v1 import assistant_pb2, cron_pb2, event_pb2, run_pb2, state_pb2, thread_pb2

from ..errors import FieldViolation, InvalidArgument
from ..events import RunEvent
from ..registry import Assistant
from ..runner import RunRequest
from ..runs.request import reserved
from ..storage.assistants import AssistantRecord
from ..storage.crons import CronRecord
from ..storage.records import RunRecord, ThreadRecord
from ..stream_events import MODE_ALIASES, STREAM_MODES
from ..wire import WireMessage, from_struct_value

MAX_RECURSION_LIMIT = 10_000
MAX_DURATION_SECONDS = 30 * 24 * 3600  # timeouts and start delays beyond a month are mistakes
# Bounds on what one request may carry (gRPC itself refuses messages over 16 MiB).
MAX_INPUT_BYTES = 8 * 1024 * 1024
MAX_SMALL_BYTES = 64 * 1024  # metadata, config, command.update
MAX_PAGE_SIZE = 1000  # the most a List answers at once
MAX_LIST_ITEMS = 100  # interrupt_before / interrupt_after / goto / stream_mode
MAX_NAMESPACE_BYTES = 1024  # a checkpoint_ns: a few levels of `node:task_id`
ALLOWED_CONFIG_KEYS = {"configurable", "tags", "recursion_limit"}

_STRATEGIES = {
    run_pb2.MULTITASK_STRATEGY_UNSPECIFIED: "reject",
    run_pb2.MULTITASK_STRATEGY_REJECT: "reject",
    run_pb2.MULTITASK_STRATEGY_INTERRUPT: "interrupt",
    run_pb2.MULTITASK_STRATEGY_ROLLBACK: "rollback",
    run_pb2.MULTITASK_STRATEGY_ENQUEUE: "enqueue",
}
_STRATEGY_ENUM = {v: k for k, v in _STRATEGIES.items() if k != run_pb2.MULTITASK_STRATEGY_UNSPECIFIED}
_DURABILITY = {
    run_pb2.DURABILITY_UNSPECIFIED: "sync",
    run_pb2.DURABILITY_SYNC: "sync",
    run_pb2.DURABILITY_ASYNC: "async",
    run_pb2.DURABILITY_EXIT: "exit",
}
_ON_COMPLETION = {
    run_pb2.ON_COMPLETION_UNSPECIFIED: "keep",
    run_pb2.ON_COMPLETION_KEEP: "keep",
    run_pb2.ON_COMPLETION_DELETE: "delete",
}
_ON_DISCONNECT = {
    run_pb2.ON_DISCONNECT_UNSPECIFIED: "cancel",
    run_pb2.ON_DISCONNECT_CANCEL: "cancel",
    run_pb2.ON_DISCONNECT_CONTINUE: "continue",
}
_ON_DISCONNECT_ENUM = {"cancel": run_pb2.ON_DISCONNECT_CANCEL, "continue": run_pb2.ON_DISCONNECT_CONTINUE}
RUN_STATUS = {
    "pending": run_pb2.RUN_STATUS_PENDING,
    "running": run_pb2.RUN_STATUS_RUNNING,
    "success": run_pb2.RUN_STATUS_SUCCESS,
    "error": run_pb2.RUN_STATUS_ERROR,
    "timeout": run_pb2.RUN_STATUS_TIMEOUT,
    "interrupted": run_pb2.RUN_STATUS_INTERRUPTED,
    "cancelled": run_pb2.RUN_STATUS_CANCELLED,
}
_THREAD_STATUS = {
    "idle": thread_pb2.THREAD_STATUS_IDLE,
    "busy": thread_pb2.THREAD_STATUS_BUSY,
    "interrupted": thread_pb2.THREAD_STATUS_INTERRUPTED,
    "error": thread_pb2.THREAD_STATUS_ERROR,
}


# -- requests -----------------------------------------------------------------------


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def check_uuid(value: str, field_path: str, violations: list[FieldViolation], *, required: bool = True) -> None:
    if not value:
        if required:
            violations.append(FieldViolation(field_path, "is required"))
    elif not _is_uuid(value):
        violations.append(FieldViolation(field_path, f"must be a UUID, got {value[:64]!r}"))


def require_uuid(value: str, field_path: str) -> str:
    violations: list[FieldViolation] = []
    check_uuid(value, field_path, violations)
    if violations:
        raise InvalidArgument(violations)
    return str(uuid.UUID(value))


def parse_checkpoint_ns(value: str, field_path: str = "checkpoint_ns") -> str:
    """A subgraph's checkpoint namespace, checked for LangGraph's shape before anything is read:
    `node:task_id` per level joined by `|` (a subgraph called again in one task adds a numeric
    level, `|1`). Empty: the root graph. Which subgraph it names is the graph's to say."""
    if not value:
        return ""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAMESPACE_BYTES:
        raise InvalidArgument(FieldViolation(field_path, f"is longer than {MAX_NAMESPACE_BYTES} bytes"))
    for i, level in enumerate(value.split(NS_SEP)):
        if i and level.isdigit():
            continue
        node, _, task_id = level.partition(NS_END)
        if not node or NS_END in task_id or (NS_END in level and not task_id) or "\x00" in level:
            raise InvalidArgument(
                FieldViolation(
                    field_path,
                    f"level {i + 1} is {level[:64]!r}: each level must be "
                    f"`node{NS_END}task_id`, levels joined by `{NS_SEP}`",
                )
            )
    return value


def struct_to_dict(message: struct_pb2.Struct | struct_pb2.Value, field_path: str) -> Any:
    """A Struct (or a Value) as JSON, refusing what JSON and PostgreSQL's jsonb cannot hold."""
    try:
        value = json_format.MessageToDict(message)
    except (ValueError, json_format.Error):  # a NaN or an infinity: not a JSON number
        raise InvalidArgument(FieldViolation(field_path, "numbers must be finite (not NaN or Infinity)")) from None
    value = from_struct_value(value)
    if _has_nul(value):
        raise InvalidArgument(FieldViolation(field_path, "must not contain NUL characters (\\u0000)"))
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def duration_seconds(message, field_path: str, violations: list[FieldViolation]) -> float | None:
    """A Duration field in seconds (None when unset or zero), bounded to a month."""
    seconds = message.seconds + message.nanos / 1e9
    if seconds < 0:
        violations.append(FieldViolation(field_path, "must not be negative"))
    elif seconds > MAX_DURATION_SECONDS:
        violations.append(FieldViolation(field_path, f"must be at most {MAX_DURATION_SECONDS} seconds"))
    return seconds if seconds > 0 else None


def _check_enum(value: int, enum_type, field_path: str, violations: list[FieldViolation]) -> None:
    if value not in enum_type.values():
        violations.append(
            FieldViolation(field_path, f"unknown value {value}; expected one of {', '.join(enum_type.keys())}")
        )


def check_config(config: dict[str, Any], violations: list[FieldViolation], path: str = "spec.config") -> None:
    """A LangGraph RunnableConfig as a run (or an assistant, `path` "config") may give it."""
    for key in sorted(set(config) - ALLOWED_CONFIG_KEYS):
        violations.append(
            FieldViolation(f"{path}.{key}", f"unknown key; allowed: {', '.join(sorted(ALLOWED_CONFIG_KEYS))}")
        )
    configurable = config.get("configurable", {})
    if not isinstance(configurable, dict):
        violations.append(FieldViolation(f"{path}.configurable", "must be an object"))
    else:
        for key in sorted(k for k in configurable if reserved(k)):
            violations.append(
                FieldViolation(
                    f"{path}.configurable.{key}",
                    "is reserved for the server and LangGraph; use the spec's own fields",
                )
            )
    tags = config.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        violations.append(FieldViolation(f"{path}.tags", "must be a list of strings"))
    limit = config.get("recursion_limit")
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RECURSION_LIMIT
    ):
        violations.append(
            FieldViolation(f"{path}.recursion_limit", f"must be an integer from 1 to {MAX_RECURSION_LIMIT}")
        )


def _parse_input(spec: run_pb2.RunSpec) -> tuple[Any, str | None]:
    """(input, the field it came in): `input` (an object) or `input_value` (any JSON value).
    A `null` input_value is LangGraph's None, no input: the run continues from the checkpoint."""
    if spec.HasField("input"):
        return struct_to_dict(spec.input, "spec.input"), "input"
    if spec.HasField("input_value"):
        return struct_to_dict(spec.input_value, "spec.input_value"), "input_value"
    return None, None


def parse_run_spec(
    spec: run_pb2.RunSpec, stream_modes: list[str] | None = None, *, subgraphs: bool = False
) -> RunRequest:
    """Validate a RunSpec, naming every bad field at once; return the RunRequest."""
    v: list[FieldViolation] = []
    if not spec.assistant_id:
        v.append(FieldViolation("spec.assistant_id", "is required"))
    check_uuid(spec.thread_id, "spec.thread_id", v, required=False)
    check_uuid(spec.checkpoint_id, "spec.checkpoint_id", v, required=False)
    if spec.checkpoint_id and not spec.thread_id:
        v.append(FieldViolation("spec.checkpoint_id", "needs spec.thread_id"))
    for name, enum_type in (
        ("multitask_strategy", run_pb2.MultitaskStrategy),
        ("if_not_exists", run_pb2.IfNotExists),
        ("granularity", run_pb2.Granularity),
        ("durability", run_pb2.Durability),
        ("on_disconnect", run_pb2.OnDisconnect),
        ("on_completion", run_pb2.OnCompletion),
    ):
        _check_enum(getattr(spec, name), enum_type, f"spec.{name}", v)
    if spec.on_completion == run_pb2.ON_COMPLETION_DELETE:
        if spec.thread_id:
            v.append(
                FieldViolation(
                    "spec.on_completion", "DELETE is for a run on a thread of its own: leave spec.thread_id empty"
                )
            )
        if spec.webhook:
            v.append(
                FieldViolation(
                    "spec.on_completion",
                    "DELETE cannot be combined with spec.webhook (the run it would report is deleted)",
                )
            )
    for name, limit in (
        ("input", MAX_INPUT_BYTES),
        ("input_value", MAX_INPUT_BYTES),
        ("metadata", MAX_SMALL_BYTES),
        ("config", MAX_SMALL_BYTES),
        ("context", MAX_SMALL_BYTES),
    ):
        if getattr(spec, name).ByteSize() > limit:
            v.append(FieldViolation(f"spec.{name}", f"is larger than {limit} bytes"))
    if spec.command.update.ByteSize() > MAX_INPUT_BYTES:
        v.append(FieldViolation("spec.command.update", f"is larger than {MAX_INPUT_BYTES} bytes"))
    for name, items in (
        ("interrupt_before", spec.interrupt_before),
        ("interrupt_after", spec.interrupt_after),
        ("command.goto", spec.command.goto),
    ):
        if len(items) > MAX_LIST_ITEMS:
            v.append(FieldViolation(f"spec.{name}", f"has more than {MAX_LIST_ITEMS} entries"))
    if len(stream_modes or []) > MAX_LIST_ITEMS:
        v.append(FieldViolation("stream_mode", f"has more than {MAX_LIST_ITEMS} entries"))
    if len(spec.request_id) > 128 or "\x00" in spec.request_id:
        v.append(FieldViolation("spec.request_id", "must be at most 128 characters, without NUL"))
    if len(spec.webhook) > 2048 or "\x00" in spec.webhook:
        v.append(FieldViolation("spec.webhook", "must be at most 2048 characters, without NUL"))
    given = [name for name in ("input", "input_value", "command") if spec.HasField(name)]
    for name in given[1:]:
        v.append(
            FieldViolation(
                f"spec.{name}",
                f"cannot be combined with spec.{given[0]}: set one of spec.input, spec.input_value and spec.command",
            )
        )
    command = None
    if spec.HasField("command"):
        cmd = spec.command
        command = {}
        if cmd.HasField("resume"):
            command["resume"] = struct_to_dict(cmd.resume, "spec.command.resume")
        if cmd.HasField("update"):
            command["update"] = struct_to_dict(cmd.update, "spec.command.update")
        if cmd.goto:
            command["goto"] = list(cmd.goto)
        if not command:
            v.append(FieldViolation("spec.command", "must set resume, update or goto"))
    if command and "resume" in command and not spec.thread_id:
        v.append(FieldViolation("spec.command.resume", "needs spec.thread_id: only an existing thread can be resumed"))
    input, input_field = _parse_input(spec)
    if not spec.thread_id and input is None and not spec.HasField("command"):
        v.append(
            FieldViolation(
                "spec.input_value", "is null, which is no input (LangGraph's None); a new thread needs input"
            )
            if input_field
            else FieldViolation("spec.input", "is required for a new thread (give spec.thread_id to continue one)")
        )
    config = struct_to_dict(spec.config, "spec.config")
    check_config(config, v)
    if spec.assistant_version < 0:
        v.append(FieldViolation("spec.assistant_version", "must not be negative (0: the assistant's current version)"))
    context = struct_to_dict(spec.context, "spec.context") if spec.HasField("context") else None
    metadata = struct_to_dict(spec.metadata, "spec.metadata")
    timeout = duration_seconds(spec.timeout, "spec.timeout", v) if spec.HasField("timeout") else None
    # None: Wait, which records no events but its metadata and end; []: the default, `values`.
    modes = (
        [] if stream_modes is None else list(dict.fromkeys(MODE_ALIASES.get(m, m) for m in stream_modes or ["values"]))
    )
    for i, mode in enumerate(stream_modes or []):
        if mode not in STREAM_MODES and mode not in MODE_ALIASES:
            v.append(
                FieldViolation(
                    f"stream_mode[{i}]", f"unknown mode {mode[:64]!r}; expected one of {', '.join(STREAM_MODES)}"
                )
            )
    if v:
        raise InvalidArgument(v)
    return RunRequest(
        assistant_id=spec.assistant_id,
        thread_id=str(uuid.UUID(spec.thread_id)) if spec.thread_id else None,
        input=input,
        input_field=input_field if input_field != "input" else None,
        command=command,
        config=config,
        metadata=metadata,
        interrupt_before=list(spec.interrupt_before),
        interrupt_after=list(spec.interrupt_after),
        multitask_strategy=_STRATEGIES[spec.multitask_strategy],
        create_thread=spec.if_not_exists == run_pb2.IF_NOT_EXISTS_CREATE,
        checkpoint_id=spec.checkpoint_id or None,
        durability=_DURABILITY[spec.durability],
        stream_modes=modes,
        subgraphs=subgraphs,
        webhook=spec.webhook or None,
        request_id=spec.request_id or None,
        on_completion=_ON_COMPLETION.get(spec.on_completion, "keep"),
        timeout=timeout,
        on_disconnect=_ON_DISCONNECT[spec.on_disconnect],
        context=context,
        assistant_version=spec.assistant_version or None,
    )


# -- responses ----------------------------------------------------------------------


def fill_struct(message: struct_pb2.Struct, mapping: Mapping[str, Any]) -> struct_pb2.Struct:
    """`message.update(mapping)` for JSON values in half the time: a long conversation's state is
    thousands of values, and protobuf's own `update` checks every one against every kind."""
    fields = message.fields
    for key, value in mapping.items():
        _fill_value(fields[key], value)
    return message


def _fill_value(target: struct_pb2.Value, value: Any) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is dict:
        if value:
            fill_struct(target.struct_value, value)
        else:
            target.struct_value.SetInParent()
    elif kind is list:
        if not value:
            target.list_value.SetInParent()
        elif all(type(item) is WireMessage for item in value):  # a conversation: parsed at once
            target.list_value.MergeFromString(b"".join([part for item in value for part in _framed(item)]))
        else:
            add = target.list_value.values.add
            for item in value:
                _fill_value(add(), item)
    elif kind is WireMessage:
        target.MergeFromString(_framed(value)[1])
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif kind is bool:
        target.bool_value = value
    elif kind is int or kind is float:
        target.number_value = value
    elif isinstance(value, Mapping):  # what protobuf's update also takes: subclasses, tuples
        _fill_value(target, dict(value))
    elif isinstance(value, (list, tuple)):
        _fill_value(target, list(value))
    elif isinstance(value, (int, float)):  # an IntEnum, a float subclass (bool cannot be subclassed)
        target.number_value = value
    else:
        raise ValueError(f"a {kind.__name__} is not a JSON value")


def _framed(message: WireMessage) -> tuple[bytes, bytes]:
    """A remembered message as one element of a `ListValue` (its field 1: tag and length, then the
    `Value`), made the first time it is answered: the next answers holding it copy bytes."""
    try:
        return message.header, message.encoded
    except AttributeError:
        value = struct_pb2.Value()
        fill_struct(value.struct_value, message)
        message.encoded = value.SerializeToString()
        message.header = _LIST_ELEMENT + _varint(len(message.encoded))
        return message.header, message.encoded


_LIST_ELEMENT = b"\x0a"  # ListValue.values: field 1, length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def to_struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    return fill_struct(struct_pb2.Struct(), value or {})


def to_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    _fill_value(message, value)
    return message


def _fill_time(target: timestamp_pb2.Timestamp, seconds: float) -> None:
    """A Unix time in seconds (a float, as events keep it) into `target`."""
    target.FromNanoseconds(int(seconds * 1e9))


def _timestamp(value: dt.datetime | str | float | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, float):
        _fill_time(ts, value)
    else:
        ts.FromDatetime(value)
    return ts


def run_to_proto(run: RunRecord) -> run_pb2.Run:
    message = run_pb2.Run(
        run_id=run.run_id,
        thread_id=run.thread_id,
        assistant_id=run.assistant_id,
        status=RUN_STATUS[run.status],
        attempt=run.attempt,
        metadata=to_struct(run.metadata),
        created_at=_timestamp(run.created_at),
        updated_at=_timestamp(run.updated_at),
        multitask_strategy=_STRATEGY_ENUM.get(run.multitask_strategy, run_pb2.MULTITASK_STRATEGY_UNSPECIFIED),
        started_at=_timestamp(run.started_at),
        ended_at=_timestamp(run.ended_at),
        current_node=run.current_node or "",
        step=run.step or 0,
        on_disconnect=_ON_DISCONNECT_ENUM.get(run.on_disconnect, run_pb2.ON_DISCONNECT_UNSPECIFIED),
        assistant_version=run.assistant_version or 0,
        graph_id=run.graph,
        cron_id=(run.spec or {}).get("cron_id") or "",
        cron_tick_time=_timestamp((run.spec or {}).get("cron_tick")),
    )
    if run.error:
        message.error.CopyFrom(
            run_pb2.RunError(
                type=run.error.get("type", ""), message=run.error.get("message", ""), reason=run.error.get("reason", "")
            )
        )
    if run.webhook:  # its delivery
        w = run.webhook
        message.webhook.CopyFrom(
            run_pb2.WebhookDelivery(
                url=w["url"],
                status=_WEBHOOK_STATUS[w["status"]],
                attempts=w["attempts"],
                last_error=w.get("last_error") or "",
                delivered_at=_timestamp(w.get("delivered_at")),
                next_attempt_at=_timestamp(w["next_attempt_at"]) if w["status"] == "pending" else None,
            )
        )
    elif url := (run.spec or {}).get("webhook"):  # not ended yet
        message.webhook.CopyFrom(run_pb2.WebhookDelivery(url=url, status=run_pb2.WEBHOOK_STATUS_PENDING))
    return message


_WEBHOOK_STATUS = {
    "pending": run_pb2.WEBHOOK_STATUS_PENDING,
    "delivered": run_pb2.WEBHOOK_STATUS_DELIVERED,
    "failed": run_pb2.WEBHOOK_STATUS_FAILED,
}


_TTL_STRATEGIES = {"delete": thread_pb2.TTL_STRATEGY_DELETE, "keep_latest": thread_pb2.TTL_STRATEGY_KEEP_LATEST}
_DURABILITY_ENUM = {"sync": run_pb2.DURABILITY_SYNC, "async": run_pb2.DURABILITY_ASYNC, "exit": run_pb2.DURABILITY_EXIT}
_ON_COMPLETION_ENUM = {"keep": run_pb2.ON_COMPLETION_KEEP, "delete": run_pb2.ON_COMPLETION_DELETE}


def run_spec_to_proto(req: RunRequest) -> run_pb2.RunSpec:
    """A stored run request as the RunSpec that asks for it (what `parse_run_spec` read), for the
    fields a cron's runs may have."""
    spec = run_pb2.RunSpec(
        assistant_id=req.assistant_id,
        assistant_version=req.assistant_version or 0,
        thread_id=req.thread_id or "",
        interrupt_before=req.interrupt_before,
        interrupt_after=req.interrupt_after,
        multitask_strategy=_STRATEGY_ENUM.get(req.multitask_strategy, run_pb2.MULTITASK_STRATEGY_UNSPECIFIED),
        durability=_DURABILITY_ENUM.get(req.durability, run_pb2.DURABILITY_UNSPECIFIED),
        webhook=req.webhook or "",
        on_completion=_ON_COMPLETION_ENUM.get(req.on_completion, run_pb2.ON_COMPLETION_UNSPECIFIED),
    )
    if req.input_field == "input_value":
        spec.input_value.CopyFrom(to_value(req.input))
    elif req.input is not None:
        fill_struct(spec.input, req.input)
    for name in ("config", "metadata"):
        if getattr(req, name):
            fill_struct(getattr(spec, name), getattr(req, name))
    if req.context is not None:
        spec.context.SetInParent()
        fill_struct(spec.context, req.context)
    if req.timeout:
        spec.timeout.FromTimedelta(dt.timedelta(seconds=req.timeout))
    return spec


def cron_to_proto(cron: CronRecord) -> cron_pb2.Cron:
    req = RunRequest.from_json(cron.spec)
    message = cron_pb2.Cron(
        cron_id=cron.cron_id,
        schedule=cron.schedule,
        timezone=cron.timezone,
        spec=run_spec_to_proto(req),
        stream_mode=req.stream_modes,
        subgraphs=req.subgraphs,
        end_time=_timestamp(cron.end_time),
        paused=cron.paused,
        metadata=to_struct(cron.metadata),
        next_run_time=_timestamp(cron.next_run_at),
        last_run_id=cron.last_run_id or "",
        last_tick_time=_timestamp(cron.last_tick_at),
        created_at=_timestamp(cron.created_at),
        updated_at=_timestamp(cron.updated_at),
    )
    if skip := cron.last_skip:
        message.last_skip.CopyFrom(
            cron_pb2.CronSkip(tick_time=_timestamp(skip["tick_at"]), reason=skip["reason"], message=skip["message"])
        )
    return message


def thread_to_proto(thread: ThreadRecord, default_ttl_minutes: float | None = None) -> thread_pb2.Thread:
    """A thread record; `expires_at` from its own TTL, else the server's default (minutes)."""
    message = thread_pb2.Thread(
        thread_id=thread.thread_id,
        created_at=_timestamp(thread.created_at),
        updated_at=_timestamp(thread.updated_at),
        metadata=to_struct(thread.metadata),
        status=_THREAD_STATUS[thread.status],
        assistant_id=thread.assistant_id or "",
        graph_id=thread.graph or "",
    )
    if thread.ttl_minutes:
        message.ttl.ttl.FromTimedelta(dt.timedelta(minutes=thread.ttl_minutes))
        message.ttl.strategy = _TTL_STRATEGIES[thread.ttl_strategy or "delete"]
    minutes = thread.ttl_minutes or default_ttl_minutes
    if minutes:
        message.expires_at.CopyFrom(_timestamp(thread.updated_at + dt.timedelta(minutes=minutes)))
    return message


def _interrupt(i: dict) -> state_pb2.Interrupt:
    return state_pb2.Interrupt(id=i.get("id") or "", value=to_value(i.get("value")))


def _ref(ref: dict | None) -> state_pb2.CheckpointRef | None:
    return state_pb2.CheckpointRef(**ref) if ref else None


def _task(task: dict[str, Any], granularity: int) -> state_pb2.Task:
    """A pending task; a subgraph task's own state (GetState with `subgraphs`) nested in it."""
    message = state_pb2.Task(
        id=task["id"],
        name=task["name"],
        error=task.get("error", ""),
        interrupts=[_interrupt(i) for i in task.get("interrupts", [])],
        checkpoint_ns=task.get("checkpoint_ns", ""),
    )
    if task.get("state") is not None:
        message.state.SetInParent()  # set even when the subgraph has not started (an empty state)
        state_to_proto(task["state"], granularity, into=message.state)
    return message


def state_to_proto(
    state: dict[str, Any], granularity: int = run_pb2.GRANULARITY_FULL, into: state_pb2.ThreadState | None = None
) -> state_pb2.ThreadState:
    """A JSON thread state as ThreadState, trimmed by granularity (see `Granularity`); built in
    `into` when given (a field of the response: a large state is not copied again)."""
    values = state.get("values") or {}
    message = state_pb2.ThreadState() if into is None else into
    message.next.extend(state.get("next", []))
    message.interrupts.extend(_interrupt(i) for i in state.get("interrupts", []))
    if granularity in (run_pb2.GRANULARITY_LOW, run_pb2.GRANULARITY_PARTIAL):
        fill_struct(message.values, {"messages": values["messages"]} if "messages" in values else {})
    else:
        fill_struct(message.values, values)
        message.tasks.extend(_task(t, granularity) for t in state.get("tasks", []))
    if granularity != run_pb2.GRANULARITY_LOW:
        if state.get("checkpoint"):
            message.checkpoint.CopyFrom(_ref(state["checkpoint"]))
        if state.get("parent_checkpoint"):
            message.parent_checkpoint.CopyFrom(_ref(state["parent_checkpoint"]))
        fill_struct(message.metadata, state.get("metadata") or {})
        if state.get("created_at"):
            message.created_at.CopyFrom(_timestamp(state["created_at"]))
    return message


def graph_to_proto(graph: Assistant) -> assistant_pb2.Assistant:
    """What an assistant shows of its graph: node names and JSON schemas."""
    schemas = graph.schemas()
    return assistant_pb2.Assistant(
        graph_id=graph.graph_id,
        input_schema=to_struct(schemas["input"]),
        output_schema=to_struct(schemas["output"]),
        config_schema=to_struct(schemas["config"]),
        nodes=graph.nodes,
        context_schema=to_struct(schemas["context"]) if graph.context_schema else None,
    )


def assistant_to_proto(record: AssistantRecord, graph: assistant_pb2.Assistant | None) -> assistant_pb2.Assistant:
    """An assistant at its current version, with its graph's part (`graph_to_proto`) when served."""
    message = assistant_pb2.Assistant()
    if graph is not None:
        message.CopyFrom(graph)
    message.assistant_id = record.assistant_id
    message.graph_id = record.graph_id
    message.name = record.name
    message.description = record.description
    message.version = record.version
    message.webhook = record.webhook or ""
    if record.config:
        fill_struct(message.config, record.config)
    if record.context:
        fill_struct(message.context, record.context)
    if record.metadata:
        fill_struct(message.metadata, record.metadata)
    if record.created_at:
        message.created_at.CopyFrom(_timestamp(record.created_at))
    if record.updated_at:
        message.updated_at.CopyFrom(_timestamp(record.updated_at))
    return message


def assistant_version_to_proto(record: AssistantRecord) -> assistant_pb2.AssistantVersion:
    return assistant_pb2.AssistantVersion(
        assistant_id=record.assistant_id,
        version=record.version,
        graph_id=record.graph_id,
        name=record.name,
        description=record.description,
        config=to_struct(record.config),
        context=to_struct(record.context),
        metadata=to_struct(record.metadata),
        webhook=record.webhook or "",
        created_at=_timestamp(record.created_at),
    )


def fill_end(message, end: dict[str, Any], granularity: int):
    """Fill a message's `run` and `state` (an end event's, Wait's answer) from an end event's data;
    the state is built in place, a long conversation's is not copied."""
    message.run.CopyFrom(run_to_proto(end["run"]))
    if end["state"]:
        state_to_proto(end["state"], granularity, into=message.state)
    return message


_PHASES = {"started": event_pb2.TASK_PHASE_STARTED, "finished": event_pb2.TASK_PHASE_FINISHED}


def _task_event(d: dict[str, Any]) -> event_pb2.TaskEvent:
    message = event_pb2.TaskEvent(
        id=d["id"],
        name=d["name"],
        step=d["step"],
        phase=_PHASES[d["phase"]],
        error=d.get("error", ""),
        interrupts=[_interrupt(i) for i in d.get("interrupts", ())],
        triggers=d.get("triggers", ()),
    )
    if "input" in d:  # events stored before tasks carried them have neither
        message.input.CopyFrom(to_value(d["input"]))
    if "result" in d:
        fill_struct(message.result, d["result"])
    if d.get("metadata"):
        fill_struct(message.metadata, d["metadata"])
    return message


def _fill_message_event(message: event_pb2.MessageEvent, d: dict[str, Any]) -> None:
    """In place: a streamed token is the event sent most often, and each copy of a message costs."""
    message.message_id, message.delta, message.node, message.step = d["message_id"], d["delta"], d["node"], d["step"]
    fill_struct(message.message, d["message"])
    if "metadata" in d:
        fill_struct(message.metadata, d["metadata"])


def _debug_event(d: dict[str, Any]) -> event_pb2.DebugEvent:
    message = event_pb2.DebugEvent(step=d["step"], timestamp=_timestamp(d.get("timestamp")))
    if "checkpoint" in d:
        state_to_proto(d["checkpoint"], into=message.checkpoint)
    else:
        message.task.CopyFrom(_task_event(d["task"]))
    return message


def _langchain_event(d: dict[str, Any]) -> event_pb2.LangChainEvent:
    message = event_pb2.LangChainEvent(
        event=d["event"], name=d["name"], run_id=d["run_id"], parent_ids=d["parent_ids"], tags=d["tags"]
    )
    fill_struct(message.metadata, d["metadata"])
    fill_struct(message.data, d["data"])
    return message


def fill_event(message: event_pb2.RunEvent, event: RunEvent, granularity: int) -> None:
    """The event into `message`, in place (a response's field: no copy of it)."""
    message.sequence = event.sequence
    _fill_time(message.event_time, event.time)
    message.namespace.extend(event.namespace)
    d = event.data
    if event.kind == "metadata":
        message.metadata.CopyFrom(event_pb2.RunMetadataEvent(**d))
    elif event.kind == "values":
        fill_struct(message.values.values, d["values"])
    elif event.kind == "updates":
        message.updates.CopyFrom(event_pb2.UpdatesEvent(node=d["node"], update=to_value(d["update"])))
    elif event.kind == "message":
        _fill_message_event(message.message, d)
    elif event.kind == "custom":
        message.custom.CopyFrom(event_pb2.CustomEvent(data=to_value(d["data"])))
    elif event.kind == "task":
        message.task.CopyFrom(_task_event(d))
    elif event.kind == "checkpoint":
        state_to_proto(d["state"], into=message.checkpoint.state)
    elif event.kind == "debug":
        message.debug.CopyFrom(_debug_event(d))
    elif event.kind == "langchain_event":
        message.langchain_event.CopyFrom(_langchain_event(d))
    elif event.kind == "end":
        fill_end(message.end, d, granularity)
    else:
        raise ValueError(f"unknown event kind {event.kind}")
