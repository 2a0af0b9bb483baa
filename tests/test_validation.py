"""Bad input gets INVALID_ARGUMENT with BadRequest naming the field; unknown things get NOT_FOUND."""

import uuid

import grpc
import pytest

from graphrun.v1 import run_service_pb2, thread_service_pb2
from helpers import details, question, wait_request

ABORT = grpc.aio.AioRpcError


@pytest.mark.parametrize("fields, field", [
    ({"input": {}}, "spec.assistant_id"),
    ({"assistant_id": "steps", "thread_id": "not-a-uuid"}, "spec.thread_id"),
    ({"assistant_id": "steps", "thread_id": str(uuid.uuid4()), "checkpoint_id": "x"}, "spec.checkpoint_id"),
    ({"assistant_id": "steps", "input": {}, "command": {"resume": 1}}, "spec.command"),
    ({"assistant_id": "steps", "command": {}}, "spec.command"),
    ({"assistant_id": "steps", "command": {"resume": "yes"}}, "spec.command.resume"),
    ({"assistant_id": "steps"}, "spec.input"),
    ({"assistant_id": "steps", "config": {"configurable": {"thread_id": "x"}}}, "spec.config.configurable.thread_id"),
    ({"assistant_id": "steps", "config": {"bogus": 1}}, "spec.config.bogus"),
    ({"assistant_id": "steps", "config": {"recursion_limit": 0}}, "spec.config.recursion_limit"),
    ({"assistant_id": "steps", "config": {"tags": "x"}}, "spec.config.tags"),
    ({"assistant_id": "steps", "multitask_strategy": 42}, "spec.multitask_strategy"),
    ({"assistant_id": "steps", "granularity": 9}, "spec.granularity"),
    ({"assistant_id": "steps", "timeout": "-1s"}, "spec.timeout"),
    ({"assistant_id": "steps", "input": {}, "timeout": "315360000000s"}, "spec.timeout"),
    ({"assistant_id": "steps", "input": {}, "metadata": {"who": "a\u0000b"}}, "spec.metadata"),
    ({"assistant_id": "steps", "input": {}, "config": {"configurable": {"__pregel_checkpointer": None}}},
     "spec.config.configurable.__pregel_checkpointer"),
    ({"assistant_id": "steps", "input": {}, "interrupt_after": ["first", "ghost"]}, "spec.interrupt_after[1]"),
    ({"assistant_id": "steps", "command": {"goto": ["ghost"]}}, "spec.command.goto[0]"),
])
async def test_wait_rejects_bad_fields(runs, fields, field):
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details(caught.value)
    assert field in info["violations"], info
    assert info["reason"] == "INVALID_ARGUMENT" and info["domain"] == "graphrun"


async def test_unknown_stream_mode_is_rejected_before_anything_runs(runs, db):
    before = db.execute("SELECT count(*) AS n FROM graphrun_run").fetchone()["n"]
    call = runs.Stream(run_service_pb2.RunServiceStreamRequest(spec=wait_request(assistant_id="steps").spec,
                                                               stream_mode=["values", "tokens"]))
    with pytest.raises(ABORT) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream_mode[1]" in details(caught.value)["violations"]
    assert db.execute("SELECT count(*) AS n FROM graphrun_run").fetchone()["n"] == before


async def test_unknown_assistant_and_thread_are_not_found(runs):
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="nobody", input={}))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value)["reason"] == "ASSISTANT_NOT_FOUND"

    missing = str(uuid.uuid4())
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="agent", thread_id=missing, input=question()))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = details(caught.value)
    assert info["reason"] == "THREAD_NOT_FOUND" and info["metadata"]["thread_id"] == missing


async def test_checkpoint_of_another_thread_is_invalid(runs):
    one = await runs.Wait(wait_request(assistant_id="steps", input={}))
    other = await runs.Wait(wait_request(assistant_id="steps", input={}))
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="steps", thread_id=other.run.thread_id, input={},
                                     checkpoint_id=one.state.checkpoint.checkpoint_id))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.checkpoint_id" in details(caught.value)["violations"]


async def test_thread_calls_validate_ids(threads):
    for call, request in [
        (threads.Get, thread_service_pb2.ThreadServiceGetRequest(thread_id="nope")),
        (threads.GetState, thread_service_pb2.ThreadServiceGetStateRequest(thread_id="")),
        (threads.Delete, thread_service_pb2.ThreadServiceDeleteRequest(thread_id="1234")),
        (threads.GetHistory, thread_service_pb2.ThreadServiceGetHistoryRequest(thread_id="x")),
    ]:
        with pytest.raises(ABORT) as caught:
            await call(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "thread_id" in details(caught.value)["violations"]


async def test_oversized_fields_are_refused(runs, threads):
    big = "x" * (70 * 1024)
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="steps", input={}, metadata={"blob": big}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.metadata" in details(caught.value)["violations"]
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="steps", input={}, interrupt_before=["first"] * 101))
    assert "spec.interrupt_before" in details(caught.value)["violations"]
    from google.protobuf import json_format, struct_pb2

    with pytest.raises(ABORT) as caught:
        await threads.Create(thread_service_pb2.ThreadServiceCreateRequest(
            metadata=json_format.ParseDict({"blob": big}, struct_pb2.Struct())))
    assert "metadata" in details(caught.value)["violations"]


async def test_a_full_queue_is_resource_exhausted_with_retry_info(admin_dsn):
    from conftest import GRAPHS_CONFIG, scratch_database
    from graphrun.v1 import run_service_pb2, run_service_pb2_grpc
    from graphrun_server.app import App, Settings
    from helpers import spec

    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG, max_concurrent_runs=1,
                                 max_pending_runs=1)).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                stub = run_service_pb2_grpc.RunServiceStub(channel)
                hang = spec(assistant_id="steps", input={"hang_at": "first"})
                running = await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
                queued = await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
                assert (running.run.status, queued.run.status) == (2, 1)  # RUNNING, PENDING
                with pytest.raises(ABORT) as caught:
                    await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                info = details(caught.value)
                assert info["reason"] == "QUEUE_FULL" and info["retry"] == 1.0
                for run in (running.run, queued.run):
                    await stub.Cancel(run_service_pb2.RunServiceCancelRequest(run_id=run.run_id, wait=True))
        finally:
            await app.stop(grace=1)
