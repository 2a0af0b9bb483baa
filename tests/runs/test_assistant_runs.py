"""Runs of created assistants: the graph sees the assistant's config and context under the run's
own (merged as LangGraph merges them), a run may pin a version, the run records the version it
ran, and what a run stores is the effective spec, so an Update while it waits changes nothing."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import json_format

from graphrun.v1 import assistant_service_pb2 as apb, run_pb2, run_service_pb2 as rpb, thread_service_pb2 as tpb
from support.helpers import TIMEOUT, details, open_gate, reached_gate, spec, wait_request

ASSISTANT = {
    "graph_id": "configured",
    "config": {"configurable": {"tone": "terse", "tools": ["search"]}, "tags": ["from-assistant"],
               "recursion_limit": 7},
    "context": {"user": "ada", "model": "large", "temperature": 0.1},
}


async def _create(assistants, **fields) -> str:
    created = await assistants.Create(json_format.ParseDict(fields or ASSISTANT, apb.AssistantServiceCreateRequest()),
                                      timeout=TIMEOUT)
    return created.assistant.assistant_id


async def _update(assistants, assistant_id: str, **fields) -> int:
    request = json_format.ParseDict({"assistant_id": assistant_id, **fields}, apb.AssistantServiceUpdateRequest())
    return (await assistants.Update(request, timeout=TIMEOUT)).assistant.version


def _seen(response) -> dict:
    return json_format.MessageToDict(response.state.values)["seen"]


async def test_a_run_sees_its_assistants_config_and_context_and_its_own_win(assistants, runs):
    assistant_id = await _create(assistants)
    plain = await runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    assert plain.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert (plain.run.assistant_id, plain.run.graph_id, plain.run.assistant_version) == (assistant_id, "configured", 1)
    seen = _seen(plain)
    assert seen["context"] == {"user": "ada", "model": "large", "prompt": "You are helpful.", "temperature": 0.1}
    assert seen["configurable"]["tone"] == "terse" and seen["configurable"]["tools"] == ["search"]
    assert seen["tags"] == ["from-assistant"] and seen["recursion_limit"] == 7
    assert (seen["assistant_id"], seen["graph_id"]) == (assistant_id, "configured")

    own = await runs.Wait(wait_request(
        assistant_id=assistant_id, input={}, context={"model": "huge"},
        config={"configurable": {"tone": "chatty"}, "tags": ["from-run", "from-assistant"], "recursion_limit": 9},
    ), timeout=TIMEOUT)
    seen = _seen(own)
    assert seen["context"] == {"user": "ada", "model": "huge", "prompt": "You are helpful.", "temperature": 0.1}
    assert seen["configurable"]["tone"] == "chatty" and seen["configurable"]["tools"] == ["search"]
    assert seen["tags"] == ["from-assistant", "from-run"] and seen["recursion_limit"] == 9

    # A client older than context sends the schema's fields in configurable: those win too.
    legacy = await runs.Wait(wait_request(assistant_id=assistant_id, input={},
                                          config={"configurable": {"model": "legacy"}}), timeout=TIMEOUT)
    assert _seen(legacy)["context"]["model"] == "legacy" and _seen(legacy)["context"]["user"] == "ada"


async def test_a_run_fills_what_the_assistants_context_leaves_out_and_is_checked_whole(assistants, runs):
    assistant_id = await _create(assistants, graph_id="configured", context={"model": "large"})  # no `user`
    done = await runs.Wait(wait_request(assistant_id=assistant_id, input={}, context={"user": "grace"}),
                           timeout=TIMEOUT)
    assert _seen(done)["context"]["user"] == "grace" and _seen(done)["context"]["model"] == "large"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.context.user" in details(refused.value)["violations"]


async def test_a_pinned_version_runs_that_version_after_an_update(assistants, runs):
    assistant_id = await _create(assistants, graph_id="configured", context={"user": "ada", "model": "one"})
    assert await _update(assistants, assistant_id, context={"user": "ada", "model": "two"}) == 2
    current = await runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    pinned = await runs.Wait(wait_request(assistant_id=assistant_id, input={}, assistant_version=1), timeout=TIMEOUT)
    assert (_seen(current)["context"]["model"], current.run.assistant_version) == ("two", 2)
    assert (_seen(pinned)["context"]["model"], pinned.run.assistant_version) == ("one", 1)
    got = await runs.Get(rpb.RunServiceGetRequest(run_id=pinned.run.run_id), timeout=TIMEOUT)
    assert (got.run.assistant_id, got.run.assistant_version, got.run.graph_id) == (assistant_id, 1, "configured")

    for assistant, version in ((assistant_id, 3), ("steps", 2)):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await runs.Wait(wait_request(assistant_id=assistant, input={}, assistant_version=version), timeout=TIMEOUT)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert details(missing.value)["reason"] == "ASSISTANT_VERSION_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await runs.Wait(wait_request(assistant_id=assistant_id, input={}, assistant_version=-1), timeout=TIMEOUT)
    assert "spec.assistant_version" in details(negative.value)["violations"]
    default = await runs.Wait(wait_request(assistant_id="steps", input={}, assistant_version=1), timeout=TIMEOUT)
    assert default.run.status == run_pb2.RUN_STATUS_SUCCESS and default.run.assistant_version == 1


async def test_a_queued_run_runs_the_version_it_was_accepted_with(assistants, runs, database_url):
    """The run stores the effective spec: updated while it waits, the assistant changes nothing for it
    (as for a run another replica takes over)."""
    assistant_id = await _create(assistants, graph_id="configured", context={"user": "ada", "model": "one"})
    gate = f"assistant-{uuid.uuid4()}"
    first = await runs.Create(rpb.RunServiceCreateRequest(spec=spec(assistant_id=assistant_id, input={"gate": gate})),
                              timeout=TIMEOUT)
    await reached_gate(database_url, gate)
    queued = await runs.Create(rpb.RunServiceCreateRequest(spec=spec(
        assistant_id=assistant_id, thread_id=first.run.thread_id, input={},
        multitask_strategy="MULTITASK_STRATEGY_ENQUEUE")), timeout=TIMEOUT)
    assert queued.run.status == run_pb2.RUN_STATUS_PENDING and queued.run.assistant_version == 1
    assert await _update(assistants, assistant_id, context={"user": "ada", "model": "two"}) == 2
    open_gate(database_url, gate)
    events = [e async for e in runs.Join(rpb.RunServiceJoinRequest(run_id=queued.run.run_id), timeout=TIMEOUT)]
    end = events[-1].event.end
    assert end.run.status == run_pb2.RUN_STATUS_SUCCESS and end.run.assistant_version == 1
    assert _seen(end)["context"]["model"] == "one"


async def test_a_thread_remembers_its_assistant_and_outlives_it(assistants, runs, threads):
    assistant_id = await _create(assistants)
    done = await runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    thread = (await threads.Get(tpb.ThreadServiceGetRequest(thread_id=done.run.thread_id), timeout=TIMEOUT)).thread
    assert (thread.assistant_id, thread.graph_id) == (assistant_id, "configured")
    listed = await threads.List(tpb.ThreadServiceListRequest(assistant_id=assistant_id), timeout=TIMEOUT)
    assert [t.thread_id for t in listed.threads] == [done.run.thread_id]
    again = await runs.Wait(wait_request(assistant_id=thread.assistant_id, thread_id=thread.thread_id, input={}),
                            timeout=TIMEOUT)  # how `graphrun wait --thread` continues a thread
    assert _seen(again)["configurable"]["tone"] == "terse"

    await assistants.Delete(apb.AssistantServiceDeleteRequest(assistant_id=assistant_id), timeout=TIMEOUT)
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread.thread_id), timeout=TIMEOUT)
    assert json_format.MessageToDict(state.state.values)["seen"]["assistant_id"] == assistant_id  # still readable
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await runs.Wait(wait_request(assistant_id=assistant_id, thread_id=thread.thread_id, input={}), timeout=TIMEOUT)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_repeated_request_gets_its_first_run_even_after_an_update(assistants, runs):
    assistant_id = await _create(assistants)
    request_id = str(uuid.uuid4())
    first = await runs.Wait(wait_request(assistant_id=assistant_id, input={}, request_id=request_id), timeout=TIMEOUT)
    await _update(assistants, assistant_id, config={"tags": ["changed"]})
    again = await runs.Wait(wait_request(assistant_id=assistant_id, input={}, request_id=request_id), timeout=TIMEOUT)
    assert again.run.run_id == first.run.run_id and again.run.assistant_version == 1
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await runs.Wait(wait_request(assistant_id=assistant_id, input={"gate": ""}, request_id=request_id),
                        timeout=TIMEOUT)
    assert details(reused.value)["reason"] == "REQUEST_ID_REUSED"


async def test_deleting_an_assistant_leaves_its_runs_in_flight_and_queued_alone(assistants, runs, database_url):
    assistant_id = await _create(assistants)
    gate = f"assistant-{uuid.uuid4()}"
    running = await runs.Create(rpb.RunServiceCreateRequest(spec=spec(assistant_id=assistant_id,
                                                                      input={"gate": gate})), timeout=TIMEOUT)
    await reached_gate(database_url, gate)
    queued = await runs.Create(rpb.RunServiceCreateRequest(spec=spec(
        assistant_id=assistant_id, thread_id=running.run.thread_id, input={},
        multitask_strategy="MULTITASK_STRATEGY_ENQUEUE")), timeout=TIMEOUT)
    await assistants.Delete(apb.AssistantServiceDeleteRequest(assistant_id=assistant_id), timeout=TIMEOUT)
    open_gate(database_url, gate)
    for run_id in (running.run.run_id, queued.run.run_id):
        events = [e async for e in runs.Join(rpb.RunServiceJoinRequest(run_id=run_id), timeout=TIMEOUT)]
        end = events[-1].event.end
        assert end.run.status == run_pb2.RUN_STATUS_SUCCESS and end.run.assistant_id == assistant_id
        assert _seen(end)["configurable"]["tone"] == "terse" and _seen(end)["context"]["model"] == "large"
