"""Plain Python values <-> graphrun.v1 messages, shared by the sync and async clients.

Everything a client method does besides the call itself is here (requests from
keyword options, dicts and events from responses), so both clients build
identical requests and hand back identically shaped dicts.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Unpack, cast

import grpc
from google.protobuf import duration_pb2, field_mask_pb2, json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from google.protobuf.message import Message

from ._types import Event, EventKind, OnDisconnect, RunOptions, RunResult
from .v1 import (
    assistant_service_pb2,
    cron_pb2,
    cron_service_pb2,
    event_pb2,
    run_pb2,
    run_service_pb2,
    store_pb2,
    store_service_pb2,
    thread_pb2,
    thread_service_pb2,
)

DEFAULT_TARGET = "127.0.0.1:50051"
_COMMAND_KEYS = {"resume", "update", "goto"}
RUN_OPTIONS = frozenset(RunOptions.__optional_keys__)


def to_dict(message: Message) -> dict[str, Any]:
    """A message as a dict with proto field names, every field present, integers as ints, and
    enum values in the client's spelling (`RUN_STATUS_SUCCESS` -> `"success"`, see `enum_name`).

    Struct cannot tell 3 from 3.0 and JSON mapping quotes int64s; callers wrote
    `3` and expect `3` back, as the server does for what it reads.
    """
    raw = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    return _short_enums(message.DESCRIPTOR, cast(dict[str, Any], _ints(raw)))


def enum_prefix(enum: EnumDescriptor) -> str:
    """`RUN_STATUS_` for RunStatus: the zero value's name less `UNSPECIFIED` (buf's enum rules)."""
    return str(enum.values_by_number[0].name).removesuffix("UNSPECIFIED")


def enum_name(enum: EnumDescriptor, name: Any) -> Any:
    """`RUN_STATUS_SUCCESS` -> `"success"`: the one spelling of enum values the client uses, in what it
    returns and (besides the full names) what it takes. A number (a value newer than the stubs) stays."""
    prefix = enum_prefix(enum)
    return name.removeprefix(prefix).lower() if isinstance(name, str) and name.startswith(prefix) else name


@functools.cache
def _enum_fields(message: Descriptor) -> tuple[tuple[str, EnumDescriptor | Descriptor, bool], ...]:
    """The fields of `message` that are enums or graphrun messages (which may hold enums): their
    name, type and whether they are maps. Well-known types (Struct, Timestamp, …) hold none."""
    fields = []
    for field in message.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        item = field.message_type.fields_by_name["value"] if is_map else field
        if item.enum_type is not None:
            fields.append((field.name, item.enum_type, is_map))
        elif item.message_type is not None and item.message_type.full_name.startswith("graphrun."):
            fields.append((field.name, item.message_type, is_map))
    return tuple(fields)


def _short_enums(message: Descriptor, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a dict of `message`) with its enum values, nested ones included, as `enum_name` spells them."""

    def short(kind: EnumDescriptor | Descriptor, value: Any) -> Any:
        return enum_name(kind, value) if isinstance(kind, EnumDescriptor) else _short_enums(kind, value)

    for name, kind, is_map in _enum_fields(message):
        value = data.get(name)
        if value is None:
            continue
        if is_map:
            data[name] = {key: short(kind, item) for key, item in value.items()}
        elif isinstance(value, list):
            data[name] = [short(kind, item) for item in value]
        else:
            data[name] = short(kind, value)
    return data


def state_dict(message: Message) -> dict[str, Any]:
    """A ThreadState as a dict that always has `values` (an empty thread has no Struct to print),
    and so do the subgraph states nested in its tasks (GetState with `subgraphs`)."""
    return _with_values(to_dict(message))


def _with_values(state: dict[str, Any]) -> dict[str, Any]:
    state.setdefault("values", {})
    for task in state.get("tasks") or []:
        if task.get("state") is not None:
            _with_values(task["state"])
    return state


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(dict(value or {}), message)
    return message


def to_value(value: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(value, message)
    return message


def _enum(value: str | int | None, enum_type: Any, option: str) -> Any:
    """`"create"` -> IF_NOT_EXISTS_CREATE (its number): lowercase names keep callers free of the stubs.

    The full enum name (`"IF_NOT_EXISTS_CREATE"`, as the stubs spell it) and the number are accepted too.
    (Typed Any: the stubs type each enum field as its own enum class, which a number of any enum is not.)
    """
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    enum = enum_type.DESCRIPTOR
    prefix = enum_prefix(enum)
    name = value.upper()
    if not name.startswith(prefix):
        name = prefix + name
    try:
        return enum_type.Value(name)
    except ValueError:
        choices = ", ".join(enum_name(enum, v.name) for v in enum.values if v.number != 0)
        raise ValueError(f"{option} must be one of {choices}, got {value!r}") from None


def _command(command: Mapping[str, Any]) -> run_pb2.Command:
    unknown = set(command) - _COMMAND_KEYS
    if unknown:
        raise ValueError(f"command keys must be among resume, update, goto; got {', '.join(sorted(unknown))}")
    message = run_pb2.Command()
    if "resume" in command:
        message.resume.CopyFrom(to_value(command["resume"]))
    if command.get("update") is not None:
        message.update.CopyFrom(to_struct(command["update"]))
    goto = command.get("goto")
    if goto:
        message.goto.extend([goto] if isinstance(goto, str) else goto)
    return message


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(dt.timedelta(seconds=seconds))
    return message


def run_spec(
    assistant_id: str,
    input: Any = None,
    *,
    on_disconnect: OnDisconnect | int | None = None,
    **options: Unpack[RunOptions],
) -> run_pb2.RunSpec:
    """The RunSpec for a run's options (see `RunOptions`, and `RunSpec` in run.proto).

    `input` may be any JSON value: a mapping goes in `input` (as clients before `input_value`
    sent it), anything else (a number, a string, a list) in `input_value`; None sends none.
    An option `RunOptions` does not name is a TypeError, as a misspelt keyword argument is.
    """
    unknown = sorted(set(options) - RUN_OPTIONS)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}; run options are {', '.join(sorted(RUN_OPTIONS))}")
    o = cast(dict[str, Any], options)
    spec = run_pb2.RunSpec(
        assistant_id=assistant_id,
        thread_id=o.get("thread_id") or "",
        checkpoint_id=o.get("checkpoint_id") or "",
        interrupt_before=list(o.get("interrupt_before") or ()),
        interrupt_after=list(o.get("interrupt_after") or ()),
        multitask_strategy=_enum(o.get("multitask_strategy"), run_pb2.MultitaskStrategy, "multitask_strategy"),
        if_not_exists=_enum(o.get("if_not_exists"), run_pb2.IfNotExists, "if_not_exists"),
        granularity=_enum(o.get("granularity"), run_pb2.Granularity, "granularity"),
        durability=_enum(o.get("durability"), run_pb2.Durability, "durability"),
        on_disconnect=_enum(on_disconnect, run_pb2.OnDisconnect, "on_disconnect"),
        on_completion=_enum(o.get("on_completion"), run_pb2.OnCompletion, "on_completion"),
    )
    if isinstance(input, Mapping):
        spec.input.CopyFrom(to_struct(input))
    elif input is not None:
        spec.input_value.CopyFrom(to_value(input))
    if o.get("command") is not None:
        spec.command.CopyFrom(_command(o["command"]))
    if o.get("config"):
        spec.config.CopyFrom(to_struct(o["config"]))
    if o.get("context") is not None:
        spec.context.CopyFrom(to_struct(o["context"]))
    if o.get("metadata"):
        spec.metadata.CopyFrom(to_struct(o["metadata"]))
    if o.get("timeout") is not None:
        spec.timeout.CopyFrom(_duration(o["timeout"]))
    if o.get("webhook"):
        spec.webhook = o["webhook"]
    if o.get("assistant_version"):
        spec.assistant_version = o["assistant_version"]
    # A run-starting call is retried with its request id: the server answers a repeat with the same run.
    spec.request_id = o.get("request_id") or str(uuid.uuid4())
    return spec


def stream_modes(stream_mode: str | Sequence[str] | None) -> list[str]:
    if stream_mode is None:
        return []
    return [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)


def wait_request(spec: run_pb2.RunSpec) -> run_service_pb2.RunServiceWaitRequest:
    return run_service_pb2.RunServiceWaitRequest(spec=spec)


def stream_request(
    spec: run_pb2.RunSpec, stream_mode: str | Sequence[str] | None, subgraphs: bool = False
) -> run_service_pb2.RunServiceStreamRequest:
    return run_service_pb2.RunServiceStreamRequest(
        spec=spec, stream_mode=stream_modes(stream_mode), subgraphs=subgraphs, batch_events=True
    )


def response_events(
    response: run_service_pb2.RunServiceStreamResponse | run_service_pb2.RunServiceJoinResponse,
) -> Sequence[event_pb2.RunEvent]:
    """The events of a Stream or Join response: the client asks for them batched (`batch_events`:
    several a response when they come faster than one at a time), and yields them one by one."""
    return response.events or (response.event,)


def create_request(
    spec: run_pb2.RunSpec, stream_mode: str | Sequence[str] | None, start_delay: float | None, subgraphs: bool = False
) -> run_service_pb2.RunServiceCreateRequest:
    request = run_service_pb2.RunServiceCreateRequest(
        spec=spec, stream_mode=stream_modes(stream_mode), subgraphs=subgraphs
    )
    if start_delay is not None:
        request.start_delay.CopyFrom(_duration(start_delay))
    return request


def list_runs_request(
    thread_id: str | None,
    statuses: str | int | Iterable[str | int] | None,
    page_size: int | None,
    page_token: str | None,
    cron_id: str | None = None,
) -> run_service_pb2.RunServiceListRequest:
    """`statuses` as lowercase names (`"running"`), full enum names or numbers; one or several."""
    if statuses is None:
        wanted: list[str | int] = []
    elif isinstance(statuses, (str, int)):
        wanted = [statuses]
    else:
        wanted = list(statuses)
    return run_service_pb2.RunServiceListRequest(
        thread_id=thread_id or "",
        page_size=page_size or 0,
        page_token=page_token or "",
        statuses=[_enum(s, run_pb2.RunStatus, "statuses") for s in wanted],
        cron_id=cron_id or "",
    )


# -- crons ----------------------------------------------------------------------------------

# Cron fields a client's update names by keyword; the run (`spec`) is replaced as a whole.
CRON_FIELDS = ("schedule", "timezone", "end_time", "paused", "metadata")


def _timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    """An aware datetime (a naive one is taken as UTC)."""
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def cron_spec(assistant_id: str, input: Any, options: Mapping[str, Any]) -> run_pb2.RunSpec:
    """The RunSpec of a cron's runs: `run_spec` without the request id a cron has no use for (each
    tick's run id follows from the cron and the tick)."""
    spec = run_spec(assistant_id, input, **cast(RunOptions, options))
    if not options.get("request_id"):
        spec.ClearField("request_id")
    return spec


def cron_message(
    cron_id: str | None,
    fields: Mapping[str, Any],
    spec: run_pb2.RunSpec | None,
    stream_mode: str | Sequence[str] | None,
    subgraphs: bool | None,
) -> cron_pb2.Cron:
    """A Cron with `fields` (schedule, timezone, end_time, paused, metadata: those given) and the run."""
    cron = cron_pb2.Cron(
        cron_id=cron_id or "",
        schedule=fields.get("schedule") or "",
        timezone=fields.get("timezone") or "",
        paused=bool(fields.get("paused")),
    )
    if fields.get("end_time") is not None:
        cron.end_time.CopyFrom(_timestamp(fields["end_time"]))
    if fields.get("metadata") is not None:
        cron.metadata.CopyFrom(to_struct(fields["metadata"]))
    if spec is not None:
        cron.spec.CopyFrom(spec)
        cron.stream_mode.extend(stream_modes(stream_mode))
        cron.subgraphs = bool(subgraphs)
    return cron


def update_cron_request(cron: cron_pb2.Cron, fields: Iterable[str], replaces_run: bool) -> Any:
    paths = [f for f in CRON_FIELDS if f in fields] + (["spec", "stream_mode", "subgraphs"] if replaces_run else [])
    return cron_service_pb2.CronServiceUpdateRequest(cron=cron, update_mask=field_mask_pb2.FieldMask(paths=paths))


def list_crons_request(
    assistant_id: str | None, thread_id: str | None, page_size: int | None, page_token: str | None
) -> cron_service_pb2.CronServiceListRequest:
    return cron_service_pb2.CronServiceListRequest(
        assistant_id=assistant_id or "",
        thread_id=thread_id or "",
        page_size=page_size or 0,
        page_token=page_token or "",
    )


def thread_ttl(seconds: float | None, strategy: str | int | None) -> thread_pb2.ThreadTtl:
    ttl = thread_pb2.ThreadTtl(strategy=_enum(strategy, thread_pb2.TtlStrategy, "ttl_strategy"))
    if seconds is not None:
        ttl.ttl.CopyFrom(_duration(seconds))
    return ttl


def prune_request(thread_id: str, strategy: str | int | None) -> thread_service_pb2.ThreadServicePruneRequest:
    return thread_service_pb2.ThreadServicePruneRequest(
        thread_id=thread_id, strategy=_enum(strategy, thread_service_pb2.PruneStrategy, "strategy")
    )


def list_threads_request(
    statuses: str | int | Iterable[str | int] | None,
    metadata: Mapping[str, Any] | None,
    assistant_id: str | None,
    page_size: int | None,
    page_token: str | None,
) -> thread_service_pb2.ThreadServiceListRequest:
    """`statuses` as lowercase names (`"interrupted"`), full enum names or numbers; one or several."""
    wanted = [] if statuses is None else [statuses] if isinstance(statuses, (str, int)) else list(statuses)
    return thread_service_pb2.ThreadServiceListRequest(
        statuses=[_enum(s, thread_pb2.ThreadStatus, "statuses") for s in wanted],
        metadata=to_struct(metadata),
        assistant_id=assistant_id or "",
        page_size=page_size or 0,
        page_token=page_token or "",
    )


def assistant_fields(request: Any, fields: Mapping[str, Any]) -> Any:
    """Set an assistant's fields on a Create or Update request: each one given and not None (JSON
    objects as Structs)."""
    for name, value in fields.items():
        if value is None:
            continue
        if name in ("config", "context", "metadata"):
            getattr(request, name).CopyFrom(to_struct(value))
        else:
            setattr(request, name, value)
    return request


def list_assistants_request(
    graph_id: str | None, metadata: Mapping[str, Any] | None, page_size: int | None, page_token: str | None
) -> assistant_service_pb2.AssistantServiceListRequest:
    return assistant_service_pb2.AssistantServiceListRequest(
        graph_id=graph_id or "", metadata=to_struct(metadata), page_size=page_size or 0, page_token=page_token or ""
    )


def cancel_request(run_id: str, action: str | int | None, wait: bool) -> run_service_pb2.RunServiceCancelRequest:
    return run_service_pb2.RunServiceCancelRequest(
        run_id=run_id, action=_enum(action, run_service_pb2.CancelAction, "action"), wait=wait
    )


def join_request(
    run_id: str, after_sequence: int, granularity: str | int | None
) -> run_service_pb2.RunServiceJoinRequest:
    return run_service_pb2.RunServiceJoinRequest(
        run_id=run_id,
        after_sequence=after_sequence or 0,
        granularity=_enum(granularity, run_pb2.Granularity, "granularity"),
        batch_events=True,
    )


def run_result(response: run_service_pb2.RunServiceWaitResponse) -> RunResult:
    state = state_dict(response.state) if response.HasField("state") else {}
    return RunResult(run=to_dict(response.run), state=state)


def event(message: event_pb2.RunEvent) -> Event:
    kind = message.WhichOneof("attributes")
    if kind is None:
        raise ValueError(f"event {message.sequence} has no attributes; is the client older than the server?")
    data = to_dict(getattr(message, kind))
    if "step" in data:
        data["step"] = int(data["step"])
    if kind == "end" and message.end.HasField("state"):
        data["state"] = state_dict(message.end.state)
    elif kind == "checkpoint":
        data["state"] = state_dict(message.checkpoint.state)
    elif kind == "debug" and message.debug.HasField("checkpoint"):
        data["checkpoint"] = state_dict(message.debug.checkpoint)
    return Event(
        sequence=int(message.sequence),
        kind=cast(EventKind, kind),
        data=data,
        namespace=tuple(message.namespace),
        event_time=message.event_time.ToJsonString() if message.HasField("event_time") else None,
    )


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


# -- channel options ------------------------------------------------------------------
#
# Calls that only read (or, for Join, replay) are retried by gRPC itself when
# they fail UNAVAILABLE: a replica restarting, a connection reset, PostgreSQL
# briefly away. Calls that start or change something (Wait, Stream, Create,
# Cancel, Delete, UpdateState, ThreadService.Create) are not: a second attempt
# could run a graph twice. A streaming call is retried only until its first
# response arrives (gRPC commits it then), so a Join cut short mid-stream still
# raises, with `last_sequence`, for the caller to join again.
IDEMPOTENT_METHODS: tuple[tuple[str, str], ...] = (
    ("graphrun.v1.ThreadService", "Get"),
    ("graphrun.v1.ThreadService", "GetState"),
    ("graphrun.v1.ThreadService", "GetHistory"),
    ("graphrun.v1.AssistantService", "List"),
    ("graphrun.v1.AssistantService", "Get"),
    ("graphrun.v1.AssistantService", "ListVersions"),
    ("graphrun.v1.RunService", "Get"),
    ("graphrun.v1.RunService", "List"),
    ("graphrun.v1.RunService", "Join"),
    ("graphrun.v1.CronService", "Get"),
    ("graphrun.v1.CronService", "List"),
    ("graphrun.v1.StoreService", "GetItem"),
    ("graphrun.v1.StoreService", "SearchItems"),
    ("graphrun.v1.StoreService", "ListNamespaces"),
    ("grpc.health.v1.Health", "Check"),
)

# A call that starts a run carries a request id (`run_spec`), so it is retried too — by the clients
# themselves (`retrying`), since gRPC stops retrying once the server has sent the run id in the
# initial metadata, which it does before the run executes.
RUN_RETRIES = 4  # attempts of Wait, Stream and Create: the first and three more
RUN_RETRY_BACKOFF = (0.1, 2.0)  # seconds: the first wait, and the longest (doubling)


def retry_delays() -> list[float]:
    low, high = RUN_RETRY_BACKOFF
    return [min(low * 2**i, high) for i in range(RUN_RETRIES - 1)]


def retryable(exc: grpc.RpcError) -> bool:
    """A run-starting call that failed this way may be sent again with its request id."""
    return exc.code() == grpc.StatusCode.UNAVAILABLE


SERVICE_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            "name": [{"service": service, "method": method} for service, method in IDEMPOTENT_METHODS],
            "retryPolicy": {
                "maxAttempts": 4,  # the first call and three retries (gRPC caps this at 5)
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    # Retries pause after a run of failures on the channel (each failure costs a token, each
    # success earns 0.1 back, retries need more than 5): no retry storm against a server that is down.
    "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
}

# Keepalive pings find a dead connection (a replica gone without a FIN, a NAT
# entry dropped) during a long Wait, which otherwise receives nothing until the
# run ends. The interval is bounded by the server: grpc-core servers, graphrun's
# included, by default count a ping that comes less than 5 minutes after the
# previous one (with a call open; 2 hours without one, unless the server sets
# `grpc.keepalive_permit_without_calls`) as a strike, and after the third strike
# close the connection with GOAWAY `too_many_pings`, failing the calls on it
# UNAVAILABLE. With a 30 s interval a Wait left silent for 3 minutes was killed
# that way. So: every 5 min 20 s (a margin over 5 minutes for timer jitter,
# still under common 350 s load balancer idle timeouts), and only while calls are
# open. Against a server configured with a shorter
# `grpc.http2.min_ping_interval_without_data_ms`, pass your own
# `grpc.keepalive_time_ms` in `options`.
KEEPALIVE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 320_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
)


def channel_options(options: Sequence[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    """The clients' channel options: retries for idempotent calls, keepalive; `options` override them."""
    merged: dict[str, Any] = {
        "grpc.enable_retries": 1,
        "grpc.service_config": json.dumps(SERVICE_CONFIG),
        **dict(KEEPALIVE_OPTIONS),
    }
    merged.update(options or ())
    return list(merged.items())


# -- the Store --------------------------------------------------------------------------
#
# Namespaces go in as tuples (or lists) of labels, as LangGraph's BaseStore takes them; a plain
# string is a one-label namespace. Items come back as dicts shaped like LangGraph's
# `Item.dict()`: namespace (a list), key, value, created_at, updated_at (RFC 3339 strings), and
# for search results `score` (None unless the search was semantic).


def store_namespace(namespace: str | Iterable[str] | None) -> list[str]:
    if namespace is None:
        return []
    if isinstance(namespace, str):
        return [namespace]
    return list(namespace)


def put_item_request(
    namespace: str | Iterable[str],
    key: str,
    value: Mapping[str, Any],
    index: bool | Iterable[str] | None,
    ttl: float | None,
) -> store_service_pb2.StoreServicePutItemRequest:
    """`index`: None (the store's fields), False (not embedded) or the paths to embed; `ttl`:
    whole minutes as in LangGraph's put (None: the store's default_ttl; 0: never expires)."""
    request = store_service_pb2.StoreServicePutItemRequest(
        namespace=store_namespace(namespace), key=key, value=to_struct(value)
    )
    if index is False:
        request.index = store_pb2.INDEX_MODE_NONE
    elif index is True or index is None:
        request.index = store_pb2.INDEX_MODE_DEFAULT
    else:
        request.index = store_pb2.INDEX_MODE_FIELDS
        request.index_fields.extend([index] if isinstance(index, str) else index)
    if ttl is not None:
        request.ttl.CopyFrom(_duration(ttl * 60))
    return request


def get_item_request(
    namespace: str | Iterable[str], key: str, refresh_ttl: bool | None
) -> store_service_pb2.StoreServiceGetItemRequest:
    request = store_service_pb2.StoreServiceGetItemRequest(namespace=store_namespace(namespace), key=key)
    if refresh_ttl is not None:
        request.refresh_ttl = refresh_ttl
    return request


def delete_item_request(namespace: str | Iterable[str], key: str) -> store_service_pb2.StoreServiceDeleteItemRequest:
    return store_service_pb2.StoreServiceDeleteItemRequest(namespace=store_namespace(namespace), key=key)


def search_items_request(
    namespace_prefix: str | Iterable[str] | None,
    query: str | None,
    filter: Mapping[str, Any] | None,
    limit: int | None,
    offset: int | None,
    refresh_ttl: bool | None,
) -> store_service_pb2.StoreServiceSearchItemsRequest:
    request = store_service_pb2.StoreServiceSearchItemsRequest(
        namespace_prefix=store_namespace(namespace_prefix), query=query or "", limit=limit or 0, offset=offset or 0
    )
    if filter:
        request.filter.CopyFrom(to_struct(filter))
    if refresh_ttl is not None:
        request.refresh_ttl = refresh_ttl
    return request


def list_namespaces_request(
    prefix: str | Iterable[str] | None,
    suffix: str | Iterable[str] | None,
    max_depth: int | None,
    limit: int | None,
    offset: int | None,
) -> store_service_pb2.StoreServiceListNamespacesRequest:
    return store_service_pb2.StoreServiceListNamespacesRequest(
        prefix=store_namespace(prefix),
        suffix=store_namespace(suffix),
        max_depth=max_depth or 0,
        limit=limit or 0,
        offset=offset or 0,
    )


def item_dict(message: store_pb2.Item) -> dict[str, Any]:
    item = to_dict(message)
    item.setdefault("value", {})
    return item


def search_item_dict(message: store_pb2.SearchItem) -> dict[str, Any]:
    return {**item_dict(message.item), "score": message.score if message.HasField("score") else None}


def namespaces(response: store_service_pb2.StoreServiceListNamespacesResponse) -> list[tuple[str, ...]]:
    return [tuple(namespace.labels) for namespace in response.namespaces]
