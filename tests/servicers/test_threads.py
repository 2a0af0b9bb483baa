"""ThreadService: records, state, paginated history, state updates, deletion."""

import uuid

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from graphrun.v1 import run_pb2, thread_pb2, thread_service_pb2 as pb
from support.helpers import TIMEOUT, details, to_dict, wait_request


def _struct(value: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(value, struct_pb2.Struct())


async def test_create_get_and_duplicate(threads):
    thread_id = str(uuid.uuid4())
    created = await threads.Create(pb.ThreadServiceCreateRequest(thread_id=thread_id,
                                                                 metadata=_struct({"owner": "ops"})), timeout=TIMEOUT)
    assert created.thread.thread_id == thread_id
    assert created.thread.status == thread_pb2.THREAD_STATUS_IDLE
    got = await threads.Get(pb.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(got.thread.metadata) == {"owner": "ops"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await threads.Create(pb.ThreadServiceCreateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    generated = await threads.Create(pb.ThreadServiceCreateRequest(), timeout=TIMEOUT)
    assert uuid.UUID(generated.thread.thread_id)


async def test_new_thread_has_an_empty_state_then_runs_fill_it(threads, runs):
    created = await threads.Create(pb.ThreadServiceCreateRequest(), timeout=TIMEOUT)
    thread_id = created.thread.thread_id
    empty = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert not empty.state.HasField("checkpoint") and to_dict(empty.state.values) == {}
    await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={}), timeout=TIMEOUT)
    state = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["first", "second", "third"]


async def test_history_pages_newest_first_and_reads_old_checkpoints(threads, runs):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    thread_id = done.run.thread_id
    pages, token = [], ""
    while True:
        page = await threads.GetHistory(pb.ThreadServiceGetHistoryRequest(thread_id=thread_id, page_size=2,
                                                                         page_token=token), timeout=TIMEOUT)
        pages.append([to_dict(s) for s in page.states])
        token = page.next_page_token
        if not token:
            break
    states = [s for p in pages for s in p]
    assert [len(p) for p in pages] == [2, 2, 1]  # input, first, second, third + the empty start
    assert [s["values"].get("log", []) for s in states] == [
        ["first", "second", "third"], ["first", "second"], ["first"], [], []]
    assert states[0]["checkpoint"]["checkpoint_id"] == done.state.checkpoint.checkpoint_id
    assert all(a["parent_checkpoint"]["checkpoint_id"] == b["checkpoint"]["checkpoint_id"]
               for a, b in zip(states, states[1:]))

    old = states[2]["checkpoint"]["checkpoint_id"]
    at = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id, checkpoint_id=old),
                                timeout=TIMEOUT)
    assert to_dict(at.state.values)["log"] == ["first"] and list(at.state.next) == ["second"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await threads.GetHistory(pb.ThreadServiceGetHistoryRequest(thread_id=thread_id, page_size=5000),
                                 timeout=TIMEOUT)
    assert "page_size" in details(caught.value)["violations"]


async def test_update_state_then_continue(threads, runs):
    paused = await runs.Wait(wait_request(assistant_id="steps", input={}, interrupt_before=["third"]), timeout=TIMEOUT)
    thread_id = paused.run.thread_id
    updated = await threads.UpdateState(pb.ThreadServiceUpdateStateRequest(
        thread_id=thread_id, values=_struct({"log": ["edited"]}), as_node="second"), timeout=TIMEOUT)
    assert updated.checkpoint.thread_id == thread_id and updated.checkpoint.checkpoint_id
    state = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["first", "second", "edited"]
    assert state.state.checkpoint.checkpoint_id == updated.checkpoint.checkpoint_id
    finished = await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(finished.state.values)["log"] == ["first", "second", "edited", "third"]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await threads.UpdateState(pb.ThreadServiceUpdateStateRequest(thread_id=thread_id, values=_struct({}),
                                                                     as_node="ghost"), timeout=TIMEOUT)
    assert "as_node" in details(caught.value)["violations"]


async def test_update_state_needs_a_graph(threads):
    created = await threads.Create(pb.ThreadServiceCreateRequest(), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await threads.UpdateState(pb.ThreadServiceUpdateStateRequest(thread_id=created.thread.thread_id,
                                                                     values=_struct({"log": []})), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_delete_removes_thread_runs_and_checkpoints(threads, runs, db):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    thread_id = done.run.thread_id
    await threads.Delete(pb.ThreadServiceDeleteRequest(thread_id=thread_id), timeout=TIMEOUT)
    for table in ("graphrun_thread", "graphrun_run", "checkpoints", "checkpoint_writes", "checkpoint_blobs"):
        row = db.execute(f"SELECT count(*) AS n FROM {table} WHERE thread_id::text = %s", (thread_id,)).fetchone()
        assert row["n"] == 0, table
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await threads.Get(pb.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_delete_stops_a_run_in_flight(threads, runs, db):
    from support.helpers import stream_request

    call = runs.Stream(stream_request(["updates"], assistant_id="steps", input={"hang_at": "second"}), timeout=TIMEOUT)
    first = await call.read()
    thread_id, run_id = first.event.metadata.thread_id, first.event.metadata.run_id
    await threads.Delete(pb.ThreadServiceDeleteRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert db.execute("SELECT count(*) AS n FROM graphrun_run WHERE run_id = %s", (run_id,)).fetchone()["n"] == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while (response := await call.read()) != grpc.aio.EOF:
            last = response.event
    assert caught.value.code() == grpc.StatusCode.CANCELLED
    assert details(caught.value)["reason"] == "RUN_CANCELLED"
    assert last.end.run.status == run_pb2.RUN_STATUS_CANCELLED
