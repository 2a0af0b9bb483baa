"""RunService.Stream: event order and numbering, modes, token deltas, and parity with Wait."""

import asyncio

import grpc
import pytest

from graphrun.v1 import event_pb2, run_pb2, run_service_pb2, thread_service_pb2
from support.helpers import TIMEOUT, details, messages, question, stream_request, to_dict, wait_request


async def _collect(call):
    return [response.event async for response in call]


async def test_events_are_numbered_from_metadata_to_end(runs):
    call = runs.Stream(stream_request(["values", "updates", "messages", "custom", "tasks"],
                                      assistant_id="steps", input={}), timeout=TIMEOUT)
    events = await _collect(call)
    kinds = [e.WhichOneof("attributes") for e in events]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert kinds[0] == "metadata" and kinds[-1] == "end" and kinds.count("end") == 1
    meta = events[0].metadata
    assert meta.run_id == dict(await call.initial_metadata())["graphrun-run-id"] and meta.attempt == 1
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert [e.updates.node for e in events if e.HasField("updates")] == ["first", "second", "third"]
    assert [to_dict(e.custom.data) for e in events if e.HasField("custom")] == [{"progress": "halfway"}]
    tasks = [(e.task.name, e.task.phase, e.task.step) for e in events if e.HasField("task")]
    started, finished = event_pb2.TASK_PHASE_STARTED, event_pb2.TASK_PHASE_FINISHED
    assert tasks == [("first", started, 1), ("first", finished, 1), ("second", started, 2), ("second", finished, 2),
                     ("third", started, 3), ("third", finished, 3)]
    values = [to_dict(e.values.values).get("log") for e in events if e.HasField("values")]
    assert values[-1] == ["first", "second", "third"]


async def test_a_joined_stream_replays_from_storage_what_the_live_stream_sent(runs):
    """The metadata event is stored with the run's acceptance (one write less before a stream
    starts), the rest as they come: a Join after the end reads them all back, alike."""
    live = await _collect(runs.Stream(stream_request(["values", "updates"], assistant_id="steps", input={}),
                                      timeout=TIMEOUT))
    run_id = live[0].metadata.run_id
    stored = await _collect(runs.Join(run_service_pb2.RunServiceJoinRequest(run_id=run_id), timeout=TIMEOUT))
    assert [e.WhichOneof("attributes") for e in stored] == [e.WhichOneof("attributes") for e in live]
    assert stored[0].metadata == live[0].metadata and stored[0].sequence == 1
    for replayed, sent in zip(stored[1:-1], live[1:-1]):
        replayed.ClearField("event_time"), sent.ClearField("event_time")
        assert replayed == sent


async def test_default_mode_is_values(runs):
    events = await _collect(runs.Stream(stream_request([], assistant_id="steps", input={}), timeout=TIMEOUT))
    assert {e.WhichOneof("attributes") for e in events} == {"metadata", "values", "end"}


async def test_token_deltas_then_the_complete_message(runs):
    events = await _collect(runs.Stream(stream_request(["messages"], assistant_id="agent", input=question()),
                                        timeout=TIMEOUT))
    msgs = [e.message for e in events if e.HasField("message")]
    answer_id = next(m.message_id for m in msgs if not m.delta and to_dict(m.message).get("content", "").startswith("Laut"))
    deltas = [m for m in msgs if m.message_id == answer_id and m.delta]
    complete = [m for m in msgs if m.message_id == answer_id and not m.delta]
    assert len(deltas) > 3 and len(complete) == 1
    assert msgs.index(complete[0]) > msgs.index(deltas[-1])  # the whole message comes after its pieces
    assert "".join(to_dict(d.message)["content"] for d in deltas) == to_dict(complete[0].message)["content"]
    assert "15. Januar 2025" in to_dict(complete[0].message)["content"]
    assert complete[0].node == "agent" and complete[0].step == deltas[0].step > 0

    # The tool call streams as chunks before the tool runs.
    tool_chunks = [to_dict(m.message)["tool_call_chunks"] for m in msgs if m.delta and "tool_call_chunks" in to_dict(m.message)]
    assert tool_chunks and tool_chunks[0][0]["name"] == "search_archives"
    tool_result = next(i for i, m in enumerate(msgs) if to_dict(m.message).get("role") == "tool")
    first_chunk = next(i for i, m in enumerate(msgs) if m.delta and "tool_call_chunks" in to_dict(m.message))
    assert first_chunk < tool_result and not msgs[tool_result].delta


async def test_a_nodes_complete_messages_come_before_it_is_finished(runs):
    """With `messages` and `tasks`, the complete message a node streamed arrives before the
    node's FINISHED event (a client may close its rendering of the node at that event)."""
    events = await _collect(runs.Stream(stream_request(["messages", "tasks"], assistant_id="agent", input=question()),
                                        timeout=TIMEOUT))
    finished = {(e.task.name, e.task.step): i for i, e in enumerate(events)
                if e.HasField("task") and e.task.phase == event_pb2.TASK_PHASE_FINISHED}
    completes = [(i, e.message) for i, e in enumerate(events) if e.HasField("message") and not e.message.delta]
    streamed = [(i, m) for i, m in completes if m.node == "agent"]
    assert streamed
    for i, message in streamed:
        assert i < finished[(message.node, message.step)], (i, finished)


async def test_failed_run_ends_with_an_end_event_then_a_non_ok_status(runs):
    call = runs.Stream(stream_request(["updates"], assistant_id="steps", input={"fail_at": "third"}), timeout=TIMEOUT)
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for response in call:
            seen.append(response.event)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert details(caught.value)["reason"] == "RUN_FAILED"
    assert seen[-1].end.run.status == run_pb2.RUN_STATUS_ERROR
    assert seen[-1].end.run.error.type == "ValueError"
    assert [e.updates.node for e in seen if e.HasField("updates")] == ["first", "second"]


async def test_stream_timeout_sends_the_end_event_and_deadline_exceeded(runs):
    # No gRPC deadline here: the server would stop the run at that one too, and a broken
    # spec.timeout would go unnoticed. The test's own bound makes such a run fail the test.
    call = runs.Stream(stream_request(["updates"], assistant_id="steps", input={"hang_at": "second"}, timeout="0.3s"))
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async with asyncio.timeout(TIMEOUT):
            async for response in call:
                seen.append(response.event)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert seen[-1].end.run.status == run_pb2.RUN_STATUS_TIMEOUT
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))


def _shape(state: dict) -> dict:
    """What must match between twin threads: everything but ids and times."""
    return {
        "messages": [(m["role"], m["content"], [t["name"] for t in m.get("tool_calls", [])])
                     for m in state["values"].get("messages", [])],
        "next": state["next"],
        "source": state["metadata"].get("source"),
        "step": state["metadata"].get("step"),
    }


async def _history(threads, thread_id):
    response = await threads.GetHistory(thread_service_pb2.ThreadServiceGetHistoryRequest(thread_id=thread_id,
                                                                                          page_size=100),
                                         timeout=TIMEOUT)
    return [_shape(to_dict(s)) for s in response.states]


async def test_wait_and_stream_leave_the_same_state_and_history(runs, threads):
    waited = await runs.Wait(wait_request(assistant_id="agent", input=question()), timeout=TIMEOUT)
    streamed = await _collect(runs.Stream(stream_request(["messages", "values"], assistant_id="agent",
                                                         input=question()), timeout=TIMEOUT))
    twin = streamed[0].metadata.thread_id
    a = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=waited.run.thread_id),
                               timeout=TIMEOUT)
    b = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=twin), timeout=TIMEOUT)
    assert _shape(to_dict(a.state)) == _shape(to_dict(b.state))
    assert await _history(threads, waited.run.thread_id) == await _history(threads, twin)
    assert len(await _history(threads, twin)) == 5  # input, agent, tools, agent + the first (empty) checkpoint

    # A thread with one Wait turn and one Stream turn holds both conversations.
    await _collect(runs.Stream(stream_request(["messages"], assistant_id="agent", thread_id=waited.run.thread_id,
                                              input=question("Wann war die TÜV-Prüfung vom Aufzug?")), timeout=TIMEOUT))
    state = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=waited.run.thread_id),
                                   timeout=TIMEOUT)
    assert [m["role"] for m in messages(state.state)] == ["user", "ai", "tool", "ai"] * 2


async def test_a_second_run_on_a_busy_thread_is_rejected(runs):
    call = runs.Stream(stream_request(["updates"], assistant_id="steps", input={"hang_at": "second"}), timeout=TIMEOUT)
    first = await call.read()  # the metadata event: the run is recorded, the thread is busy
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(assistant_id="steps", thread_id=first.event.metadata.thread_id, input={}),
                        timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    info = details(caught.value)
    assert info["reason"] == "THREAD_BUSY" and info["metadata"]["run_id"] == first.event.metadata.run_id
    call.cancel()


def _flat(responses) -> list[event_pb2.RunEvent]:
    return [e for r in responses for e in r.events]


def _without_times(events) -> list[event_pb2.RunEvent]:
    for e in events:
        e.ClearField("event_time")
    return events


BURST = {"messages": [{"role": "user", "content": "go"}], "n": 400, "size": 100_000}


async def test_batched_events_are_the_events_in_order_in_fewer_responses(runs):
    """With `batch_events` a Stream's responses carry its events in `events`: each event once,
    in order, none skipped, the same events a Join without it replays one by one."""
    request = stream_request(["messages", "values"], assistant_id="burst", input=BURST)
    request.batch_events = True
    responses = [r async for r in runs.Stream(request, timeout=TIMEOUT)]
    assert all(r.events and not r.HasField("event") for r in responses)
    events = _flat(responses)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].HasField("metadata") and events[-1].HasField("end")
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    deltas = [e.message for e in events if e.HasField("message") and e.message.delta]
    assert len(deltas) == 2 * BURST["n"] - 1  # the words and the spaces between them
    one_by_one = await _collect(runs.Join(run_service_pb2.RunServiceJoinRequest(run_id=events[0].metadata.run_id),
                                          timeout=TIMEOUT))
    assert _without_times(events[1:-1]) == _without_times(one_by_one[1:-1])


async def test_a_batched_join_groups_what_it_reads_up_to_64_kib_a_response(runs):
    """A Join of a run that ended reads its events at once: they come in few responses, none of
    several events above 64 KiB; the state's `values` event (100 KB) comes alone."""
    request = stream_request(["messages", "values"], assistant_id="burst", input=BURST)
    run_id = (await _collect(runs.Stream(request, timeout=TIMEOUT)))[0].metadata.run_id
    one_by_one = await _collect(runs.Join(run_service_pb2.RunServiceJoinRequest(run_id=run_id), timeout=TIMEOUT))
    responses = [r async for r in runs.Join(
        run_service_pb2.RunServiceJoinRequest(run_id=run_id, batch_events=True), timeout=TIMEOUT)]
    assert _flat(responses) == one_by_one
    assert len(responses) < len(one_by_one) / 10
    for r in responses:
        if len(r.events) > 1:
            assert r.ByteSize() < 64 * 1024
    big = [r for r in responses if any(e.HasField("values") and "blob" in to_dict(e.values.values) and
                                       len(to_dict(e.values.values)["blob"]) == BURST["size"] for e in r.events)]
    assert len(big) == 1 and len(big[0].events) == 1 and big[0].ByteSize() > 64 * 1024


async def test_a_batched_join_from_a_later_event_starts_there(runs):
    request = stream_request(["messages"], assistant_id="burst", input={**BURST, "size": 0})
    live = await _collect(runs.Stream(request, timeout=TIMEOUT))
    responses = [r async for r in runs.Join(run_service_pb2.RunServiceJoinRequest(
        run_id=live[0].metadata.run_id, after_sequence=100, batch_events=True), timeout=TIMEOUT)]
    assert [e.sequence for e in _flat(responses)] == [e.sequence for e in live[100:]]
