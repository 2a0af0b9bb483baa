"""Bad input gets INVALID_ARGUMENT with BadRequest naming the field; unknown things get NOT_FOUND."""

import uuid

import grpc
import pytest

from graphrun.v1 import run_service_pb2, thread_service_pb2
from support.helpers import details, messages, question, wait_request

ABORT = grpc.aio.AioRpcError
# A message LangChain reads, which add_messages then refuses (no message has that id): a write
# the graph's state refuses, made by a run.
REMOVE_NOTHING = {"type": "remove", "id": "no-such-message", "content": ""}


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
    ({"assistant_id": "approval", "input": {"messages": [{"role": "user", "content": "hi"},
                                                         {"role": "bogus", "content": "x"}]}}, "spec.input.messages[1]"),
    ({"assistant_id": "approval", "input": {"messages": [{"role": "user"}]}}, "spec.input.messages[0]"),
    ({"assistant_id": "approval", "input": {"messages": 5}}, "spec.input.messages"),
    ({"assistant_id": "approval", "command": {"goto": ["draft"], "update": {"messages": [{"role": "bogus", "content": "x"}]}}},
     "spec.command.update.messages[0]"),
])
async def test_wait_rejects_bad_fields(runs, fields, field):
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(**fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = details(caught.value)
    assert field in info["violations"], info
    assert info["reason"] == "INVALID_ARGUMENT" and info["domain"] == "graphrun"


async def test_messages_the_graph_cannot_read_change_nothing(runs, db):
    """Messages LangChain cannot read (an unknown role, no content, a number) are bad input: the
    thread they were sent to keeps its state and status, and no run is recorded."""
    first = await runs.Wait(wait_request(assistant_id="agent", input=question("Wann?")))
    thread_id = first.run.thread_id

    def stored():
        return (db.execute("SELECT count(*) AS n FROM graphrun_run WHERE thread_id = %s", (thread_id,)).fetchone()["n"],
                db.execute("SELECT status FROM graphrun_thread WHERE thread_id = %s", (thread_id,)).fetchone()["status"],
                db.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,)).fetchone()["n"])

    before = stored()
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="agent", thread_id=thread_id,
                                     input={"messages": [{"role": "bogus", "content": "x"}]}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a message" in details(caught.value)["violations"]["spec.input.messages[0]"]
    assert stored() == before and before[1] == "idle"
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="agent", thread_id=thread_id, input={"messages": 5}))
    assert details(caught.value)["violations"]["spec.input.messages"] == \
        "must be a message (an object with role and content, or a string), not a number"
    assert stored() == before


async def test_messages_outside_the_graphs_input_schema_are_not_checked(runs):
    """LangGraph drops input keys its input schema does not have: so does the check."""
    answer = await runs.Wait(wait_request(assistant_id="narrow_input", input={"question": "hi", "messages": 5}))
    assert [m["content"] for m in messages(answer.state)] == ["hi"]


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


async def test_a_full_replica_or_queue_is_resource_exhausted_with_retry_info(admin_dsn):
    # A replica of its own, as a process: this test ran an App in the test's event loop beside
    # the session's server and was flaky under CPU load (failures, then a segfault of the test
    # process in native code), where replicas as processes are not.
    from conftest import GRAPHS_CONFIG, scratch_database
    from graphrun.v1 import run_service_pb2
    from support.helpers import spec
    from support.replicas import Replica

    with scratch_database(admin_dsn) as dsn:
        replica = await Replica("full", dsn, GRAPHS_CONFIG, max_concurrent_runs=1, max_pending_runs=1).start()
        try:
            stub = replica.runs
            hang = spec(assistant_id="steps", input={"hang_at": "first"})
            running = await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
            queued = await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
            assert (running.run.status, queued.run.status) == (2, 1)  # RUNNING, PENDING
            with pytest.raises(ABORT) as caught:
                await stub.Create(run_service_pb2.RunServiceCreateRequest(spec=hang))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = details(caught.value)
            assert info["reason"] == "QUEUE_FULL" and info["retry"] == 1.0
            # A caller that waits for its run is told at once that this replica is full.
            for call in (stub.Wait(run_service_pb2.RunServiceWaitRequest(spec=hang)),
                         stub.Stream(run_service_pb2.RunServiceStreamRequest(spec=hang)).read()):
                with pytest.raises(ABORT) as caught:
                    await call
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                info = details(caught.value)
                assert info["reason"] == "REPLICA_BUSY" and info["retry"] == 0.5
                assert info["metadata"] == {"max_concurrent_runs": "1"}
            for run in (running.run, queued.run):
                await stub.Cancel(run_service_pb2.RunServiceCancelRequest(run_id=run.run_id, wait=True))
        finally:
            await replica.close()


# -- found by tests/test_fuzz.py ------------------------------------------------------------


def _struct(**fields):
    from google.protobuf import struct_pb2

    message = struct_pb2.Struct()
    for key, value in fields.items():
        message.fields[key].number_value = value
    return message


async def test_nan_and_infinity_are_invalid_argument(runs, threads, db):
    """JSON has no NaN or Infinity: json_format refused to convert them, which was INTERNAL."""
    from graphrun.v1 import run_pb2

    before = db.execute("SELECT (SELECT count(*) FROM graphrun_thread) t, (SELECT count(*) FROM graphrun_run) r"
                        ).fetchone()
    nan, inf = float("nan"), float("inf")
    resume = run_pb2.RunSpec(assistant_id="approval", thread_id=str(uuid.uuid4()))
    resume.command.resume.number_value = inf
    for spec, field in [
        (run_pb2.RunSpec(assistant_id="steps", input=_struct(tag=nan)), "spec.input"),
        (run_pb2.RunSpec(assistant_id="steps", input=_struct(), metadata=_struct(x=-inf)), "spec.metadata"),
        (run_pb2.RunSpec(assistant_id="steps", input=_struct(), config=_struct(recursion_limit=nan)), "spec.config"),
        (resume, "spec.command.resume"),
    ]:
        with pytest.raises(ABORT) as caught:
            await runs.Wait(run_service_pb2.RunServiceWaitRequest(spec=spec))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert field in details(caught.value)["violations"]
    with pytest.raises(ABORT) as caught:
        await threads.Create(thread_service_pb2.ThreadServiceCreateRequest(metadata=_struct(x=nan)))
    assert "metadata" in details(caught.value)["violations"]
    done = await runs.Wait(wait_request(assistant_id="steps", input={}))
    with pytest.raises(ABORT) as caught:
        await threads.UpdateState(thread_service_pb2.ThreadServiceUpdateStateRequest(
            thread_id=done.run.thread_id, values=_struct(tag=inf)))
    assert "values" in details(caught.value)["violations"]
    after = db.execute("SELECT (SELECT count(*) FROM graphrun_thread) t, (SELECT count(*) FROM graphrun_run) r"
                       ).fetchone()
    assert (after["t"], after["r"]) == (before["t"] + 1, before["r"] + 1)  # only the Wait that ran


async def test_history_page_token_naming_no_checkpoint_is_invalid(runs, threads):
    """A token decoding to text with a NUL reached PostgreSQL, which refused it: INTERNAL."""
    import base64

    done = await runs.Wait(wait_request(assistant_id="steps", input={}))
    for text in ("a\x00b", "not-a-checkpoint"):
        with pytest.raises(ABORT) as caught:
            await threads.GetHistory(thread_service_pb2.ThreadServiceGetHistoryRequest(
                thread_id=done.run.thread_id, page_token=base64.urlsafe_b64encode(text.encode()).decode()))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "page_token" in details(caught.value)["violations"]


async def test_update_state_with_values_the_graph_refuses_is_invalid(runs, threads, db):
    """A reducer raising on the values (TypeError, ValueError from LangChain, ...) was INTERNAL."""
    from google.protobuf import json_format, struct_pb2

    steps = await runs.Wait(wait_request(assistant_id="steps", input={}))
    approval = await runs.Wait(wait_request(assistant_id="approval", input=question("ok?")))
    for thread_id, values in [(steps.run.thread_id, {"log": 5}),
                              (approval.run.thread_id, {"messages": [{"role": "bogus", "content": "x"}]}),
                              (approval.run.thread_id, {"messages": [{"no": "role"}]})]:
        checkpoints = db.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s",
                                 (thread_id,)).fetchone()["n"]
        with pytest.raises(ABORT) as caught:
            await threads.UpdateState(thread_service_pb2.ThreadServiceUpdateStateRequest(
                thread_id=thread_id, values=json_format.ParseDict(values, struct_pb2.Struct())))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "values" in details(caught.value)["violations"]
        assert db.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s",
                          (thread_id,)).fetchone()["n"] == checkpoints


async def test_state_of_a_thread_whose_writes_the_graph_refused(runs, threads):
    """A run that fails because a reducer raised on its writes leaves them stored with its last
    checkpoint: reading the state applied them and raised again, and GetState and GetHistory were
    INTERNAL. The checkpoint is shown as written, and the thread stays usable."""
    with pytest.raises(ABORT) as caught:  # input add_messages refuses (removing what is not there): the start task's writes
        await runs.Wait(wait_request(assistant_id="approval", input={"messages": [REMOVE_NOTHING]}))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    bad_input = details(caught.value)["metadata"]["thread_id"]
    asking = await runs.Wait(wait_request(assistant_id="approval", input=question("ok?")))
    with pytest.raises(ABORT) as caught:  # a resume whose update the state refuses: writes of no task
        await runs.Wait(wait_request(assistant_id="approval", thread_id=asking.run.thread_id, command={
            "resume": "yes", "update": {"messages": [REMOVE_NOTHING]}}))
    assert caught.value.code() == grpc.StatusCode.ABORTED
    for thread_id, next_nodes in [(bad_input, ["__start__"]), (asking.run.thread_id, ["review"])]:
        state = (await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=thread_id))).state
        assert list(state.next) == next_nodes and state.checkpoint.checkpoint_id
        history = await threads.GetHistory(thread_service_pb2.ThreadServiceGetHistoryRequest(thread_id=thread_id))
        assert history.states[0].checkpoint.checkpoint_id == state.checkpoint.checkpoint_id
    # The threads stay usable: new input starts over; UpdateState moves past the refused writes.
    again = await runs.Wait(wait_request(assistant_id="approval", thread_id=bad_input, input=question("ok?")))
    assert list(again.state.next) == ["review"]
    await threads.UpdateState(thread_service_pb2.ThreadServiceUpdateStateRequest(thread_id=asking.run.thread_id))
    answered = await runs.Wait(wait_request(assistant_id="approval", thread_id=asking.run.thread_id,
                                            command={"resume": "yes"}))
    assert messages(answered.state)[-1]["content"] == "decision: yes"


async def test_resume_of_a_thread_whose_input_the_graph_refused_is_not_internal(runs):
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="approval", input={"messages": [REMOVE_NOTHING]}))
    thread_id = details(caught.value)["metadata"]["thread_id"]
    with pytest.raises(ABORT) as caught:
        await runs.Wait(wait_request(assistant_id="approval", thread_id=thread_id, command={"resume": "yes"}))
    assert caught.value.code() != grpc.StatusCode.INTERNAL, caught.value.details()


async def test_long_values_are_echoed_clipped(runs, assistants):
    """An error echoing a long id or many node names outgrew the trailing metadata clients accept
    (8 KiB): they failed with RESOURCE_EXHAUSTED and no details."""
    from graphrun.v1 import assistant_service_pb2

    long_id = "ü" * 70_000
    with pytest.raises(ABORT) as caught:
        await assistants.Get(assistant_service_pb2.AssistantServiceGetRequest(assistant_id=long_id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info = details(caught.value)
    assert info["reason"] == "ASSISTANT_NOT_FOUND" and long_id.startswith(info["metadata"]["assistant_id"][:-1])
    for fields, more in [({"interrupt_before": ["x" * 1000] * 100}, "and 90 more"),
                         ({"config": {"y" * 5000: 1}}, "")]:
        with pytest.raises(ABORT) as caught:
            await runs.Wait(wait_request(assistant_id="steps", input={}, **fields))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = details(caught.value)["violations"]
        assert 0 < len(violations) <= 10 and all(len(f) <= 100 and len(d) <= 200 for f, d in violations.items())
        assert more in caught.value.details()


async def test_undecodable_request_is_invalid_argument_with_decode_guard(server):
    """grpc answers bytes that do not decode UNKNOWN before any servicer runs; DecodeGuard makes
    that INVALID_ARGUMENT, for unary and streaming methods."""
    from graphrun.v1 import assistant_service_pb2_grpc, run_service_pb2_grpc
    from graphrun_server.interceptors import DecodeGuard
    from graphrun_server.servicers.assistants import AssistantServicer
    from graphrun_server.servicers.runs import RunServicer

    guarded = grpc.aio.server(interceptors=[DecodeGuard()])
    run_service_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(server.runner), guarded)
    assistant_service_pb2_grpc.add_AssistantServiceServicer_to_server(AssistantServicer(server.runner.assistants),
                                                                      guarded)
    port = guarded.add_insecure_port("127.0.0.1:0")
    await guarded.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _expect_undecodable_refused(channel)
            get = channel.unary_unary("/graphrun.v1.AssistantService/Get")
            assert await get(b"\x0a\x05steps")  # decodable requests pass through
    finally:
        await guarded.stop(None)


async def _expect_undecodable_refused(channel) -> None:
    for method, streaming in [("/graphrun.v1.AssistantService/Get", False), ("/graphrun.v1.RunService/Join", True)]:
        for raw in (b"\xff\xff\xff", b"\x0a\x02\xc3\x28"):  # corrupt; field 1 a string that is not UTF-8
            call = (channel.unary_stream if streaming else channel.unary_unary)(method)
            with pytest.raises(ABORT) as caught:
                if streaming:
                    await call(raw).read()
                else:
                    await call(raw)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
            info = details(caught.value)
            assert info["reason"] == "INVALID_ARGUMENT" and "" in info["violations"]


async def test_undecodable_request_is_invalid_argument(channel):
    await _expect_undecodable_refused(channel)


async def test_listing_the_runs_of_a_thread_that_does_not_exist_is_not_found(runs, threads):
    with pytest.raises(ABORT) as caught:
        await runs.List(run_service_pb2.RunServiceListRequest(thread_id=str(uuid.uuid4())))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(caught.value)["reason"] == "THREAD_NOT_FOUND"
    empty = (await threads.Create(thread_service_pb2.ThreadServiceCreateRequest())).thread
    listed = await runs.List(run_service_pb2.RunServiceListRequest(thread_id=empty.thread_id))
    assert list(listed.runs) == [] and not listed.next_page_token  # a thread with no runs yet: OK, empty


async def test_enum_values_out_of_range_name_the_values_allowed(runs):
    """Every enum field refused names what it accepts, as spec's do (for grpcurl users typing numbers)."""
    some_run = str(uuid.uuid4())
    calls = [
        (runs.List(run_service_pb2.RunServiceListRequest(statuses=[0])), "statuses[0]", "RUN_STATUS_SUCCESS"),
        (runs.Cancel(run_service_pb2.RunServiceCancelRequest(run_id=some_run, action=9)), "action",
         "CANCEL_ACTION_ROLLBACK"),
        (runs.Join(run_service_pb2.RunServiceJoinRequest(run_id=some_run, granularity=9)).read(), "granularity",
         "GRANULARITY_LOW"),
    ]
    for call, field, allowed in calls:
        with pytest.raises(ABORT) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "expected one of" in details(caught.value)["violations"][field]
        assert allowed in details(caught.value)["violations"][field]
