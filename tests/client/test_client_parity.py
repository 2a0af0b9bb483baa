"""`Client` and `AsyncClient` are one client: the sync module is generated from the async one and
is not stale, both have the same methods with the same parameters, and the same call sends the
same request (and raises the same error) from either. Also: the typed run options cover RunSpec,
and the Literal option types name exactly the proto enums' values.

No graphrun server is needed: a recording gRPC server answers every method with an empty
response (or, for one run id, an error) and keeps what it was sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import inspect
import pathlib
import re
import threading
import uuid
from concurrent import futures
from typing import Any, get_args

import grpc
import pytest
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

import graphrun
from graphrun import AsyncClient, Client, RunNotFoundError, RunOptions, _convert, _types
from graphrun.v1 import event_pb2, run_pb2, run_service_pb2, thread_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_sync_client", ROOT / "scripts" / "gen_sync_client.py")
assert _spec and _spec.loader
gen_sync_client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_sync_client)

MISSING_RUN = "00000000-0000-0000-0000-00000000dead"


def test_the_sync_client_is_generated_from_the_async_one_and_not_stale() -> None:
    fresh = gen_sync_client.generate(gen_sync_client.ASYNC.read_text())
    assert gen_sync_client.SYNC.read_text() == fresh, "_sync.py is stale: run scripts/gen_sync_client.py"


def test_the_generator_moves_aligned_lines_with_their_bracket_and_refuses_leftovers() -> None:
    source = (
        '"""Docs."""\n'
        "from collections.abc import AsyncIterator, Iterable\n"
        "\n"
        "\n"
        "class AsyncClient:\n"
        "    async def f(self, a: int,\n"
        "                b: Iterable[int]) -> AsyncIterator[int]:\n"
        "        value = await self.g(a, [x for x in b\n"
        "                                 if x])\n"
        "        for item in value:\n"
        "            yield item\n"
    )
    generated = gen_sync_client.generate(source, phrases={})
    body = generated.split('"""\n', 2)[-1]
    assert body == (
        "from collections.abc import Iterable, Iterator\n"
        "\n"
        "\n"
        "class Client:\n"
        "    def f(self, a: int,\n"
        "          b: Iterable[int]) -> Iterator[int]:\n"
        "        value = self.g(a, [x for x in b\n"
        "                           if x])\n"
        "        yield from value\n"
    )
    with pytest.raises(SystemExit, match="_async.py:3 keeps 'asyncio'"):
        gen_sync_client.generate('"""Docs."""\n\nawait asyncio.gather(a, b)\n', phrases={})
    # The one asyncio call it knows: a pause between retries.
    assert gen_sync_client.generate('"""Docs."""\nimport asyncio\nawait asyncio.sleep(1)\n', phrases={}).endswith(
        "import time\ntime.sleep(1)\n")


# -- the same methods, parameters and annotations ---------------------------------------------

_SYNC_SPELLING = [(re.compile(r"\bAsyncIterator\b"), "Iterator"), (re.compile(r"\bAsyncClient\b"), "Client")]


def _public(cls: type) -> dict[str, Any]:
    names = {n for n in vars(cls) if not n.startswith("_")} | {"__init__"}
    return {n: getattr(cls, n) for n in sorted(names)}


def _as_sync(annotation: Any) -> Any:
    if isinstance(annotation, str):
        for pattern, replacement in _SYNC_SPELLING:
            annotation = pattern.sub(replacement, annotation)
    return annotation


def _shape(function: Any, *, from_async: bool = False) -> list[tuple[str, Any, Any, Any]]:
    signature = inspect.signature(function)
    convert = _as_sync if from_async else (lambda a: a)
    return [(p.name, p.kind, p.default, convert(p.annotation)) for p in signature.parameters.values()] + [
        ("return", None, None, convert(signature.return_annotation))]


def _flavour(function: Any) -> str:
    if inspect.iscoroutinefunction(function):
        return "call"
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        return "generator"
    return "plain"


def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    sync, asynchronous = _public(Client), _public(AsyncClient)
    assert sync.keys() == asynchronous.keys()
    for name, function in asynchronous.items():
        assert _shape(sync[name]) == _shape(function, from_async=True), name
        # A coroutine method is a plain one in Client; generators stay generators.
        expected = {"call": "plain", "generator": "generator", "plain": "plain"}[_flavour(function)]
        assert _flavour(sync[name]) == expected, name
    assert (_shape(Client.__enter__)[1:], _shape(Client.__exit__)[1:]) == (
        _shape(AsyncClient.__aenter__, from_async=True)[1:], _shape(AsyncClient.__aexit__, from_async=True)[1:])


def test_every_async_method_that_calls_the_server_is_awaitable_or_async_iterable() -> None:
    for name, function in _public(AsyncClient).items():
        if name in ("__init__", "target"):
            continue
        returns = inspect.signature(function).return_annotation
        assert inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function) or \
            returns.startswith("AsyncIterator["), name


# -- the same requests from both ----------------------------------------------------------------

def _request_classes() -> dict[str, Any]:
    """`/graphrun.v1.RunService/Wait` -> RunServiceWaitRequest, for every method the clients call."""
    pool = descriptor_pool.Default()
    classes = {}
    for service in ("graphrun.v1.RunService", "graphrun.v1.ThreadService", "graphrun.v1.AssistantService",
                    "graphrun.v1.StoreService", "graphrun.v1.CronService", "grpc.health.v1.Health"):
        for method in pool.FindServiceByName(service).methods:
            classes[f"/{service}/{method.name}"] = message_factory.GetMessageClass(method.input_type)
    return classes


class _Recorder(grpc.GenericRpcHandler):
    """Answers every unary method with an empty response and every stream with no events, except
    `get_run(MISSING_RUN)`, which fails NOT_FOUND as graphrun does; keeps each call's request."""

    def __init__(self) -> None:
        self.given_request_id = RUN_OPTIONS["request_id"]
        self.calls: list[tuple[str, dict[str, Any], str | None, bool]] = []
        self.lock = threading.Lock()
        self.classes = _request_classes()

    def _record(self, method: str, request: bytes, context: grpc.ServicerContext) -> Any:
        message = self.classes[method].FromString(request)
        metadata = dict(context.invocation_metadata())
        sent = json_format.MessageToDict(message)
        spec = sent.get("spec", {})
        if spec.get("requestId") and spec["requestId"] != self.given_request_id:
            # A request id the client made up (a fresh UUID each call): compared as present, not by value.
            uuid.UUID(spec["requestId"])
            spec["requestId"] = "<made by the client>"
        with self.lock:
            self.calls.append((method, sent, metadata.get("authorization"),
                               context.time_remaining() is not None and context.time_remaining() < 3600))
        if method.endswith("RunService/Get") and message.run_id == MISSING_RUN:
            info = error_details_pb2.ErrorInfo(reason="RUN_NOT_FOUND", domain="graphrun",
                                               metadata={"run_id": MISSING_RUN})
            detail = any_pb2.Any()
            detail.Pack(info)
            context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                code=code_pb2.NOT_FOUND, message=f"run {MISSING_RUN} not found", details=[detail])))
        return message

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if method not in self.classes:
            return None
        if method.endswith(("RunService/Stream", "RunService/Join")):
            def stream(request: bytes, context: grpc.ServicerContext) -> Any:
                self._record(method, request, context)
                return iter(())
            return grpc.unary_stream_rpc_method_handler(stream)

        def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
            self._record(method, request, context)
            return b""  # an empty message of whatever type the method answers
        return grpc.unary_unary_rpc_method_handler(unary)


@pytest.fixture(scope="module")
def recorder():
    handler = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield handler, f"127.0.0.1:{port}"
    server.stop(None)


RUN_OPTIONS: RunOptions = {
    "thread_id": "4f1b0cbe-6f3c-4f7a-9d0f-2b8f9a1c0d11", "command": {"resume": {"ok": True}, "goto": "n"},
    "config": {"tags": ["t"], "recursion_limit": 7}, "context": {"user": "u"}, "metadata": {"m": 1},
    "interrupt_before": ["a"], "interrupt_after": ("b", "c"), "multitask_strategy": "enqueue",
    "if_not_exists": "create", "checkpoint_id": "1f0", "granularity": "partial", "timeout": 2.5,
    "durability": "EXIT", "webhook": "https://hooks.example.com/done", "request_id": "retry-safe-1",
    "on_completion": "keep", "assistant_version": 3,
}

# One call of every public method, with options that change the request; (method, args, kwargs).
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("wait", ("agent", {"x": 1}), {**RUN_OPTIONS, "on_disconnect": "continue", "deadline": 30}),
    ("wait", ("agent", 3), {}),
    ("stream", ("agent", [1, 2]), {**RUN_OPTIONS, "stream_mode": ["updates", "custom"], "subgraphs": True,
                                   "on_disconnect": "cancel", "deadline": 30}),
    ("stream", ("agent",), {"stream_mode": "messages"}),
    ("create_run", ("agent", {"x": 1}), {**RUN_OPTIONS, "stream_mode": "values", "subgraphs": True,
                                        "start_delay": 1.5, "deadline": 30}),
    ("get_run", ("r1",), {}),
    ("list_runs", ("t1", ["running", "RUN_STATUS_SUCCESS", 4], 5, "tok"), {}),
    ("list_runs", (), {"cron_id": "c1"}),
    ("iter_runs", ("t1", "pending", 7), {}),
    ("cancel_run", ("r1", "rollback", True), {}),
    ("join", ("r1", 4, "low"), {"deadline": 30}),
    ("create_thread", ("t1", {"user": "u"}), {}),
    ("create_thread", (), {"ttl": 120, "ttl_strategy": "keep_latest"}),
    ("copy_thread", ("t1", "t2"), {}),
    ("prune_thread", ("t1", "delete"), {}),
    ("list_threads", (["idle", "interrupted"], {"user": "u"}, "agent", 3, "tok"), {}),
    ("iter_threads", ("busy", None, "agent", 2), {}),
    ("get_thread", ("t1",), {}),
    ("delete_thread", ("t1",), {}),
    ("get_state", ("t1", "c1"), {"checkpoint_ns": "child:1", "subgraphs": True}),
    ("get_history", ("t1", 3, "tok"), {"checkpoint_ns": "child:1"}),
    ("iter_history", ("t1", 3), {"checkpoint_ns": "child:1"}),
    ("update_state", ("t1", {"k": "v"}, "node", "c1"), {"checkpoint_ns": "child:1"}),
    ("create_cron", ("*/5 * * * * *", "agent", {"x": 1}),
     {"timezone": "Europe/Berlin", "end_time": dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "paused": True,
      "cron_metadata": {"team": "ops"}, "stream_mode": ["updates"], "subgraphs": True, "cron_id": "c1",
      "thread_id": "t1", "metadata": {"m": 1}, "multitask_strategy": "enqueue", "timeout": 9}),
    ("update_cron", ("c1",), {"schedule": "@daily", "paused": False, "no_end_time": True}),
    ("update_cron", ("c1",), {"assistant_id": "agent", "input": {"x": 2}, "stream_mode": "values",
                              "end_time": dt.datetime(2031, 1, 2), "cron_metadata": {}}),
    ("get_cron", ("c1",), {}),
    ("delete_cron", ("c1",), {}),
    ("list_crons", ("agent", "t1", 4, "tok"), {}),
    ("list_assistants", (), {}),
    ("list_assistants", ("agent", {"team": "docs"}, 5, "tok"), {}),
    ("iter_assistants", ("agent", None, 2), {}),
    ("get_assistant", ("agent",), {}),
    ("create_assistant", ("agent",), {"assistant_id": "a1", "name": "n", "description": "d",
                                      "config": {"tags": ["t"]}, "context": {"user": "u"}, "metadata": {"m": 1},
                                      "webhook": "https://hooks.example.com/a"}),
    ("update_assistant", ("a1",), {"graph_id": "steps", "config": {}, "webhook": ""}),
    ("update_assistant", ("a1",), {"name": "only the name"}),
    ("delete_assistant", ("a1",), {}),
    ("list_assistant_versions", ("a1", 2, "tok"), {}),
    ("set_latest_assistant_version", ("a1", 2), {}),
    ("health", ("graphrun.v1.RunService",), {}),
    ("put_item", (("users", "u"), "k", {"v": 1}), {"index": ["v"], "ttl": 5}),
    ("get_item", (["users", "u"], "k"), {"refresh_ttl": False}),
    ("delete_item", ("users", "k"), {}),
    ("search_items", (("users",),), {"query": "q", "filter": {"v": {"$gte": 1}}, "limit": 3, "offset": 1,
                                     "refresh_ttl": True}),
    ("list_namespaces", (), {"prefix": ["users", "*"], "suffix": "x", "max_depth": 2, "limit": 5, "offset": 1}),
]


def test_every_method_has_a_parity_case() -> None:
    methods = {n for n, f in _public(AsyncClient).items() if callable(f)} - {"__init__", "close"}
    assert {name for name, _, _ in CALLS} == methods


def _sync_call(target: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with Client(target, token="tok") as client:
        result = getattr(client, name)(*args, **kwargs)
        return list(result) if inspect.isgenerator(result) else result


async def _async_call(target: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    async with AsyncClient(target, token="tok") as client:
        result = getattr(client, name)(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return [item async for item in result]


@pytest.mark.parametrize("name, args, kwargs", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
async def test_both_clients_send_the_same_request_and_return_the_same_value(recorder, name, args, kwargs) -> None:
    handler, target = recorder
    handler.calls.clear()
    from_sync = await asyncio.to_thread(_sync_call, target, name, args, kwargs)
    sent_by_sync = list(handler.calls)
    handler.calls.clear()
    from_async = await _async_call(target, name, args, kwargs)
    sent_by_async = list(handler.calls)
    assert sent_by_sync and sent_by_sync == sent_by_async
    assert all(token == "Bearer tok" for _, _, token, _ in sent_by_sync)
    assert [deadline for *_, deadline in sent_by_sync] == ["deadline" in kwargs] * len(sent_by_sync)
    assert from_sync == from_async


def test_the_parity_cases_set_every_field_the_options_reach() -> None:
    """The run options above are not left at their defaults (else the comparison proves little)."""
    spec = _convert.run_spec("agent", {"x": 1}, on_disconnect="continue", **RUN_OPTIONS)
    unset = [f.name for f in spec.DESCRIPTOR.fields if f.name != "input_value"
             and not (spec.HasField(f.name) if f.has_presence else getattr(spec, f.name))]
    assert unset == []


async def test_both_clients_raise_the_same_error(recorder) -> None:
    _, target = recorder
    with pytest.raises(RunNotFoundError) as from_async:
        await _async_call(target, "get_run", (MISSING_RUN,), {})
    with pytest.raises(RunNotFoundError) as from_sync:
        await asyncio.to_thread(_sync_call, target, "get_run", (MISSING_RUN,), {})
    for error in (from_async.value, from_sync.value):
        assert (error.code, error.reason, error.run_id) == (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND", MISSING_RUN)
        assert isinstance(error, graphrun.NotFoundError)


@pytest.mark.parametrize("name", ["wait", "stream", "create_run"])
async def test_a_misspelt_run_option_fails_before_any_call(recorder, name) -> None:
    handler, target = recorder
    handler.calls.clear()
    with pytest.raises(TypeError, match="thred_id"):
        await _async_call(target, name, ("agent",), {"thred_id": "t"})
    with pytest.raises(TypeError, match="thred_id"):
        await asyncio.to_thread(_sync_call, target, name, ("agent",), {"thred_id": "t"})
    assert handler.calls == []


# -- typed options and the one spelling of enum values ------------------------------------------

def test_run_options_cover_the_run_spec() -> None:
    """Every RunSpec field is a run option, or an argument of its own (a new field fails here)."""
    own_arguments = {"assistant_id", "input", "input_value", "on_disconnect"}
    fields = {f.name for f in run_pb2.RunSpec.DESCRIPTOR.fields}
    assert set(RunOptions.__optional_keys__) == fields - own_arguments


@pytest.mark.parametrize("literal, enum", [
    (_types.RunStatus, run_pb2.RunStatus), (_types.ThreadStatus, thread_pb2.ThreadStatus),
    (_types.MultitaskStrategy, run_pb2.MultitaskStrategy), (_types.IfNotExists, run_pb2.IfNotExists),
    (_types.Granularity, run_pb2.Granularity), (_types.Durability, run_pb2.Durability),
    (_types.OnDisconnect, run_pb2.OnDisconnect), (_types.CancelAction, run_service_pb2.CancelAction),
])
def test_the_option_types_name_the_proto_enum_values(literal: Any, enum: Any) -> None:
    names = [_convert.enum_name(enum.DESCRIPTOR, v.name) for v in enum.DESCRIPTOR.values if v.number]
    assert list(get_args(literal)) == names
    assert [_convert._enum(name, enum, "option") for name in names] == [v.number for v in enum.DESCRIPTOR.values
                                                                        if v.number]


def test_every_enum_in_a_returned_dict_is_spelt_as_run_result_status() -> None:
    run = run_pb2.Run(run_id="r", status=run_pb2.RUN_STATUS_INTERRUPTED,
                      multitask_strategy=run_pb2.MULTITASK_STRATEGY_ENQUEUE,
                      on_disconnect=run_pb2.ON_DISCONNECT_CONTINUE)
    end = event_pb2.RunEvent(sequence=9)
    end.end.run.CopyFrom(run)
    task = event_pb2.RunEvent(sequence=3)
    task.task.phase = event_pb2.TASK_PHASE_FINISHED
    as_dict = _convert.to_dict(run)
    assert (as_dict["status"], as_dict["multitask_strategy"], as_dict["on_disconnect"]) == (
        "interrupted", "enqueue", "continue")
    event = _convert.event(end)
    assert event.data["run"] == as_dict and event.result is not None and event.result.status == "interrupted"
    assert _convert.event(task).data["phase"] == "finished"
    assert _convert.to_dict(thread_pb2.Thread(status=thread_pb2.THREAD_STATUS_BUSY))["status"] == "busy"
    # status_name still reads the proto's names (from the stubs, or an older client's dicts).
    assert graphrun.status_name({"status": "RUN_STATUS_SUCCESS"}) == graphrun.status_name("success") == "success"
    assert graphrun.status_name({"status": "THREAD_STATUS_IDLE"}) == "idle"
