"""ThreadService.Copy and Prune: a copy has the original's whole history and goes its own way;
pruning keeps the state GetState shows and drops the older checkpoints; neither touches a
thread with a run in flight."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import json_format

from graphrun.v1 import run_pb2, run_service_pb2 as rpb, thread_service_pb2 as pb
from support.helpers import TIMEOUT, details, open_gate, question, spec, wait_request


async def _history(threads, thread_id: str) -> list:
    reply = await threads.GetHistory(pb.ThreadServiceGetHistoryRequest(thread_id=thread_id, page_size=100),
                                     timeout=TIMEOUT)
    return [(s.checkpoint.checkpoint_id, json_format.MessageToDict(s.values), list(s.next)) for s in reply.states]


async def test_a_copy_has_the_whole_history_and_then_goes_its_own_way(runs, threads):
    first = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    original = first.run.thread_id
    copied = await threads.Copy(pb.ThreadServiceCopyRequest(thread_id=original), timeout=TIMEOUT)
    copy = copied.thread.thread_id
    assert copy != original and copied.thread.assistant_id == "steps"
    assert await _history(threads, copy) == await _history(threads, original)

    again = await runs.Wait(wait_request(assistant_id="steps", thread_id=copy, input={}), timeout=TIMEOUT)
    assert again.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert len(await _history(threads, copy)) > len(await _history(threads, original))  # the original is untouched


async def test_a_copy_of_a_thread_waiting_on_an_interrupt_can_be_answered_on_its_own(runs, threads):
    asked = await runs.Wait(wait_request(assistant_id="approval", input=question("new roof")), timeout=TIMEOUT)
    assert asked.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    new_id = str(uuid.uuid4())
    copied = await threads.Copy(pb.ThreadServiceCopyRequest(thread_id=asked.run.thread_id, new_thread_id=new_id),
                                timeout=TIMEOUT)
    assert copied.thread.thread_id == new_id
    answered = await runs.Wait(wait_request(assistant_id="approval", thread_id=new_id, command={"resume": "yes"}),
                               timeout=TIMEOUT)
    assert answered.run.status == run_pb2.RUN_STATUS_SUCCESS
    still = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=asked.run.thread_id), timeout=TIMEOUT)
    assert len(still.state.interrupts) == 1  # the original still waits for its answer


async def test_pruning_keeps_the_state_and_drops_older_checkpoints(runs, threads):
    first = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    thread_id = first.run.thread_id
    await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={}), timeout=TIMEOUT)
    before = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    history = await _history(threads, thread_id)
    pruned = await threads.Prune(pb.ThreadServicePruneRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert pruned.checkpoints_deleted == len(history) - 1 and pruned.thread.thread_id == thread_id
    after = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert json_format.MessageToDict(after.state.values) == json_format.MessageToDict(before.state.values)
    assert after.state.checkpoint.checkpoint_id == before.state.checkpoint.checkpoint_id
    assert [h[0] for h in await _history(threads, thread_id)] == [before.state.checkpoint.checkpoint_id]
    more = await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={}), timeout=TIMEOUT)
    assert more.run.status == run_pb2.RUN_STATUS_SUCCESS  # the thread goes on from there


async def test_pruning_with_delete_deletes_the_thread(runs, threads):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    pruned = await threads.Prune(pb.ThreadServicePruneRequest(thread_id=done.run.thread_id,
                                                              strategy=pb.PRUNE_STRATEGY_DELETE), timeout=TIMEOUT)
    assert not pruned.HasField("thread") and pruned.checkpoints_deleted > 0
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await threads.Get(pb.ThreadServiceGetRequest(thread_id=done.run.thread_id), timeout=TIMEOUT)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_neither_touches_a_thread_with_a_run_in_flight(runs, threads, database_url):
    created = await runs.Create(rpb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", input={"tag": "busy", "gates": {"n2": "{run_id}-{attempt}"}})), timeout=TIMEOUT)
    thread_id = created.run.thread_id
    for call in (threads.Copy(pb.ThreadServiceCopyRequest(thread_id=thread_id), timeout=TIMEOUT),
                 threads.Prune(pb.ThreadServicePruneRequest(thread_id=thread_id), timeout=TIMEOUT)):
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await call
        assert details(busy.value)["reason"] == "THREAD_BUSY"
    open_gate(database_url, f"{created.run.run_id}-1")


@pytest.mark.parametrize("request_, field", [
    (pb.ThreadServiceCopyRequest(thread_id="nope"), "thread_id"),
    (pb.ThreadServiceCopyRequest(thread_id=str(uuid.uuid4()), new_thread_id="nope"), "new_thread_id"),
    (pb.ThreadServicePruneRequest(thread_id=str(uuid.uuid4()), strategy=7), "strategy"),
])
async def test_bad_requests_name_the_field(threads, request_, field):
    call = threads.Copy if isinstance(request_, pb.ThreadServiceCopyRequest) else threads.Prune
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await call(request_, timeout=TIMEOUT)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in details(bad.value)["violations"]


async def test_copying_a_missing_thread_or_onto_a_taken_id(runs, threads):
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await threads.Copy(pb.ThreadServiceCopyRequest(thread_id=str(uuid.uuid4())), timeout=TIMEOUT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    other = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await threads.Copy(pb.ThreadServiceCopyRequest(thread_id=done.run.thread_id,
                                                       new_thread_id=other.run.thread_id), timeout=TIMEOUT)
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
