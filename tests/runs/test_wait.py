"""RunService.Wait: the seed's contract, run records, deadlines and failures."""

import asyncio
import uuid

import grpc
import pytest

from graphrun.v1 import run_pb2, run_service_pb2
from support.helpers import TIMEOUT, details, messages, question, to_dict, wait_request


async def test_seed_question_returns_the_whole_conversation_with_the_tool_call(runs, db):
    call = runs.Wait(wait_request(assistant_id="agent", input=question()), timeout=TIMEOUT)
    response = await call
    metadata = dict(await call.initial_metadata())

    assert response.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert metadata["graphrun-run-id"] == response.run.run_id
    assert metadata["graphrun-thread-id"] == response.run.thread_id
    convo = messages(response.state)
    assert [m["role"] for m in convo] == ["user", "ai", "tool", "ai"]
    assert convo[0]["content"] == "Wann wurde die Heizungsanlage gewartet?"
    assert convo[1]["tool_calls"][0]["name"] == "search_archives"
    assert convo[2]["name"] == "search_archives" and "Heizungsanlage" in convo[2]["content"]
    assert convo[2]["tool_call_id"] == convo[1]["tool_calls"][0]["id"]
    assert "15. Januar 2025" in convo[3]["content"]

    state = to_dict(response.state)
    assert state["next"] == [] and state.get("interrupts", []) == [] and state.get("tasks", []) == []
    assert state["checkpoint"]["thread_id"] == response.run.thread_id
    assert state["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint"]["checkpoint_id"]
    assert state["metadata"]["run_id"] == response.run.run_id
    assert state["created_at"]

    run = db.execute("SELECT * FROM graphrun_run WHERE run_id = %s", (response.run.run_id,)).fetchone()
    assert (run["status"], run["attempt"], run["assistant_id"]) == ("success", 1, "agent")
    thread = db.execute("SELECT * FROM graphrun_thread WHERE thread_id = %s", (response.run.thread_id,)).fetchone()
    assert thread["status"] == "idle"


async def test_wait_continues_an_existing_thread(runs):
    first = await runs.Wait(wait_request(assistant_id="steps", input={"log": ["start"]}), timeout=TIMEOUT)
    second = await runs.Wait(wait_request(assistant_id="steps", thread_id=first.run.thread_id,
                                          input={"log": ["again"]}), timeout=TIMEOUT)
    assert to_dict(second.state.values)["log"] == ["start", "first", "second", "third",
                                                   "again", "first", "second", "third"]


async def test_if_not_exists_create_makes_the_named_thread(runs, threads):
    from graphrun.v1 import thread_service_pb2

    thread_id = str(uuid.uuid4())
    response = await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={},
                                            if_not_exists="IF_NOT_EXISTS_CREATE"), timeout=TIMEOUT)
    assert response.run.thread_id == thread_id
    thread = await threads.Get(thread_service_pb2.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert thread.thread.assistant_id == "steps"


async def test_spec_timeout_stops_the_run_and_keeps_completed_steps(runs, threads, db):
    from graphrun.v1 import thread_service_pb2

    call = runs.Wait(wait_request(assistant_id="steps", input={"hang_at": "second"}, timeout="0.5s",
                                  durability="DURABILITY_SYNC"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # Not a gRPC deadline, which would stop the run too and hide a broken spec.timeout.
        await asyncio.wait_for(call, TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    info = details(caught.value)
    assert info["reason"] == "RUN_TIMEOUT" and info["domain"] == "graphrun"
    run_id = dict(await call.initial_metadata())["graphrun-run-id"]
    assert info["metadata"]["run_id"] == run_id

    run = db.execute("SELECT status, error, thread_id FROM graphrun_run WHERE run_id = %s", (run_id,)).fetchone()
    assert run["status"] == "timeout" and run["error"]["reason"] == "RUN_TIMEOUT"
    state = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=str(run["thread_id"])),
                                   timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["first"]
    assert list(state.state.next) == ["second"]
    thread = db.execute("SELECT status FROM graphrun_thread WHERE thread_id = %s", (run["thread_id"],)).fetchone()
    assert thread["status"] == "idle"


async def test_call_deadline_stops_the_run_as_timeout(runs, db):
    call = runs.Wait(wait_request(assistant_id="steps", input={"hang_at": "third"}), timeout=2.0)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server answered before the client's own deadline: the run is recorded.
    assert details(caught.value)["reason"] == "RUN_TIMEOUT"
    run_id = dict(await call.initial_metadata())["graphrun-run-id"]
    assert db.execute("SELECT status FROM graphrun_run WHERE run_id = %s", (run_id,)).fetchone()["status"] == "timeout"


async def test_graph_error_fails_the_call_and_leaves_the_thread_usable(runs, db):
    call = runs.Wait(wait_request(assistant_id="steps", input={"fail_at": "second"}), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.ABORTED
    info = details(caught.value)
    assert info["reason"] == "RUN_FAILED"
    assert info["metadata"]["error_type"] == "ValueError"
    assert "second failed on purpose" in caught.value.details()
    run_id, thread_id = info["metadata"]["run_id"], info["metadata"]["thread_id"]
    row = db.execute("SELECT status, error FROM graphrun_run WHERE run_id = %s", (run_id,)).fetchone()
    assert row["status"] == "error" and row["error"]["type"] == "ValueError"
    assert db.execute("SELECT status FROM graphrun_thread WHERE thread_id = %s",
                      (thread_id,)).fetchone()["status"] == "error"

    again = await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={"fail_at": ""}),
                            timeout=TIMEOUT)
    assert again.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(again.state.values)["log"] == ["first", "first", "second", "third"]
    assert db.execute("SELECT status FROM graphrun_thread WHERE thread_id = %s",
                      (thread_id,)).fetchone()["status"] == "idle"


@pytest.mark.parametrize("durability", ["DURABILITY_SYNC", "DURABILITY_ASYNC", "DURABILITY_EXIT"])
async def test_a_subgraph_on_a_new_thread_stores_its_checkpoints(runs, db, durability):
    """The subgraph is the first node. A run on a thread it creates is accepted with its first
    checkpoint write, so the subgraph may start while that is on its way (with async durability
    LangGraph does not wait for it): the subgraph's own writes wait for it, and are not refused."""
    for _ in range(3):
        answer = await runs.Wait(wait_request(assistant_id="nested", input={"log": []}, durability=durability),
                                 timeout=TIMEOUT)
        assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
        assert to_dict(answer.state.values)["log"] == ["inner:one", "inner:two", "outer"]
        namespaces = db.execute("SELECT checkpoint_ns FROM checkpoints WHERE thread_id = %s",
                                (answer.run.thread_id,)).fetchall()
        assert any(row["checkpoint_ns"] == "" for row in namespaces)
        if durability != "DURABILITY_EXIT":  # which writes only the run's last checkpoint
            assert any(row["checkpoint_ns"].startswith("inner:") for row in namespaces)


async def test_tool_error_fails_the_run(runs, db):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(assistant_id="tool_error", input=question()), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    info = details(caught.value)
    assert info["reason"] == "RUN_FAILED" and info["metadata"]["error_type"] == "ConnectionError"
    row = db.execute("SELECT status FROM graphrun_run WHERE run_id = %s", (info["metadata"]["run_id"],)).fetchone()
    assert row["status"] == "error"


@pytest.mark.parametrize("granularity, keys, has_checkpoint", [
    ("GRANULARITY_LOW", {"messages"}, False),
    ("GRANULARITY_PARTIAL", {"messages"}, True),
    ("GRANULARITY_FULL", {"messages", "proposal"}, True),
])
async def test_granularity_trims_the_returned_state(runs, granularity, keys, has_checkpoint):
    response = await runs.Wait(wait_request(assistant_id="approval", input=question("ship it"),
                                            granularity=granularity), timeout=TIMEOUT)
    state = to_dict(response.state)
    assert set(state["values"]) == keys
    assert ("checkpoint" in state) == has_checkpoint
    assert ("metadata" in state) == has_checkpoint
    assert len(state["interrupts"]) == 1  # never trimmed: a pending question must not be missed
    assert state["next"] == ["review"]
    assert len(state["tasks"]) == (1 if granularity == "GRANULARITY_FULL" else 0)


@pytest.mark.parametrize("durability", ["DURABILITY_SYNC", "DURABILITY_ASYNC", "DURABILITY_EXIT"])
async def test_wait_returns_what_get_state_reads_whatever_the_durability(runs, threads, durability):
    from graphrun.v1 import thread_service_pb2

    done = await runs.Wait(wait_request(assistant_id="approval", input=question("paint"), durability=durability),
                           timeout=TIMEOUT)
    stored = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=done.run.thread_id),
                                    timeout=TIMEOUT)
    assert to_dict(done.state) == to_dict(stored.state)
    assert done.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    joined = [r.event async for r in runs.Join(run_service_pb2.RunServiceJoinRequest(run_id=done.run.run_id),
                                               timeout=TIMEOUT)]
    assert to_dict(joined[-1].end.state) == to_dict(stored.state)  # read back from the database


@pytest.mark.parametrize("assistant_id, spec_fields", [
    ("agent", {"input": question(), "metadata": {"team": "ops", "n": 3}}),
    ("steps", {"input": {"log": ["start"]}, "durability": "DURABILITY_ASYNC"}),
    ("steps", {"input": {"log": []}, "durability": "DURABILITY_EXIT", "config": {"tags": ["t"]}}),
])
async def test_the_state_wait_answers_with_is_the_state_the_thread_reads_back(runs, threads, assistant_id,
                                                                               spec_fields):
    """Wait builds a completed run's state from what the run stored; GetState reads it from the database."""
    from graphrun.v1 import thread_service_pb2

    response = await runs.Wait(wait_request(assistant_id=assistant_id, **spec_fields), timeout=TIMEOUT)
    assert response.run.status == run_pb2.RUN_STATUS_SUCCESS
    stored = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=response.run.thread_id),
                                    timeout=TIMEOUT)
    assert to_dict(response.state) == to_dict(stored.state)
    continued = await runs.Wait(wait_request(assistant_id=assistant_id, thread_id=response.run.thread_id,
                                             **spec_fields), timeout=TIMEOUT)
    stored = await threads.GetState(thread_service_pb2.ThreadServiceGetStateRequest(thread_id=response.run.thread_id),
                                    timeout=TIMEOUT)
    assert to_dict(continued.state) == to_dict(stored.state)


async def test_a_context_field_named_like_a_checkpoint_does_not_move_the_run(runs):
    """A graph without a context schema takes any context, and its values show in `configurable`
    as in LangGraph Server; not those named like the keys that say which thread and checkpoint
    the run reads (a `checkpoint_id` there had the run start from a checkpoint that does not exist:
    an empty state)."""
    first = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    again = await runs.Wait(wait_request(assistant_id="steps", thread_id=first.run.thread_id, input={},
                                         context={"checkpoint_id": str(uuid.uuid4()), "checkpoint_ns": "elsewhere"}),
                            timeout=TIMEOUT)
    assert to_dict(again.state.values)["log"] == ["first", "second", "third"] * 2
