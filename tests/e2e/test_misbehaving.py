"""A graph that misbehaves ends its own run as an error; other runs on the replica carry on."""

import asyncio
import os
import uuid

import grpc
import pytest

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import run_pb2, run_service_pb2 as pb, run_service_pb2_grpc, thread_pb2
from graphrun.v1 import thread_service_pb2 as tpb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import details, open_gate, spec, to_dict
from test_durable import read_until, started

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)

LIMIT = 0.5  # seconds a run may hold the event loop here; the culprit holds it 4x as long


@pytest.fixture(scope="module")
async def stubs(admin_dsn, database_url):
    # database_url: the session database holds the durable graph's gates
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn, config=GRAPHS_CONFIG,
                                 max_blocking_seconds=LIMIT)).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield run_service_pb2_grpc.RunServiceStub(channel), thread_service_pb2_grpc.ThreadServiceStub(channel)
        finally:
            await app.stop(grace=1)


async def bystander(runs) -> tuple[run_pb2.Run, str]:
    """A run that is in the middle of its node n2 (waiting on a gate) on the same replica."""
    gate = f"bystander-{uuid.uuid4()}"
    body = spec(assistant_id="durable", input={"tag": "b", "gates": {"n2": gate}})
    run = (await runs.Create(pb.RunServiceCreateRequest(spec=body, stream_mode=["tasks"]), timeout=30)).run
    join = runs.Join(pb.RunServiceJoinRequest(run_id=run.run_id), timeout=60)
    await read_until(join, started("n2"))
    join.cancel()
    return run, gate


async def finishes_well(runs, run: run_pb2.Run, gate: str) -> None:
    open_gate(os.environ["GRAPHRUN_TEST_DSN"], gate)
    events = [r.event async for r in runs.Join(pb.RunServiceJoinRequest(run_id=run.run_id), timeout=60)]
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(events[-1].end.state.values)["log"] == ["b:n1", "b:n2", "b:n3", "b:n4"]


async def fails_alone(stubs, culprit_input: dict) -> grpc.aio.AioRpcError:
    """Run the misbehaving graph beside a bystander run; return how the culprit's call failed."""
    runs, threads = stubs
    other, gate = await bystander(runs)
    thread = (await threads.Create(tpb.ThreadServiceCreateRequest(), timeout=30)).thread
    culprit = pb.RunServiceWaitRequest(spec=spec(assistant_id="misbehaving", thread_id=thread.thread_id,
                                                 input={"log": [], **culprit_input}))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await runs.Wait(culprit, timeout=60)
    assert failed.value.code() == grpc.StatusCode.ABORTED
    assert details(failed.value)["reason"] == "RUN_FAILED"
    # Its thread is free again, at the last step it stored; a new run on it works.
    got = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread.thread_id), timeout=30)
    assert got.thread.status == thread_pb2.THREAD_STATUS_ERROR
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread.thread_id), timeout=30)
    assert to_dict(state.state.values)["log"] == ["first"]
    again = await runs.Wait(pb.RunServiceWaitRequest(spec=spec(
        assistant_id="misbehaving", thread_id=thread.thread_id, input={"block_seconds": 0, "unstorable": False})),
        timeout=30)
    assert to_dict(again.state.values)["log"] == ["first", "first", "culprit"]
    # The run beside it finishes as if nothing happened.
    await finishes_well(runs, other, gate)
    return failed.value


async def test_a_node_blocking_the_event_loop_fails_its_own_run_only(stubs):
    error = await fails_alone(stubs, {"block_seconds": LIMIT * 4})
    assert "EventLoopBlocked" in error.details() and "node 'culprit' blocked the server's event loop" in error.details()


async def test_a_value_that_cannot_be_stored_fails_its_own_run_only(stubs):
    error = await fails_alone(stubs, {"unstorable": True})
    assert "TypeError" in error.details() and "not msgpack serializable" in error.details()


async def test_runs_that_only_await_are_never_blamed(stubs):
    runs, _ = stubs
    done = await asyncio.gather(*(runs.Wait(pb.RunServiceWaitRequest(spec=spec(
        assistant_id="misbehaving", input={"log": []})), timeout=30) for _ in range(20)))
    assert all(d.run.status == run_pb2.RUN_STATUS_SUCCESS for d in done)


async def test_a_run_whose_node_swallows_its_cancellation_is_still_stopped(stubs):
    """A stop that is swallowed on its way (the node catches CancelledError, or Python 3.11's
    wait_for loses it) is repeated until the run leaves the graph: the run ends CANCELLED, and
    a Cancel that waits for that returns, rather than the run going on forever."""
    runs, _ = stubs
    created = await runs.Create(pb.RunServiceCreateRequest(spec=spec(
        assistant_id="misbehaving", input={"log": [], "swallow_cancel": True}), stream_mode=["tasks"]), timeout=30)
    join = runs.Join(pb.RunServiceJoinRequest(run_id=created.run.run_id), timeout=60)
    async for response in join:  # the culprit is waiting
        if response.event.HasField("task") and response.event.task.name == "culprit":
            break
    join.cancel()
    cancelled = await runs.Cancel(pb.RunServiceCancelRequest(run_id=created.run.run_id, wait=True), timeout=60)
    assert cancelled.run.status == run_pb2.RUN_STATUS_CANCELLED
