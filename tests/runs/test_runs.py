"""RunService beyond Wait and Stream, on one server: background runs, on_disconnect,
interrupted threads and queued runs, event retention."""

import asyncio
import logging
import uuid

import grpc
import pytest

from graphrun.v1 import event_pb2, run_pb2, run_service_pb2 as pb, thread_pb2, thread_service_pb2 as tpb
from support.helpers import TIMEOUT, details, open_gate, question, spec, stream_request, to_dict, wait_request


async def _end(runs, run_id):
    """The run's end event, via Join (and the call's error, if any)."""
    call = runs.Join(pb.RunServiceJoinRequest(run_id=run_id), timeout=TIMEOUT)
    last = None
    try:
        async for response in call:
            last = response.event
    except grpc.aio.AioRpcError as error:
        return last, error
    return last, None


def _gated(tag, node="n2", **fields):
    return spec(assistant_id="durable", input={"tag": tag, "gates": {node: "{run_id}-{attempt}"}}, **fields)


async def test_on_disconnect_continue_lets_the_run_finish_after_the_deadline(runs, database_url):
    call = runs.Wait(pb.RunServiceWaitRequest(spec=_gated("bg", on_disconnect="ON_DISCONNECT_CONTINUE")), timeout=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    run_id = dict(await call.initial_metadata())["graphrun-run-id"]
    assert details(caught.value)["reason"] == "RUN_STILL_RUNNING"
    running = await runs.Get(pb.RunServiceGetRequest(run_id=run_id), timeout=TIMEOUT)
    assert running.run.status == run_pb2.RUN_STATUS_RUNNING
    assert running.run.on_disconnect == run_pb2.ON_DISCONNECT_CONTINUE

    open_gate(database_url, f"{run_id}-1")
    end, error = await _end(runs, run_id)
    assert error is None and end.end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(end.end.state.values)["log"] == ["bg:n1", "bg:n2", "bg:n3", "bg:n4"]
    done = await runs.Get(pb.RunServiceGetRequest(run_id=run_id), timeout=TIMEOUT)
    assert done.run.status == run_pb2.RUN_STATUS_SUCCESS and done.run.ended_at.seconds


async def test_a_caller_that_goes_away_cancels_its_run_by_default(runs, threads):
    call = runs.Stream(pb.RunServiceStreamRequest(spec=_gated("gone"), stream_mode=["updates"]), timeout=TIMEOUT)
    first = await call.read()
    call.cancel()
    end, error = await _end(runs, first.event.metadata.run_id)
    assert end.end.run.status == run_pb2.RUN_STATUS_CANCELLED
    assert end.end.run.error.message == "the caller went away"
    assert error.code() == grpc.StatusCode.CANCELLED
    thread = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=first.event.metadata.thread_id), timeout=TIMEOUT)
    assert thread.thread.status == thread_pb2.THREAD_STATUS_IDLE


async def test_create_runs_in_the_background_and_reports_execution_metadata(runs, database_url):
    created = await runs.Create(pb.RunServiceCreateRequest(spec=_gated("meta"), stream_mode=["tasks"]), timeout=TIMEOUT)
    assert created.run.status == run_pb2.RUN_STATUS_RUNNING and created.run.attempt == 1
    call = runs.Join(pb.RunServiceJoinRequest(run_id=created.run.run_id), timeout=TIMEOUT)
    async for response in call:
        if response.event.HasField("task") and response.event.task.name == "n2":
            break
    open_gate(database_url, f"{created.run.run_id}-1")
    end, error = await _end(runs, created.run.run_id)
    assert error is None
    run = (await runs.Get(pb.RunServiceGetRequest(run_id=created.run.run_id), timeout=TIMEOUT)).run
    assert run.current_node == "n4" and run.step == 4 and run.started_at.seconds
    listed = await runs.List(pb.RunServiceListRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert [r.run_id for r in listed.runs] == [run.run_id]


async def test_a_refused_run_is_no_warning_in_the_logs(runs, caplog):
    """A thread waiting on an interrupt refuses new input (an ordinary answer): psycopg used to log
    `error ignored terminating <AsyncPipeline>: pipeline aborted` for about half of such refusals
    (the acceptance rides in a pipeline with the thread's read)."""
    asked = await runs.Wait(wait_request(assistant_id="approval", input=question("new windows")), timeout=TIMEOUT)
    again = {"assistant_id": "approval", "thread_id": asked.run.thread_id, "input": question("something else")}
    with caplog.at_level(logging.WARNING):
        for _ in range(8):
            for call in (runs.Wait(wait_request(**again), timeout=TIMEOUT),
                         _drained(runs.Stream(stream_request(["values"], **again), timeout=TIMEOUT))):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call
                assert details(caught.value)["reason"] == "THREAD_INTERRUPTED"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def _drained(call) -> None:
    async for _ in call:
        pass


async def test_new_input_on_a_thread_waiting_on_an_interrupt_is_refused(runs, threads):
    asked = await runs.Wait(wait_request(assistant_id="approval", input=question("new windows")), timeout=TIMEOUT)
    thread_id = asked.run.thread_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(assistant_id="approval", thread_id=thread_id, input=question("something else")),
                        timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(caught.value)["reason"] == "THREAD_INTERRUPTED"
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert len(state.state.interrupts) == 1  # the question is still there

    answered = await runs.Wait(wait_request(assistant_id="approval", thread_id=thread_id, command={"resume": "no"}),
                               timeout=TIMEOUT)
    assert answered.run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_a_run_enqueued_behind_one_that_asks_a_question_fails_and_keeps_the_question(runs, threads, database_url):
    first = await runs.Create(pb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", input={"tag": "a", "gates": {"n1": "{run_id}-{attempt}"}})), timeout=TIMEOUT)
    second = await runs.Create(pb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", thread_id=first.run.thread_id, input={"tag": "b", "gates": {}},
        interrupt_before=["n3"], multitask_strategy="MULTITASK_STRATEGY_ENQUEUE")), timeout=TIMEOUT)
    third = await runs.Create(pb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", thread_id=first.run.thread_id, input={"tag": "c"},
        multitask_strategy="MULTITASK_STRATEGY_ENQUEUE")), timeout=TIMEOUT)
    assert second.run.status == third.run.status == run_pb2.RUN_STATUS_PENDING
    open_gate(database_url, f"{first.run.run_id}-1")
    assert (await _end(runs, first.run.run_id))[0].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert (await _end(runs, second.run.run_id))[0].end.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    end, error = await _end(runs, third.run.run_id)
    assert end.end.run.status == run_pb2.RUN_STATUS_ERROR and end.end.run.error.reason == "THREAD_INTERRUPTED"
    thread = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=first.run.thread_id), timeout=TIMEOUT)
    assert thread.thread.status == thread_pb2.THREAD_STATUS_INTERRUPTED


async def test_join_after_events_were_pruned_still_ends(runs, server, db):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    db.execute("UPDATE graphrun_run SET ended_at = now() - interval '2 days' WHERE run_id = %s", (done.run.run_id,))
    assert await server.records.prune_events(older_than=24 * 3600) >= 1
    assert db.execute("SELECT count(*) AS n FROM graphrun_run_event WHERE run_id = %s",
                      (done.run.run_id,)).fetchone()["n"] == 0
    end, error = await _end(runs, done.run.run_id)
    assert error is None and end.end.run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_deleting_a_thread_deletes_its_runs_events(runs, threads, db):
    events = [r async for r in runs.Stream(stream_request(["updates"], assistant_id="steps", input={}),
                                           timeout=TIMEOUT)]
    run_id, thread_id = events[0].event.metadata.run_id, events[0].event.metadata.thread_id
    assert db.execute("SELECT count(*) AS n FROM graphrun_run_event WHERE run_id = %s", (run_id,)).fetchone()["n"] == len(events)
    await threads.Delete(tpb.ThreadServiceDeleteRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert db.execute("SELECT count(*) AS n FROM graphrun_run_event WHERE run_id = %s", (run_id,)).fetchone()["n"] == 0


async def test_run_calls_validate_ids_and_find_nothing_for_unknown_runs(runs):
    import uuid

    for call, request, field in [
        (runs.Get, pb.RunServiceGetRequest(run_id="x"), "run_id"),
        (runs.Cancel, pb.RunServiceCancelRequest(run_id=""), "run_id"),
        (runs.List, pb.RunServiceListRequest(thread_id="nope"), "thread_id"),
        (runs.List, pb.RunServiceListRequest(statuses=[42]), "statuses[0]"),
        (runs.Create, pb.RunServiceCreateRequest(spec=spec(assistant_id="steps"), start_delay={"seconds": -5}), "start_delay"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, timeout=TIMEOUT)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in details(caught.value)["violations"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Get(pb.RunServiceGetRequest(run_id=str(uuid.uuid4())), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and details(caught.value)["reason"] == "RUN_NOT_FOUND"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in runs.Join(pb.RunServiceJoinRequest(run_id=str(uuid.uuid4())), timeout=TIMEOUT):
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_spec_timeout_also_bounds_a_wait_whose_run_is_queued(runs, database_url):
    first = await runs.Create(pb.RunServiceCreateRequest(spec=_gated("q1")), timeout=TIMEOUT)
    call = runs.Wait(pb.RunServiceWaitRequest(spec=spec(
        assistant_id="durable", thread_id=first.run.thread_id, input={"tag": "q2", "gates": {}},
        multitask_strategy="MULTITASK_STRATEGY_ENQUEUE", timeout="0.3s")))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # Not a gRPC deadline, which would stop the run too and hide a broken spec.timeout.
        await asyncio.wait_for(call, TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    queued = dict(await call.initial_metadata())["graphrun-run-id"]
    queued_run = (await runs.Get(pb.RunServiceGetRequest(run_id=queued), timeout=TIMEOUT)).run
    assert queued_run.status == run_pb2.RUN_STATUS_TIMEOUT
    open_gate(database_url, f"{first.run.run_id}-1")
    end, _ = await _end(runs, first.run.run_id)
    assert end.end.run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_spec_timeout_stops_a_queued_run_that_continues_without_its_caller(runs, database_url):
    """on_disconnect CONTINUE is about the caller going away: the run's own `spec.timeout` still
    stops it (TIMEOUT), it does not leave it running as a passed call deadline would."""
    first = await runs.Create(pb.RunServiceCreateRequest(spec=_gated("c1")), timeout=TIMEOUT)
    call = runs.Wait(pb.RunServiceWaitRequest(spec=spec(
        assistant_id="durable", thread_id=first.run.thread_id, input={"tag": "c2", "gates": {}},
        multitask_strategy="MULTITASK_STRATEGY_ENQUEUE", timeout="0.3s", on_disconnect="ON_DISCONNECT_CONTINUE")))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call, TIMEOUT)  # not a gRPC deadline: that one would leave the run going
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert details(caught.value)["reason"] == "RUN_TIMEOUT"
    queued = dict(await call.initial_metadata())["graphrun-run-id"]
    assert (await runs.Get(pb.RunServiceGetRequest(run_id=queued), timeout=TIMEOUT)).run.status == \
        run_pb2.RUN_STATUS_TIMEOUT
    open_gate(database_url, f"{first.run.run_id}-1")
    end, _ = await _end(runs, first.run.run_id)
    assert end.end.run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_join_after_the_last_event_is_invalid(runs):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    call = runs.Join(pb.RunServiceJoinRequest(run_id=done.run.run_id, after_sequence=50), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "after_sequence" in details(caught.value)["violations"]


async def test_join_after_a_sequence_starts_with_the_next_event(runs, database_url):
    """Join(after_sequence=n) sends n+1 onwards, never n again: from the stored events of a run
    that ended, and from the memory of a run executing here (the Stream a client lost)."""
    def join(run_id, after):
        return runs.Join(pb.RunServiceJoinRequest(run_id=run_id, after_sequence=after), timeout=TIMEOUT)

    streamed = [r.event async for r in runs.Stream(stream_request(["updates", "tasks"], assistant_id="steps",
                                                                  input={}), timeout=TIMEOUT)]
    run_id = streamed[0].metadata.run_id
    full = [to_dict(r.event) async for r in join(run_id, 0)]
    assert [int(e["sequence"]) for e in full] == [e.sequence for e in streamed] == list(range(1, len(streamed) + 1))
    for after in range(len(full)):  # the last is refused (test_join_after_the_last_event_is_invalid)
        assert [to_dict(r.event) async for r in join(run_id, after)] == full[after:], after

    created = (await runs.Create(pb.RunServiceCreateRequest(spec=_gated("live", node="n3"),
                                                            stream_mode=["updates", "tasks"]), timeout=TIMEOUT)).run
    before = []
    call = join(created.run_id, 0)
    async for response in call:  # up to n3's start: the run waits there for its gate
        before.append(to_dict(response.event))
        if response.event.task.name == "n3" and response.event.task.phase == event_pb2.TASK_PHASE_STARTED:
            break
    call.cancel()
    for after in range(len(before)):
        call, got = join(created.run_id, after), []
        async for response in call:
            got.append(to_dict(response.event))
            if len(got) == len(before) - after:
                break
        call.cancel()
        assert got == before[after:], after
    open_gate(database_url, f"{created.run_id}-1")
    rest = [to_dict(r.event) async for r in join(created.run_id, len(before))]
    assert int(rest[0]["sequence"]) == len(before) + 1 and rest[-1]["end"]["run"]["status"] == "RUN_STATUS_SUCCESS"


async def test_answering_an_interrupt_with_update_state_frees_the_thread(runs, threads):
    from google.protobuf import json_format, struct_pb2

    asked = await runs.Wait(wait_request(assistant_id="approval", input=question("new door")), timeout=TIMEOUT)
    thread_id = asked.run.thread_id
    await threads.UpdateState(tpb.ThreadServiceUpdateStateRequest(
        thread_id=thread_id, values=json_format.ParseDict({"decision": "yes"}, struct_pb2.Struct()), as_node="review"),
        timeout=TIMEOUT)
    thread = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert thread.thread.status == thread_pb2.THREAD_STATUS_IDLE
    rest = await runs.Wait(wait_request(assistant_id="approval", thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(rest.state.values)["messages"][-1]["content"] == "decision: yes"


async def test_a_state_holding_a_nul_character_is_stored_and_returned(runs):
    done = await runs.Wait(wait_request(assistant_id="steps", input={"nul": True}), timeout=TIMEOUT)
    assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(done.state.values)["log"][-1] == "third\ufffd"


@pytest.mark.parametrize("durability", ["DURABILITY_SYNC", "DURABILITY_ASYNC"])
async def test_a_refused_or_queued_run_runs_no_node_before_its_turn(runs, db, database_url, durability):
    """A run meant to start at once gets its graph ready while the database records it; a run
    the database refuses must leave no trace, and one it queues must run in its turn, once.
    (The later runs open no gates: the thread's state still holds the first run's.) A Wait's run
    on an existing thread learns the database's answer with LangGraph's first read, and must not
    go on with what it read; with `async` durability no checkpoint write would stop its nodes."""
    since = db.execute("SELECT now() AS t").fetchone()["t"]
    first = (await runs.Create(pb.RunServiceCreateRequest(spec=_gated("held", node="n1")), timeout=TIMEOUT)).run
    busy = {"assistant_id": "durable", "thread_id": first.thread_id}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await runs.Wait(wait_request(**busy, input={"tag": "refused", "gates": {}}), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.ABORTED and details(refused.value)["reason"] == "THREAD_BUSY"
    enqueue = {**busy, "multitask_strategy": "MULTITASK_STRATEGY_ENQUEUE"}
    queued = (await runs.Create(pb.RunServiceCreateRequest(spec=spec(**enqueue, input={"tag": "queued", "gates": {}})),
                                timeout=TIMEOUT)).run
    assert queued.status == run_pb2.RUN_STATUS_PENDING
    waited = asyncio.ensure_future(runs.Wait(wait_request(**enqueue, input={"tag": "waited", "gates": {}},
                                                          durability=durability), timeout=TIMEOUT))
    listing = pb.RunServiceListRequest(thread_id=first.thread_id)
    while len((await runs.List(listing, timeout=TIMEOUT)).runs) < 3:  # the Wait's run is recorded (queued)
        assert not waited.done()

    open_gate(database_url, f"{first.run_id}-1")
    answer = await waited
    assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(answer.state.values)["log"][-4:] == ["waited:n1", "waited:n2", "waited:n3", "waited:n4"]
    rows = db.execute("SELECT run_id::text AS run_id, node, attempt FROM test_side_effect WHERE at >= %s"
                      " AND run_id::text IN (SELECT run_id::text FROM graphrun_run WHERE thread_id = %s)",
                      (since, first.thread_id)).fetchall()
    ran = {}
    for row in rows:
        ran.setdefault(row["run_id"], []).append((row["node"], row["attempt"]))
    assert len(ran) == 3 and all(steps == [("n1", 1), ("n2", 1), ("n3", 1), ("n4", 1)] for steps in ran.values())
    strays = db.execute("SELECT run_id FROM test_side_effect WHERE at >= %s"
                        " AND run_id::text NOT IN (SELECT run_id::text FROM graphrun_run)", (since,)).fetchall()
    assert strays == []  # the refused run ran nothing


async def test_a_run_stopped_before_its_task_began_still_ends_cancelled(runs, server):
    """A Cancel can reach a run in the instant between a worker claiming it and its task's first
    step (seen as a Cancel with wait=True that never returned, under CPU load). A task cancelled
    then never runs its coroutine, so nothing recorded the run's end: it stayed RUNNING, its
    lease renewed, forever. The instant is reproduced here by stopping the run in the same step
    of the event loop that registers it (the runner's own claim path, reached directly)."""
    from graphrun_server.servicers.convert import parse_run_spec
    from graphrun_server.storage.records import Claim

    runner = server.runner
    request = parse_run_spec(spec(assistant_id="steps", input={"hang_at": "first"}), [])
    thread_id = str(uuid.uuid4())
    record = await server.records.begin_run(
        run_id=str(uuid.uuid4()), thread_id=thread_id, create_thread=True, assistant_id="steps",
        multitask_strategy="reject", on_disconnect="continue", spec=request.to_json(), metadata={}, delay=0.0,
        has_input=True, owner=runner.owner, lease=runner.settings.lease_seconds)
    assert record.status == "running"
    active = runner._claims.launch(Claim(record, 0, None))  # as a worker's claim starts a run
    active.stop("interrupt", "cancelled before its task began")  # no await in between

    end = await asyncio.wait_for(runner.wait_end(record.run_id), timeout=60)
    assert end.data["status"] == "cancelled"
    stored = (await runs.Get(pb.RunServiceGetRequest(run_id=record.run_id), timeout=TIMEOUT)).run
    assert stored.status == run_pb2.RUN_STATUS_CANCELLED


async def test_get_shows_a_running_runs_node_from_its_first_step(database_url):
    """The current node is stored when the first node starts, not at the next lease renewal
    (with this server's 300 s lease, 100 s away)."""
    from conftest import GRAPHS_CONFIG
    from graphrun.v1 import run_service_pb2_grpc
    from graphrun_server.app import App, Settings
    from support.helpers import reached_gate

    app = await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG, lease_seconds=300)).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            runs = run_service_pb2_grpc.RunServiceStub(channel)
            created = await runs.Create(pb.RunServiceCreateRequest(spec=_gated("progress", node="n1")), timeout=TIMEOUT)
            run_id = created.run.run_id
            await reached_gate(database_url, f"{run_id}-1")
            async with asyncio.timeout(TIMEOUT):
                while (run := (await runs.Get(pb.RunServiceGetRequest(run_id=run_id), timeout=TIMEOUT)).run
                       ).current_node != "n1":
                    await asyncio.sleep(0.05)  # polling what the database shows, not synchronising with the code
            assert run.status == run_pb2.RUN_STATUS_RUNNING and run.step == 1  # as LangGraph numbers the first task
            open_gate(database_url, f"{run_id}-1")
            end, _ = await _end(runs, run_id)
            assert end.end.run.status == run_pb2.RUN_STATUS_SUCCESS
    finally:
        await app.stop(grace=1)
