"""Property-based fuzzing of every RPC (hypothesis) against the session's real server.

Every method of RunService, ThreadService and AssistantService gets generated
requests, built field by field: garbage and valid-looking ids, ids of threads,
runs and checkpoints that really exist (including other threads' checkpoints and
deleted threads), unknown enum numbers, extreme integers and durations, arbitrary
JSON in Struct/Value fields (NaN, infinities, NUL characters, empty Values),
unknown stream modes and node names, resumes of threads with nothing to resume,
oversized fields. A good share is valid, so graphs really run (the fast test
graphs: `steps`, `approval`, `tool_error`, and the example agent; never `durable`,
whose nodes block on gates). A second pass sends raw bytes, random or mutated
from valid requests, to every method.

Properties checked after each request:
- the status is never INTERNAL or UNKNOWN, and every error carries graphrun's
  ErrorInfo (INVALID_ARGUMENT also a BadRequest naming the field);
- a call that starts a run never answers OK for a run that failed; streams are
  numbered 1, 2, 3 ... without gaps, `metadata` first and `end` last;
- a request refused (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...) or a
  read-only one wrote no thread or run rows, and no checkpoint either;
- the server still answers health checks.
And at the end, once every run has been joined until it ended (runs told to start
much later are cancelled): no thread is left BUSY and no run PENDING or RUNNING.
Both tests print how many requests they sent (about 1,000 and 300, in ~20 s).

FUZZ_COLLECT=1 prints every distinct failure instead of stopping at the first.

The server runs on the session's event loop, which runs only while an async test
does: the test awaits the (synchronous) hypothesis functions in a worker thread,
and they talk to the server over a plain blocking channel to its port.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import logging
import math
import os
import time
import traceback
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import duration_pb2, message as pb_message, struct_pb2, text_format
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings, strategies as st

from graphrun.v1 import assistant_service_pb2, run_pb2, run_service_pb2, thread_service_pb2

# The server's own threads draw from `random` while hypothesis generates; that is not the strategies' doing.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

# -- the methods ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Method:
    path: str  # /graphrun.v1.RunService/Wait
    request: type
    response: type
    streaming: bool
    writes: bool  # may create, change or delete threads, runs or checkpoints


_WRITERS = {"RunService/Wait", "RunService/Stream", "RunService/Create", "RunService/Cancel",
            "ThreadService/Create", "ThreadService/Delete", "ThreadService/UpdateState", "ThreadService/Copy",
            "ThreadService/Prune", "AssistantService/Create", "AssistantService/Update", "AssistantService/Delete",
            "AssistantService/SetLatest"}


def _methods() -> dict[str, Method]:
    out = {}
    for module, service in ((run_service_pb2, "RunService"), (thread_service_pb2, "ThreadService"),
                            (assistant_service_pb2, "AssistantService")):
        descriptor = module.DESCRIPTOR.services_by_name[service]
        for m in descriptor.methods:
            name = f"{service}/{m.name}"
            out[name] = Method(f"/{descriptor.full_name}/{m.name}", getattr(module, m.input_type.name),
                               getattr(module, m.output_type.name), m.server_streaming, name in _WRITERS)
    return out


METHODS = _methods()
CALL_TIMEOUT = 30.0  # a call still going after this is a hang, and fails the test (no rich status)

# -- what exists on the server (filled while fuzzing) ----------------------------------

# Graphs that run quickly and never block. `durable` is left out: its nodes wait on gates.
ASSISTANTS = ["steps", "approval", "agent", "tool_error"]


class Pool:
    """Ids the server really has (or had): threads, runs, checkpoints, node names."""

    CAP = 400

    def __init__(self):
        self.threads: list[str] = []
        self.interrupted: list[str] = []
        self.runs: list[str] = []
        self.assistants: list[str] = []  # created ones (a graph's own has its graph's id)
        self.checkpoints: list[str] = []
        self.nodes: dict[str, list[str]] = {}
        self.hanging: set[str] = set()  # threads whose state says `hang_at`: any later run there would hang

    def add(self, kind: str, value: str) -> None:
        items = getattr(self, kind)
        if value and value not in items[-50:] and value not in self.hanging:
            items.append(value)
            del items[:-self.CAP]

    def forget(self, thread_id: str) -> None:
        """Never name this thread again: `hang_at` stays in its state, so a later run would hang
        without the timeout its first run had (a graph doing what it was told, not a bug)."""
        if thread_id:
            self.hanging.add(thread_id)
            for items in (self.threads, self.interrupted):
                while thread_id in items:
                    items.remove(thread_id)

    def pick(self, kind: str, index: int) -> str:
        items = getattr(self, kind) or self.threads
        return items[index % len(items)]


POOL = Pool()


def pooled(kind: str) -> st.SearchStrategy[str]:
    """An id of the pool, looked up when drawn (the pool grows while fuzzing)."""
    return st.integers(0, 2**16).map(lambda i: POOL.pick(kind, i))


# -- strategies: strings and ids ----------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
NUL_TEXT = st.builds(lambda a, b: f"{a}\x00{b}", TEXT, TEXT)
LONG_TEXT = st.sampled_from([300, 5_000, 70_000]).map(lambda n: "ü" * n)  # echoed back in errors?
UUIDS = st.uuids().map(str)


def _variant(value: str, how: int) -> str:
    """Other spellings of an id that uuid.UUID accepts (or nearly)."""
    return [value.upper(), "{" + value + "}", "urn:uuid:" + value, value.replace("-", ""), f" {value} ",
            value[:-1], value + "0"][how]


def ids(*kinds: str) -> st.SearchStrategy[str]:
    real = [pooled(k) for k in kinds]
    return st.one_of(*real, *real, st.just(""), TEXT, UUIDS, NUL_TEXT, LONG_TEXT,
                     st.tuples(st.one_of(*real) if real else UUIDS, st.integers(0, 6)).map(lambda t: _variant(*t)))


# A subgraph's checkpoint namespace: mostly the root graph's (empty), else LangGraph's shape with
# node names the graphs have or not, real-looking or made-up task ids, and broken levels.
NAMESPACES = st.one_of(st.just(""), st.just(""), TEXT, NUL_TEXT, LONG_TEXT,
                       st.builds(lambda node, task, more: f"{node}:{task}{more}",
                                 st.sampled_from(["inner", "agent", "tools", "ask", ""]), st.one_of(UUIDS, TEXT),
                                 st.sampled_from(["", "|1", "|inner:x", "|", ":"])))


def enum_values(enum_type) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(sorted(enum_type.values())), st.integers(-2**31, 2**31 - 1))


INT32 = st.one_of(st.integers(-2**31, 2**31 - 1), st.sampled_from([-1, 0, 1, 1000, 1001, 2**31 - 1, -2**31]))
INT64 = st.one_of(st.integers(-2**63, 2**63 - 1), st.sampled_from([-1, 0, 1, 2, 5, 2**63 - 1, -2**63]))

# -- strategies: JSON in Struct / Value -----------------------------------------------------

UNSET = object()  # a Value with no kind set
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.floats(), TEXT, NUL_TEXT,
                    st.just(UNSET), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
# JSON that PostgreSQL's jsonb and JSON itself can hold.
CLEAN_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12).filter(
                              lambda s: "\x00" not in s))
CLEAN_KEYS = st.text(max_size=12).filter(lambda s: "\x00" not in s)
CLEAN_JSON = st.recursive(CLEAN_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(CLEAN_KEYS, inner, max_size=3)), max_leaves=8)


def to_value(obj: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if obj is UNSET:
        pass
    elif obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, (int, float)):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, list):
        value.list_value.SetInParent()
        for item in obj:
            value.list_value.values.add().CopyFrom(to_value(item))
    else:
        value.struct_value.SetInParent()
        for key, item in obj.items():
            value.struct_value.fields[key].CopyFrom(to_value(item))
    return value


def to_struct(obj: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    for key, item in obj.items():
        message.fields[key].CopyFrom(to_value(item))
    return message


def objects(json=JSON) -> st.SearchStrategy[dict]:
    return st.dictionaries(TEXT, json, max_size=5)


BIG_OBJECT = st.just(70 * 1024).map(lambda n: {"blob": "x" * n})  # over the 64 KiB of metadata and config
HUGE_OBJECT = st.just(9 * 1024 * 1024).map(lambda n: {"blob": "x" * n})  # over the 8 MiB of inputs


def durations(seconds: st.SearchStrategy[float]) -> st.SearchStrategy[duration_pb2.Duration]:
    return seconds.map(lambda s: duration_pb2.Duration(seconds=int(s), nanos=int(round((s % 1) * 1e9)) % 10**9))


# Any seconds and nanos, signs mixed: negative, beyond a month, beyond what a Duration may hold.
ODD_DURATIONS = st.one_of(
    st.sampled_from([duration_pb2.Duration(seconds=-1), duration_pb2.Duration(nanos=-1),
                     duration_pb2.Duration(seconds=31 * 24 * 3600), duration_pb2.Duration(seconds=10**12)]),
    st.builds(duration_pb2.Duration, seconds=INT64,
              nanos=st.one_of(st.integers(-2**31, 2**31 - 1), st.integers(-999_999_999, 999_999_999))))


# -- strategies: requests -------------------------------------------------------------------

def nodes_of(assistant: str) -> list[str]:
    return POOL.nodes.get(assistant, ["first", "second", "third"])


def message_list() -> st.SearchStrategy[list]:
    role = st.sampled_from(["user", "human", "ai", "system"])
    content = st.one_of(TEXT.filter(lambda s: "\x00" not in s), st.just("Wann wurde die Heizungsanlage gewartet?"))
    return st.lists(st.fixed_dictionaries({"role": role, "content": content}), min_size=1, max_size=2)


def odd_messages() -> st.SearchStrategy:
    """Messages LangChain cannot read, or reads but the graph may refuse (INVALID_ARGUMENT or a failed run)."""
    role = st.sampled_from(["tool", "bogus", "function", ""])
    return st.one_of(st.lists(st.fixed_dictionaries({"role": role, "content": TEXT}), min_size=1, max_size=2),
                     CLEAN_JSON)


def valid_input(assistant: str, hang: bool) -> st.SearchStrategy[dict]:
    if assistant == "steps":
        node = st.sampled_from(["first", "second", "third"])
        base = st.fixed_dictionaries({}, optional={"fail_at": st.one_of(node, TEXT), "tag": TEXT,
                                                   "log": st.lists(TEXT, max_size=2), "nul": st.booleans()})
        if hang:
            return st.builds(lambda d, n: {**d, "hang_at": n}, base, node)
        return base
    return st.fixed_dictionaries({"messages": message_list()})


def node_lists(assistant: str) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), st.lists(st.sampled_from(nodes_of(assistant) + ["*"]), max_size=2))


def bad_node_lists() -> st.SearchStrategy[list[str]]:
    return st.one_of(st.lists(TEXT, min_size=1, max_size=3), st.just(["first"] * 101),
                     st.lists(LONG_TEXT, min_size=1, max_size=2), st.lists(NUL_TEXT, min_size=1, max_size=2))


VALID_CONFIG = st.fixed_dictionaries({}, optional={
    "configurable": st.dictionaries(CLEAN_KEYS.filter(lambda k: not k.startswith("__") and k not in (
        "thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map")), CLEAN_JSON, max_size=2),
    "tags": st.lists(CLEAN_KEYS, max_size=2),
    "recursion_limit": st.integers(1, 50),
})
BAD_CONFIG = st.one_of(
    objects(),
    st.fixed_dictionaries({"recursion_limit": st.one_of(st.sampled_from([0, -1, 10_001, 2.5, 1e300, True, "7"]),
                                                       JSON)}),
    st.fixed_dictionaries({"configurable": st.one_of(JSON, st.fixed_dictionaries({}, optional={
        "thread_id": JSON, "checkpoint_ns": JSON, "__pregel_send": JSON, "x": JSON}))}),
    st.fixed_dictionaries({"tags": st.one_of(JSON, st.lists(JSON, max_size=3))}),
    BIG_OBJECT,
)

RUN_SPEC_FIELDS = ["assistant_id", "thread_id", "input", "command", "config", "metadata", "interrupt_before",
                   "interrupt_after", "multitask_strategy", "if_not_exists", "checkpoint_id", "granularity",
                   "timeout", "durability", "on_disconnect", "assistant_version"]


@st.composite
def run_specs(draw, hangs: bool = True) -> run_pb2.RunSpec:
    """Mostly valid specs (so graphs run), some with one bad field, some fuzzy in every field.
    With `hangs`, some runs of `steps` hang in a node until their (valid) timeout stops them."""
    mode = draw(st.sampled_from(["valid"] * 7 + ["one_bad"] * 2 + ["fuzzy"]))
    bad_field = draw(st.sampled_from(RUN_SPEC_FIELDS)) if mode == "one_bad" else None

    flags = {name: name == bad_field or (mode == "fuzzy" and draw(st.booleans())) for name in RUN_SPEC_FIELDS}

    def bad(name: str) -> bool:
        return flags[name]

    spec = run_pb2.RunSpec()
    assistant = draw(st.sampled_from(ASSISTANTS))
    spec.assistant_id = draw(st.one_of(ids("assistants"), st.just("nobody"))) if bad("assistant_id") else assistant
    if bad("assistant_version"):
        spec.assistant_version = draw(INT32)
    elif draw(st.integers(0, 9)) == 0:
        spec.assistant_version = 1  # a graph's own assistant has its version 1
    # Threads: a new one, one that exists (maybe waiting on an interrupt), or a fresh id to create.
    target = draw(st.sampled_from(["new", "new", "existing", "existing", "interrupted", "create"]))
    if bad("thread_id"):
        spec.thread_id = draw(ids("threads", "runs", "checkpoints"))
    elif target in ("existing", "interrupted"):
        spec.thread_id = draw(pooled("threads" if target == "existing" else "interrupted"))
    elif target == "create":
        spec.thread_id = draw(UUIDS)
        spec.if_not_exists = run_pb2.IF_NOT_EXISTS_CREATE
    timeout_set = draw(st.booleans()) if not bad("timeout") else True
    if bad("timeout"):
        spec.timeout.CopyFrom(draw(ODD_DURATIONS))
    elif timeout_set:
        spec.timeout.CopyFrom(draw(durations(st.floats(0.000_001, 2.0))))
    # What to run: input, a command, or nothing (continue the thread).
    what = draw(st.sampled_from({
        "interrupted": ["resume", "resume", "resume", "input", "goto", "update", "nothing"],
        "existing": ["input", "input", "input", "nothing", "goto", "update", "resume"],
    }.get(target, ["input"])))
    if bad("input"):
        spec.input.CopyFrom(to_struct(draw(st.one_of(objects(), objects(), HUGE_OBJECT,
                                                     st.fixed_dictionaries({"messages": odd_messages()})))))
    elif what == "input" or (what == "nothing" and not spec.thread_id):
        # A node that hangs until the run is stopped, only where a valid timeout stops it.
        hang = hangs and timeout_set and not bad("timeout") and draw(st.integers(0, 4)) == 0
        spec.input.CopyFrom(to_struct(draw(valid_input(assistant, hang))))
    if bad("command"):
        choice = draw(st.integers(0, 3))
        if choice == 0:
            spec.command.SetInParent()  # a command with nothing in it
        elif choice == 1:
            spec.command.resume.CopyFrom(to_value(draw(JSON)))
            spec.input.SetInParent()  # both
        elif choice == 2:
            spec.command.goto.extend(draw(bad_node_lists()))
        else:
            spec.command.update.CopyFrom(to_struct(draw(st.one_of(objects(), BIG_OBJECT))))
    elif what == "resume":
        spec.command.resume.CopyFrom(to_value(draw(CLEAN_JSON)))
    elif what == "goto":
        spec.command.goto.extend(draw(st.lists(st.sampled_from(nodes_of(assistant)), min_size=1, max_size=2)))
    elif what == "update":
        spec.command.update.CopyFrom(to_struct(draw(valid_input(assistant, False))))
    spec.config.CopyFrom(to_struct(draw(BAD_CONFIG if bad("config") else VALID_CONFIG)))
    spec.metadata.CopyFrom(to_struct(draw(st.one_of(objects(), BIG_OBJECT) if bad("metadata") else st.dictionaries(
        CLEAN_KEYS, CLEAN_JSON, max_size=3))))
    for name in ("interrupt_before", "interrupt_after"):
        getattr(spec, name).extend(draw(bad_node_lists() if bad(name) else node_lists(assistant)))
    for name, enum_type in (("multitask_strategy", run_pb2.MultitaskStrategy), ("granularity", run_pb2.Granularity),
                            ("durability", run_pb2.Durability), ("on_disconnect", run_pb2.OnDisconnect),
                            ("if_not_exists", run_pb2.IfNotExists)):
        if bad(name):
            setattr(spec, name, draw(st.integers(-2**31, 2**31 - 1)))
        elif name != "if_not_exists" or target != "create":
            setattr(spec, name, draw(st.sampled_from(sorted(enum_type.values()))))
    if bad("checkpoint_id"):
        spec.checkpoint_id = draw(ids("checkpoints", "threads"))
    elif spec.thread_id and draw(st.integers(0, 5)) == 0:
        spec.checkpoint_id = draw(pooled("checkpoints"))  # often another thread's
    return spec


STREAM_MODES = ["values", "updates", "messages", "custom", "tasks"]
MODE_LISTS = st.one_of(st.lists(st.sampled_from(STREAM_MODES), max_size=4), st.lists(st.sampled_from(STREAM_MODES),
                       max_size=4), st.lists(st.one_of(st.sampled_from(STREAM_MODES), TEXT, LONG_TEXT), max_size=3),
                       st.just(["values"] * 101))


def page_tokens(*own: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()

    stamp = st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat())
    forged = st.tuples(st.one_of(stamp, TEXT), st.one_of(UUIDS, TEXT)).map(lambda t: b64("|".join(t)))
    return st.one_of(st.just(""), st.just(""), TEXT, forged, TEXT.map(b64), NUL_TEXT.map(b64),
                     st.builds(lambda: b64("\x00")), *own)


ASSISTANT_FIELDS = ["graph_id", "name", "description", "config", "context", "metadata", "webhook"]


@st.composite
def assistant_fields(draw) -> dict[str, Any]:
    """Values for an assistant's fields: mostly valid (graphs that run quickly), some not."""
    return {
        "graph_id": draw(st.one_of(st.sampled_from(ASSISTANTS), st.sampled_from(ASSISTANTS), st.just(""), TEXT,
                                   NUL_TEXT, LONG_TEXT)),
        "name": draw(st.one_of(TEXT, NUL_TEXT, LONG_TEXT)),
        "description": draw(st.one_of(TEXT, LONG_TEXT)),
        "config": draw(st.one_of(VALID_CONFIG, VALID_CONFIG, BAD_CONFIG)),
        "context": draw(st.one_of(st.just({}), objects(CLEAN_JSON), objects(), BIG_OBJECT)),
        "metadata": draw(st.one_of(st.dictionaries(CLEAN_KEYS, CLEAN_JSON, max_size=3), objects(), BIG_OBJECT)),
        "webhook": draw(st.one_of(st.just(""), TEXT, st.just("https://hooks.example.com/x"), LONG_TEXT)),
    }


def _assistant_request(request, fields: set[str], values: dict[str, Any]):
    """A Create or Update request setting `fields` (Create: graph_id mostly set)."""
    if isinstance(request, assistant_service_pb2.AssistantServiceCreateRequest) and values["graph_id"] in ASSISTANTS:
        fields = fields | {"graph_id"}
    for name in fields:
        value = values[name]
        if name in ("config", "context", "metadata"):
            getattr(request, name).CopyFrom(to_struct(value))
        else:
            setattr(request, name, value)
    return request



def requests_for(name: str, hangs: bool = True) -> st.SearchStrategy:
    R, T, A = run_service_pb2, thread_service_pb2, assistant_service_pb2
    match name:
        case "RunService/Wait":
            return st.builds(lambda s: R.RunServiceWaitRequest(spec=s), run_specs(hangs))
        case "RunService/Stream":
            return st.builds(lambda s, m, b: R.RunServiceStreamRequest(spec=s, stream_mode=m, batch_events=b),
                             run_specs(hangs), MODE_LISTS, st.booleans())
        case "RunService/Create":
            def create(spec, modes, delay):
                request = R.RunServiceCreateRequest(spec=spec, stream_mode=modes)
                if delay is not None:
                    request.start_delay.CopyFrom(delay)
                return request
            delay = st.one_of(st.none(), st.none(), st.none(), durations(st.floats(0, 0.2)), ODD_DURATIONS)
            return st.builds(create, run_specs(hangs), MODE_LISTS, delay)
        case "RunService/Get":
            return st.builds(R.RunServiceGetRequest, run_id=ids("runs", "threads"))
        case "RunService/List":
            statuses = st.lists(st.one_of(st.integers(0, 7), st.integers(0, 7), INT32), max_size=3)
            return st.builds(R.RunServiceListRequest, thread_id=st.one_of(st.just(""), ids("threads", "runs")),
                             statuses=statuses, page_size=st.one_of(st.integers(0, 5), INT32),
                             page_token=page_tokens())
        case "RunService/Cancel":
            return st.builds(R.RunServiceCancelRequest, run_id=ids("runs", "threads"),
                             action=enum_values(R.CancelAction), wait=st.booleans())
        case "RunService/Join":
            return st.builds(R.RunServiceJoinRequest, run_id=ids("runs", "threads"),
                             after_sequence=st.one_of(st.integers(0, 6), INT64),
                             granularity=enum_values(run_pb2.Granularity), batch_events=st.booleans())
        case "ThreadService/Create":
            return st.builds(T.ThreadServiceCreateRequest,
                             thread_id=st.one_of(st.just(""), UUIDS, ids("threads")),
                             metadata=st.one_of(objects(), objects(CLEAN_JSON), BIG_OBJECT).map(to_struct))
        case "ThreadService/List":
            statuses = st.lists(st.one_of(st.integers(0, 4), INT32), max_size=3)
            return st.builds(T.ThreadServiceListRequest, statuses=statuses,
                             metadata=st.one_of(objects(), objects(CLEAN_JSON), BIG_OBJECT).map(to_struct),
                             assistant_id=st.one_of(st.just(""), st.just("agent"), TEXT),
                             page_size=st.one_of(st.integers(0, 5), INT32), page_token=page_tokens())
        case "ThreadService/Copy":
            return st.builds(T.ThreadServiceCopyRequest, thread_id=ids("threads", "runs"),
                             new_thread_id=st.one_of(st.just(""), UUIDS, ids("threads"), TEXT))
        case "ThreadService/Prune":
            return st.builds(T.ThreadServicePruneRequest, thread_id=ids("threads", "runs"),
                             strategy=enum_values(T.PruneStrategy))
        case "ThreadService/Get":
            return st.builds(T.ThreadServiceGetRequest, thread_id=ids("threads", "runs"))
        case "ThreadService/Delete":
            # Mostly ids that do not exist, so the pool's threads last.
            return st.builds(T.ThreadServiceDeleteRequest, thread_id=st.one_of(
                UUIDS, TEXT, st.just(""), pooled("runs"), pooled("threads")))
        case "ThreadService/GetState":
            return st.builds(T.ThreadServiceGetStateRequest, thread_id=ids("threads"),
                             checkpoint_id=st.one_of(st.just(""), ids("checkpoints")), checkpoint_ns=NAMESPACES,
                             subgraphs=st.booleans())
        case "ThreadService/GetHistory":
            token = pooled("checkpoints").map(lambda c: base64.urlsafe_b64encode(c.encode()).decode())
            return st.builds(T.ThreadServiceGetHistoryRequest, thread_id=ids("threads"),
                             page_size=st.one_of(st.integers(0, 5), INT32), page_token=page_tokens(token),
                             checkpoint_ns=NAMESPACES)
        case "ThreadService/UpdateState":
            def update(thread_id, values, as_node, checkpoint_id, checkpoint_ns):
                request = T.ThreadServiceUpdateStateRequest(thread_id=thread_id, as_node=as_node,
                                                            checkpoint_id=checkpoint_id, checkpoint_ns=checkpoint_ns)
                if values is not None:
                    request.values.CopyFrom(to_struct(values))
                return request
            values = st.one_of(st.none(), objects(), objects(CLEAN_JSON), BIG_OBJECT, HUGE_OBJECT,
                               st.sampled_from(ASSISTANTS).flatmap(lambda a: valid_input(a, False)),
                               st.fixed_dictionaries({"log": st.one_of(JSON, st.lists(TEXT, max_size=2))}),
                               st.fixed_dictionaries({"messages": JSON}))
            return st.builds(update, ids("threads", "interrupted"), values,
                             st.one_of(st.just(""), st.sampled_from(ASSISTANTS).flatmap(
                                 lambda a: st.sampled_from(nodes_of(a))), TEXT, LONG_TEXT,
                                       st.sampled_from(["__start__", "__end__", "__interrupt__"])),
                             st.one_of(st.just(""), st.just(""), ids("checkpoints")), NAMESPACES)
        case "AssistantService/List":
            token = st.integers(-1, 30).map(lambda n: base64.urlsafe_b64encode(f"graphs|{n}".encode()).decode())
            return st.builds(A.AssistantServiceListRequest,
                             graph_id=st.one_of(st.just(""), st.sampled_from(ASSISTANTS), TEXT, NUL_TEXT, LONG_TEXT),
                             metadata=st.one_of(st.just({}), objects(), objects(CLEAN_JSON), BIG_OBJECT).map(to_struct),
                             page_size=st.one_of(st.integers(0, 5), INT32), page_token=page_tokens(token))
        case "AssistantService/Get":
            return st.builds(A.AssistantServiceGetRequest, assistant_id=st.one_of(
                st.sampled_from(ASSISTANTS + ["durable"]), ids("assistants")))
        case "AssistantService/Create":
            return st.builds(lambda fields, values, i: _assistant_request(
                A.AssistantServiceCreateRequest(assistant_id=i), fields, values),
                st.sets(st.sampled_from(ASSISTANT_FIELDS)), assistant_fields(),
                st.one_of(st.just(""), st.just(""), st.just(""), UUIDS, pooled("assistants"), TEXT))
        case "AssistantService/Update":
            return st.builds(lambda fields, values, i: _assistant_request(
                A.AssistantServiceUpdateRequest(assistant_id=i), fields, values),
                st.sets(st.sampled_from(ASSISTANT_FIELDS)), assistant_fields(),
                st.one_of(ids("assistants"), st.sampled_from(ASSISTANTS)))
        case "AssistantService/Delete":
            return st.builds(A.AssistantServiceDeleteRequest, assistant_id=st.one_of(
                UUIDS, TEXT, st.just(""), st.sampled_from(ASSISTANTS), pooled("assistants")))
        case "AssistantService/ListVersions":
            token = st.integers(-1, 5).map(lambda n: base64.urlsafe_b64encode(str(n).encode()).decode())
            return st.builds(A.AssistantServiceListVersionsRequest,
                             assistant_id=st.one_of(ids("assistants"), st.sampled_from(ASSISTANTS)),
                             page_size=st.one_of(st.integers(0, 5), INT32), page_token=page_tokens(token))
        case "AssistantService/SetLatest":
            return st.builds(A.AssistantServiceSetLatestRequest,
                             assistant_id=st.one_of(ids("assistants"), st.sampled_from(ASSISTANTS)),
                             version=st.one_of(st.integers(-1, 4), INT32))
    raise AssertionError(name)


def calls() -> st.SearchStrategy[Call]:
    # Run-starting calls get more weight: they reach the most code.
    weights = {"RunService/Wait": 4, "RunService/Stream": 3, "RunService/Create": 3, "RunService/Join": 2}
    strategies = {name: requests_for(name) for name in METHODS}
    names = [name for name in METHODS for _ in range(weights.get(name, 1))]
    return st.sampled_from(names).flatmap(lambda name: strategies[name].map(lambda r: Call(name, r)))


def _mutate(raw: bytes, how: int, where: int, junk: bytes) -> bytes:
    i = where % (len(raw) + 1)
    return [raw[:i], raw[:i] + junk + raw[i:], raw[:i] + bytes([(raw[i] if i < len(raw) else 0) ^ 0xFF]) + raw[i + 1:],
            raw + junk, b"\x0a\x02\xc3\x28" + raw,  # field 1 as a string that is not UTF-8
            b"\x08\x01" + raw,  # field 1 with the wrong wire type
            raw + b"\x12\xff\xff\xff\xff\x0f"][how]  # a length running past the end


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    size, length = len(payload), b""
    while True:
        length += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return bytes([number << 3 | 2]) + length + payload


def _deep(depth: int) -> bytes:
    """A Wait request whose input nests lists `depth` deep (protobuf parses 100 levels at most)."""
    value = _field(3, b"x")  # Value.string_value
    for _ in range(depth):
        value = _field(6, _field(1, value))  # Value.list_value { values: value }
    entry = _field(1, b"deep") + _field(2, value)  # Struct.fields map entry
    spec = _field(2, b"steps") + _field(3, _field(1, entry))  # RunSpec.assistant_id, .input
    return _field(1, spec)  # RunServiceWaitRequest.spec


def raw_calls(name: str) -> st.SearchStrategy[Call]:
    """Random bytes, a valid request with a few bytes changed, or nesting deeper than protobuf parses."""
    mutated = st.builds(lambda r, how, where, junk: _mutate(r.SerializeToString(), how, where, junk),
                        requests_for(name, hangs=False),  # no hanging runs: a mutation may drop their timeout
                        st.integers(0, 6), st.integers(0, 2**16), st.binary(min_size=1, max_size=8))
    return st.builds(Call, st.just(name), st.one_of(st.binary(max_size=64), mutated, mutated,
                                                    st.integers(30, 130).map(_deep)))


# -- calling and checking -----------------------------------------------------------------------

OK = grpc.StatusCode.OK
NO_WRITE_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
                  grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
                  grpc.StatusCode.UNIMPLEMENTED}
ENDED_OK = {run_pb2.RUN_STATUS_SUCCESS, run_pb2.RUN_STATUS_INTERRUPTED}


@dataclasses.dataclass
class Outcome:
    code: grpc.StatusCode
    responses: list
    initial_metadata: dict
    error: grpc.RpcError | None = None

    def describe(self) -> str:
        return f"{self.code.name}: {self.error.details() if self.error else ''}"


def _short(request) -> str:
    """A request for a failure message, at most a few hundred characters."""
    if isinstance(request, bytes):
        return f"raw {request[:120].hex()}{'...' if len(request) > 120 else ''} ({len(request)} bytes)"
    text = " ".join(text_format.MessageToString(request, as_one_line=True).split())
    return f"{type(request).__name__} {{{text[:400]}{'...' if len(text) > 400 else ''}}}"


class Call:
    """One generated request (with a short repr, for hypothesis's reports)."""

    def __init__(self, name: str, request):
        self.name, self.request = name, request

    def __repr__(self) -> str:
        return f"Call({self.name!r}, {_short(self.request)})"


def rich_status(error: grpc.RpcError) -> dict:
    status = rpc_status.from_call(error)
    out = {"reason": None, "domain": None, "violations": None}
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.update(reason=info.reason, domain=info.domain)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["violations"] = [(v.field, v.description) for v in bad.field_violations]
    return out


class ServerErrors(logging.Handler):
    """The tracebacks the server logs with its INTERNAL answers (it runs in this process)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks.append("".join(traceback.format_exception(*record.exc_info)))

    def take(self) -> str:
        text, self.tracebacks = "\n".join(self.tracebacks), []
        return text


# FUZZ_COLLECT=1: record each distinct failure (with the server's traceback) and print them all at
# the end, instead of stopping at the first; for hunting bugs, not for CI.
COLLECT = os.environ.get("FUZZ_COLLECT") == "1"


class Fuzzer:
    """The client side: a blocking channel to the server, a database connection to count rows."""

    def __init__(self, port: int, dsn: str):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.max_receive_message_length", 32 * 1024 * 1024)])
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.db = psycopg.connect(dsn, autocommit=True)
        self.tried: collections.Counter[str] = collections.Counter()
        self.codes: collections.Counter[str] = collections.Counter()
        self.runs_started = 0
        self._callables: dict[tuple[str, bool], Any] = {}
        self.server_errors = ServerErrors()
        self.failures: dict[str, str] = {}
        logging.getLogger("graphrun_server.servicers.errors").addHandler(self.server_errors)

    def close(self) -> None:
        logging.getLogger("graphrun_server.servicers.errors").removeHandler(self.server_errors)
        self.channel.close()
        self.db.close()

    def expect(self, ok: bool, message: str) -> None:
        if ok:
            return
        logged = self.server_errors.take()
        if COLLECT:
            frames = [line.strip() for line in logged.splitlines() if line.strip().startswith('File "/work')]
            key = message.split(":")[0] + " | " + " / ".join(frames[-3:])
            self.failures.setdefault(key, message[:600] + "\n" + logged[-3000:])
            return
        raise AssertionError(f"{message}\n--- server log ---\n{logged}" if logged else message)

    def _callable(self, method: Method, raw: bool):
        key = (method.path, raw)
        if key not in self._callables:
            factory = self.channel.unary_stream if method.streaming else self.channel.unary_unary
            self._callables[key] = factory(method.path,
                                           request_serializer=None if raw else method.request.SerializeToString,
                                           response_deserializer=None if raw else method.response.FromString)
        return self._callables[key]

    def invoke(self, name: str, request) -> Outcome:
        """Send the request (a message, or raw bytes); answers are always decoded."""
        outcome = self._invoke(METHODS[name], request)
        self.tried[name] += 1
        outcome.responses = [METHODS[name].response.FromString(r) if isinstance(r, bytes) else r
                             for r in outcome.responses]
        return outcome

    def _invoke(self, method: Method, request) -> Outcome:
        call = self._callable(method, isinstance(request, bytes))
        if method.streaming:
            responses = []
            stream = call(request, timeout=CALL_TIMEOUT)
            try:
                for response in stream:
                    responses.append(response)
            except grpc.RpcError as exc:
                return Outcome(exc.code(), responses, dict(exc.initial_metadata() or ()), exc)
            return Outcome(OK, responses, dict(stream.initial_metadata() or ()))
        try:
            response, done = call.with_call(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            return Outcome(exc.code(), [], dict(exc.initial_metadata() or ()), exc)
        return Outcome(OK, [response], dict(done.initial_metadata() or ()))

    def counts(self) -> dict[str, int]:
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM graphrun_thread), (SELECT count(*) FROM graphrun_run),"
            " (SELECT count(*) FROM checkpoints),"
            " (SELECT count(*) FROM graphrun_run WHERE status IN ('pending', 'running')),"
            " (SELECT count(*) FROM graphrun_assistant), (SELECT count(*) FROM graphrun_assistant_version),"
            " (SELECT coalesce(sum(version), 0) FROM graphrun_assistant)").fetchone()
        return dict(zip(("threads", "runs", "checkpoints", "in_flight", "assistants", "versions", "current"), row))

    def check(self, name: str, request) -> Outcome:
        """Send one request and check every property of its answer."""
        method = METHODS[name]
        raw = isinstance(request, bytes)
        before = self.counts()
        started = time.monotonic()
        outcome = self.invoke(name, request)
        elapsed = time.monotonic() - started
        self.codes[outcome.code.name] += 1
        what = f"{name} {_short(request)} -> {outcome.describe()}"
        if elapsed > 5:
            print(f"SLOW {elapsed:.1f}s {what}")
        details = outcome.error.details() or "" if outcome.error else ""
        if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
            pass  # gRPC's own 16 MiB limit on messages, before any servicer runs
        else:
            self.expect(outcome.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), what)
            if outcome.error is not None:
                info = rich_status(outcome.error)
                self.expect(info["domain"] == "graphrun" and bool(info["reason"]), f"no graphrun ErrorInfo: {what}")
                if outcome.code == grpc.StatusCode.INVALID_ARGUMENT:
                    self.expect(bool(info["violations"]), f"no BadRequest: {what}")
                    self.expect(raw or all(field for field, _ in info["violations"] or ()),
                                f"a violation names no field: {what} {info['violations']}")
        self._check_responses(name, outcome, what)
        after = self.counts()
        unchanged = not method.writes or outcome.code in NO_WRITE_CODES or (
            outcome.code == grpc.StatusCode.ABORTED and rich_status(outcome.error)["reason"] == "THREAD_BUSY")
        if unchanged:
            written = ("threads", "runs", "assistants", "versions", "current")
            self.expect([after[k] for k in written] == [before[k] for k in written],
                        f"rows written: {what} {before} {after}")
            if before["in_flight"] == after["in_flight"] == 0:
                self.expect(after["checkpoints"] == before["checkpoints"], f"checkpoints written: {what}")
        if not raw and hasattr(request, "spec") and "hang_at" in request.spec.input.fields:
            for thread_id in (request.spec.thread_id, outcome.initial_metadata.get("graphrun-thread-id", ""),
                              *(r.run.thread_id for r in outcome.responses if name == "RunService/Create")):
                POOL.forget(thread_id)
        self._remember(name, outcome)
        answer = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        self.expect(answer.status == health_pb2.HealthCheckResponse.SERVING, f"unhealthy after {what}")
        self.server_errors.take()  # logged for answers that were fine (e.g. a run's graph failed)
        return outcome

    def _check_responses(self, name: str, outcome: Outcome, what: str) -> None:
        if name == "RunService/Wait" and outcome.code == OK:
            self.expect(outcome.responses[0].run.status in ENDED_OK, f"OK for a failed run: {what}")
        if name in ("RunService/Stream", "RunService/Join") and outcome.responses:
            self.expect(all(r.HasField("event") != bool(r.events) for r in outcome.responses),
                        f"a response with no event, or with both fields: {what}")
            events = [e for r in outcome.responses for e in (r.events or [r.event])]
            first = events[0].sequence
            self.expect([e.sequence for e in events] == list(range(first, first + len(events))), f"gaps: {what}")
            if name == "RunService/Stream":
                self.expect(first == 1 and events[0].HasField("metadata"), f"no metadata first: {what}")
            ends = [i for i, e in enumerate(events) if e.HasField("end")]
            self.expect(ends in ([], [len(events) - 1]), f"end not last: {what}")
            if outcome.code == OK:
                self.expect(bool(ends) and events[-1].end.run.status in ENDED_OK, f"OK without a good end: {what}")

    def _remember(self, name: str, outcome: Outcome) -> None:
        """Add the ids the answer names to the pool."""
        md = outcome.initial_metadata
        if "graphrun-run-id" in md:
            self.runs_started += 1
            POOL.add("runs", md["graphrun-run-id"])
            POOL.add("threads", md.get("graphrun-thread-id", ""))
        for response in outcome.responses:
            for run in _find(response, "Run"):
                POOL.add("runs", run.run_id)
                POOL.add("threads", run.thread_id)
                if run.status == run_pb2.RUN_STATUS_INTERRUPTED:
                    POOL.add("interrupted", run.thread_id)
            for thread in _find(response, "Thread"):
                POOL.add("threads", thread.thread_id)
            for assistant in _find(response, "Assistant"):
                if assistant.assistant_id != assistant.graph_id:
                    POOL.add("assistants", assistant.assistant_id)
            for ref in _find(response, "CheckpointRef"):
                POOL.add("checkpoints", ref.checkpoint_id)
        if name == "RunService/Create" and outcome.code == OK:
            self.runs_started += 1

    def settle(self, since: dt.datetime) -> list[str]:
        """Join every run created since `since` until it has ended (Join blocks until the end).
        Runs told to start later than that (start_delay) are cancelled."""
        delayed = [str(r[0]) for r in self.db.execute(
            "SELECT run_id FROM graphrun_run WHERE status = 'pending' AND created_at >= %s"
            " AND not_before > now() + interval '1 second'", (since,))]
        for run_id in delayed:
            outcome = self.invoke("RunService/Cancel",
                                  run_service_pb2.RunServiceCancelRequest(run_id=run_id, wait=True))
            assert outcome.code == OK and outcome.responses[0].run.status == run_pb2.RUN_STATUS_CANCELLED, outcome
        in_flight = [str(r[0]) for r in self.db.execute(
            "SELECT run_id FROM graphrun_run WHERE status IN ('pending', 'running') AND created_at >= %s"
            " ORDER BY queue_position", (since,))]
        for run_id in in_flight:
            self.invoke("RunService/Join", run_service_pb2.RunServiceJoinRequest(run_id=run_id))
        return in_flight


def _find(message: pb_message.Message, type_name: str):
    """Every submessage of the given type inside message (depth first)."""
    if message.DESCRIPTOR.name == type_name:
        yield message
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
            continue
        for item in (value if field.is_repeated else [value]):
            if isinstance(item, pb_message.Message):
                yield from _find(item, type_name)


def seed(fuzzer: Fuzzer) -> None:
    """Threads and runs in every state, so generated requests can name real ones."""
    A, R, T = assistant_service_pb2, run_service_pb2, thread_service_pb2
    POOL.__init__()
    listing = fuzzer.invoke("AssistantService/List", A.AssistantServiceListRequest()).responses[0]
    POOL.nodes = {a.assistant_id: list(a.nodes) for a in listing.assistants}

    def wait(**spec: Any) -> None:
        from google.protobuf import json_format

        outcome = fuzzer.invoke("RunService/Wait", R.RunServiceWaitRequest(
            spec=json_format.ParseDict(spec, run_pb2.RunSpec())))
        fuzzer._remember("RunService/Wait", outcome)

    wait(assistant_id="steps", input={})  # idle, three checkpoints
    wait(assistant_id="approval", input={"messages": [{"role": "user", "content": "ok?"}]})  # interrupted
    wait(assistant_id="steps", input={"fail_at": "second"})  # error
    wait(assistant_id="steps", input={}, interrupt_before=["second"])  # paused before a node
    wait(assistant_id="agent", input={"messages": [{"role": "user", "content": "Heizung?"}]})
    empty = fuzzer.invoke("ThreadService/Create", T.ThreadServiceCreateRequest()).responses[0].thread.thread_id
    POOL.add("threads", empty)  # never ran a graph
    gone = fuzzer.invoke("ThreadService/Create", T.ThreadServiceCreateRequest()).responses[0].thread.thread_id
    fuzzer.invoke("ThreadService/Delete", T.ThreadServiceDeleteRequest(thread_id=gone))
    POOL.add("threads", gone)  # deleted
    for thread_id in list(POOL.threads):
        outcome = fuzzer.invoke("ThreadService/GetHistory", T.ThreadServiceGetHistoryRequest(thread_id=thread_id))
        fuzzer._remember("ThreadService/GetHistory", outcome)
    assert POOL.threads and POOL.runs and POOL.checkpoints and POOL.interrupted


# -- the tests ----------------------------------------------------------------------------

FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))
RAW_PER_METHOD = settings(FUZZ, max_examples=20)


TRIED: collections.Counter[str] = collections.Counter()  # requests sent by this module's tests


MIN_RUNS_STARTED = 150  # generated requests that ran a graph in `test_fuzz_every_rpc`


def _minimum(name: str) -> int:
    """How many requests each RPC is sent at least (hypothesis sends a request without fields once)."""
    return 5 if METHODS[name].request.DESCRIPTOR.fields else 1


def _fuzz(fuzzer: Fuzzer, property_tests, top_up=None) -> dict[str, Any]:
    """Seed, run hypothesis properties over the server, then settle and check what is left.
    `top_up(name)`, if given, is a property sending more requests to an RPC the others sent
    fewer than its minimum: what hypothesis draws from a mix depends on what the server answered
    (the ids it hands out, the calls that timed out), so a rare RPC may be drawn too seldom."""
    since = fuzzer.db.execute("SELECT now()").fetchone()[0]
    started = time.monotonic()
    seed(fuzzer)
    for property_test in property_tests:
        property_test()
    for name in METHODS if top_up else ():
        if fuzzer.tried[name] < _minimum(name):
            top_up(name)()
    for _ in range(10) if top_up else ():  # and runs: how many started depends on timing too
        if fuzzer.runs_started >= MIN_RUNS_STARTED:
            break
        top_up("RunService/Wait")()
    if COLLECT:
        for key, text in fuzzer.failures.items():
            print(f"\n=== {key}\n{text}")
    for _ in range(5):  # Join blocks until each run ends; runs queued behind them show up next round
        if not fuzzer.settle(since):
            break
    busy = fuzzer.db.execute("SELECT thread_id, status FROM graphrun_thread WHERE status = 'busy'"
                             " AND created_at >= %s", (since,)).fetchall()
    assert not busy, f"threads left busy: {busy}; their runs: " + repr(fuzzer.db.execute(
        "SELECT run_id, status, attempt, error, cancel_action, multitask_strategy, created_at, not_before,"
        " ended_at, spec"
        " FROM graphrun_run WHERE thread_id = ANY(%s) ORDER BY queue_position", ([t for t, _ in busy],)).fetchall())
    in_flight = fuzzer.db.execute("SELECT run_id, status FROM graphrun_run WHERE status IN ('pending', 'running')"
                                  " AND created_at >= %s", (since,)).fetchall()
    assert not in_flight, f"runs never ended: {in_flight}"
    # Every thread's status agrees with its runs (the rows graphrun_refresh_thread derives it from).
    stuck = fuzzer.db.execute("SELECT t.thread_id FROM graphrun_thread t WHERE t.status = 'busy' AND NOT EXISTS"
                              " (SELECT 1 FROM graphrun_run r WHERE r.thread_id = t.thread_id"
                              "  AND r.status IN ('pending', 'running'))").fetchall()
    assert not stuck, f"threads busy without a run in flight: {stuck}"
    TRIED.update(fuzzer.tried)
    return {"requests": sum(fuzzer.tried.values()), "runs_started": fuzzer.runs_started,
            "seconds": round(time.monotonic() - started, 1), "codes": dict(fuzzer.codes),
            "per_method": dict(fuzzer.tried)}


def _report(record_property, label: str, summary: dict[str, Any]) -> None:
    print(f"\n{label}: {summary['requests']} requests ({summary['runs_started']} runs started) in "
          f"{summary['seconds']} s; codes {summary['codes']}; per method {summary['per_method']}")
    record_property(f"{label}_requests", summary["requests"])


async def _fuzz_server(server, database_url, record_property, label: str, fuzz_settings, strategies,
                       top_up: bool = False):
    """Send each strategy's calls to the server under `fuzz_settings` (then, with `top_up`, more to
    any RPC sent fewer than its minimum); report and return the counts."""
    fuzzer = Fuzzer(server.port, database_url)

    def property_test(strategy, test_settings=fuzz_settings):
        @test_settings
        @given(strategy)
        def test(call):
            fuzzer.check(call.name, call.request)
        return test

    def more_of(name: str):
        strategy = requests_for(name).map(lambda request: Call(name, request))
        return property_test(strategy, settings(fuzz_settings, max_examples=max(10, 2 * _minimum(name))))

    try:
        summary = await asyncio.to_thread(_fuzz, fuzzer, [property_test(s) for s in strategies],
                                          more_of if top_up else None)
    finally:
        fuzzer.close()
    _report(record_property, label, summary)
    return fuzzer, summary


async def test_fuzz_every_rpc(server, database_url, record_property):
    """Generated requests to every RPC: no INTERNAL/UNKNOWN, no busy thread, no partial write."""
    fuzzer, summary = await _fuzz_server(server, database_url, record_property, "fuzz", FUZZ, [calls()], top_up=True)
    assert summary["requests"] >= 1000
    assert summary["runs_started"] >= MIN_RUNS_STARTED, "too few generated requests ran a graph"
    for name in METHODS:
        assert fuzzer.tried[name] >= _minimum(name), f"{name}: {fuzzer.tried[name]}"


async def test_fuzz_raw_bytes(server, database_url, record_property):
    """Random and mutated bytes to every RPC: the same properties, whatever the bytes."""
    fuzzer, _ = await _fuzz_server(server, database_url, record_property, "fuzz_raw", RAW_PER_METHOD,
                                   [raw_calls(name) for name in sorted(METHODS)])
    print(f"requests tried by tests/test_fuzz.py so far: {sum(TRIED.values())}")
    for name in METHODS:  # a property per method: each is sent its share, whatever hypothesis draws
        assert fuzzer.tried[name] >= 10, f"{name}: {fuzzer.tried[name]}"
