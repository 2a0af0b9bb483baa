"""The Python client (graphrun.AsyncClient / graphrun.Client) against a real server.

The server fixture runs on the session's event loop, so it only answers while
that loop runs: the blocking `Client` is always driven from a worker thread
(`asyncio.to_thread`) inside async tests, never from a plain `def` test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from graphrun import (AsyncClient, Client, CronNotFoundError, Event, GraphrunError, InvalidArgumentError, NotFoundError,
                      RunCancelledError, RunFailedError, RunResult, RunStillRunningError, RunTimeoutError,
                      ThreadInterruptedError, ThreadNotFoundError, UnavailableError, status_name)
from graphrun import _convert
from graphrun.v1 import (assistant_service_pb2, event_pb2, run_service_pb2, run_service_pb2_grpc, thread_pb2,
                         thread_service_pb2, thread_service_pb2_grpc)
from graphrun.v1 import cron_service_pb2, store_service_pb2
from support.helpers import open_gate

QUESTION = "Wann wurde die Heizungsanlage gewartet?"
T = TypeVar("T")


def ask(question: str = QUESTION) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": question}]}


@pytest.fixture(scope="session")
def target(server) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture(scope="session")
async def client(target):
    async with AsyncClient(target) as c:
        yield c


@pytest.fixture
def sync_client(target):
    with Client(target) as c:
        yield c


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call off the event loop, which must keep serving."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def check_agent_result(result: RunResult) -> None:
    assert isinstance(result, RunResult)
    assert result.status == "success"
    assert uuid.UUID(result.run_id) and uuid.UUID(result.thread_id)
    user, call, tool, answer = result.messages  # exactly four
    assert (user["role"], user["content"]) == ("user", QUESTION)
    assert call["role"] == "ai"
    assert [tc["name"] for tc in call["tool_calls"]] == ["search_archives"]
    assert call["tool_calls"][0]["args"] == {"query": QUESTION}
    assert tool["role"] == "tool" and tool["name"] == "search_archives"
    assert tool["tool_call_id"] == call["tool_calls"][0]["id"]
    assert answer["role"] == "ai" and "15. Januar 2025" in answer["content"]
    assert result.next == [] and result.interrupts == []
    assert result.state["metadata"]["step"] == 3  # Struct numbers come back as ints


def check_agent_stream(events: list[Event]) -> None:
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "metadata" and events[-1].kind == "end"
    assert all(e.kind != "metadata" and e.kind != "end" for e in events[1:-1])
    run_id = events[0].data["run_id"]
    deltas = [e for e in events if e.kind == "message" and e.data["delta"]]
    assert len(deltas) > 3
    assert all(isinstance(e.data["step"], int) and e.namespace == () for e in deltas)
    answer_id = deltas[-1].data["message_id"]
    text = "".join(e.data["message"]["content"] for e in deltas if e.data["message_id"] == answer_id)
    assert "15. Januar 2025" in text
    complete = [e.data["message"] for e in events if e.kind == "message" and not e.data["delta"]]
    assert [m["role"] for m in complete] == ["ai", "tool", "ai"]
    assert complete[0]["tool_calls"][0]["name"] == "search_archives"
    assert complete[-1]["content"] == text
    tasks = [(e.data["name"], e.data["phase"]) for e in events if e.kind == "task"]
    assert tasks[0] == ("agent", "started") and tasks[-1] == ("agent", "finished")
    result = events[-1].result
    assert result is not None and result.status == "success" and result.run_id == run_id
    assert "15. Januar 2025" in result.messages[-1]["content"]


# -- runs -------------------------------------------------------------------------------


async def test_async_wait_runs_the_agent(client: AsyncClient) -> None:
    check_agent_result(await client.wait("agent", ask()))


async def test_sync_wait_runs_the_agent(sync_client: Client) -> None:
    check_agent_result(await in_thread(sync_client.wait, "agent", ask(), granularity="full", deadline=60))


async def test_async_stream_yields_metadata_deltas_and_end(client: AsyncClient) -> None:
    events = [e async for e in client.stream("agent", ask(), stream_mode=["messages", "tasks"])]
    check_agent_stream(events)


async def test_sync_stream_yields_metadata_deltas_and_end(sync_client: Client) -> None:
    events = await in_thread(lambda: list(sync_client.stream("agent", ask(), stream_mode=("messages", "tasks"))))
    check_agent_stream(events)


async def test_stream_defaults_to_values(client: AsyncClient) -> None:
    events = [e async for e in client.stream("steps", {})]
    kinds = [e.kind for e in events]
    assert kinds[0] == "metadata" and kinds[-1] == "end" and set(kinds[1:-1]) == {"values"}
    assert events[-2].data["values"]["log"] == ["first", "second", "third"]


async def test_custom_and_updates_modes(client: AsyncClient) -> None:
    events = [e async for e in client.stream("steps", {}, stream_mode="custom")]
    assert [e.data for e in events if e.kind == "custom"] == [{"data": {"progress": "halfway"}}]
    events = [e async for e in client.stream("steps", {}, stream_mode=["updates"])]
    assert [e.data["node"] for e in events if e.kind == "updates"] == ["first", "second", "third"]


async def test_granularity_low_returns_only_the_conversation(client: AsyncClient) -> None:
    result = await client.wait("agent", ask(), granularity="low")
    assert len(result.messages) == 4
    assert "checkpoint" not in result.state and "metadata" not in result.state


async def test_interrupt_and_resume(client: AsyncClient) -> None:
    paused = await client.wait("approval", ask("ship it"))
    assert paused.status == "interrupted"
    assert paused.next == ["review"]
    [interrupt] = paused.interrupts
    assert interrupt["value"] == {"question": "approve?", "proposal": "proposal for: ship it"}

    done = await client.wait("approval", thread_id=paused.thread_id, command={"resume": "yes"})
    assert done.status == "success" and done.thread_id == paused.thread_id
    assert done.values["decision"] == "yes"
    assert done.messages[-1]["content"] == "decision: yes"


async def test_interrupt_before_pauses_at_node(client: AsyncClient) -> None:
    result = await client.wait("steps", {}, interrupt_before=["second"], durability="sync",
                               metadata={"purpose": "test"}, config={"recursion_limit": 10})
    assert result.status == "interrupted" and result.next == ["second"] and result.interrupts == []
    assert result.values["log"] == ["first"]
    assert result.run["metadata"] == {"purpose": "test"}
    resumed = await client.wait("steps", thread_id=result.thread_id, multitask_strategy="reject")
    assert resumed.values["log"] == ["first", "second", "third"]


# -- background runs: create, join, get, list, cancel ----------------------------------------

DURABLE_MODES = ["updates", "tasks"]


def gated(tag: str) -> dict[str, Any]:
    """Input for the "durable" graph whose node n2 waits until the test opens gate `<run_id>-<attempt>`."""
    return {"tag": tag, "gates": {"n2": "{run_id}-{attempt}"}}


def n2_started(event: Event) -> bool:
    return event.kind == "task" and event.data["name"] == "n2" and event.data["phase"] == "started"


def check_cancelled_join(run_id: str, seen: list[Event], rest: list[Event], error: GraphrunError) -> None:
    """Events before the cancel, then the rest (ending in `end`), then RunCancelledError."""
    events = seen + rest
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "metadata" and events[0].data["run_id"] == run_id
    assert n2_started(seen[-1])
    assert rest and rest[-1].kind == "end"
    result = rest[-1].result
    assert result is not None and result.status == "cancelled" and result.run_id == run_id
    assert result.values["log"] == ["c:n1"]  # n1's checkpoint is kept (cancel action interrupt)
    assert isinstance(error, RunCancelledError)
    assert error.code == grpc.StatusCode.CANCELLED and error.reason == "RUN_CANCELLED"
    assert error.run_id == run_id


async def test_async_create_join_cancel(client: AsyncClient) -> None:
    run = await client.create_run("durable", gated("c"), stream_mode=DURABLE_MODES)
    run_id = run["run_id"]
    assert uuid.UUID(run_id) and uuid.UUID(run["thread_id"])
    assert run["assistant_id"] == "durable" and status_name(run) in ("pending", "running")

    events = client.join(run_id)
    seen: list[Event] = []
    while not seen or not n2_started(seen[-1]):
        seen.append(await anext(events))
    assert (await client.get_run(run_id))["status"] == "running"

    cancelled = await client.cancel_run(run_id, wait=True)
    assert cancelled["status"] == "cancelled" and status_name(cancelled) == "cancelled"
    assert cancelled["error"]["reason"] == "RUN_CANCELLED" and cancelled["ended_at"]

    rest: list[Event] = []
    with pytest.raises(RunCancelledError) as info:
        async for event in events:
            rest.append(event)
    check_cancelled_join(run_id, seen, rest, info.value)

    # Joining again after the last event seen replays exactly the rest; cancelling again changes nothing.
    again: list[Event] = []
    with pytest.raises(RunCancelledError):
        async for event in client.join(run_id, after_sequence=seen[-1].sequence):
            again.append(event)
    assert [(e.sequence, e.kind) for e in again] == [(e.sequence, e.kind) for e in rest]
    assert (await client.cancel_run(run_id, action="rollback"))["ended_at"] == cancelled["ended_at"]


async def test_sync_create_join_cancel(sync_client: Client) -> None:
    def flow() -> tuple[str, list[Event], dict[str, Any], list[Event], GraphrunError]:
        run_id = sync_client.create_run("durable", gated("c"), stream_mode=DURABLE_MODES)["run_id"]
        events = sync_client.join(run_id)
        seen: list[Event] = []
        for event in events:
            seen.append(event)
            if n2_started(event):
                break
        cancelled = sync_client.cancel_run(run_id, "interrupt", wait=True)
        rest: list[Event] = []
        try:
            for event in events:
                rest.append(event)
        except GraphrunError as exc:
            return run_id, seen, cancelled, rest, exc
        raise AssertionError("the join did not fail")

    run_id, seen, cancelled, rest, error = await in_thread(flow)
    assert status_name(cancelled) == "cancelled"
    check_cancelled_join(run_id, seen, rest, error)


async def test_background_run_succeeds_and_is_listed(client: AsyncClient, sync_client: Client,
                                                     database_url: str) -> None:
    first = await client.create_run("durable", gated("s"), stream_mode=DURABLE_MODES, metadata={"n": 1})
    run_id, thread_id = first["run_id"], first["thread_id"]
    await in_thread(open_gate, database_url, f"{run_id}-1")
    events = [e async for e in client.join(run_id)]
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "metadata" and events[-1].kind == "end"
    assert [e.data["node"] for e in events if e.kind == "updates"] == ["n1", "n2", "n3", "n4"]
    result = events[-1].result
    assert result is not None and result.status == "success" and result.run_id == run_id
    assert result.values["log"] == ["s:n1", "s:n2", "s:n3", "s:n4"]

    got = await client.get_run(run_id)
    assert (got["run_id"], got["thread_id"], got["status"]) == (run_id, thread_id, "success")
    assert got["metadata"] == {"n": 1} and got["attempt"] == 1 and "error" not in got
    assert got["started_at"] and got["ended_at"]
    assert await in_thread(sync_client.get_run, run_id) == got

    # A second run on the same thread, created with the sync client and followed to its end.
    def second_run() -> tuple[dict[str, Any], list[Event]]:
        run = sync_client.create_run("durable", {"tag": "t", "gates": {}}, stream_mode="updates", thread_id=thread_id)
        return run, list(sync_client.join(run["run_id"], granularity="low"))

    second, second_events = await in_thread(second_run)
    assert second["thread_id"] == thread_id and second_events[-1].result.status == "success"
    assert [e.sequence for e in second_events] == list(range(1, len(second_events) + 1))
    assert "checkpoint" not in second_events[-1].result.state  # granularity low

    newest_first = [second["run_id"], run_id]
    runs, token = await client.list_runs(thread_id=thread_id)
    assert [r["run_id"] for r in runs] == newest_first and token is None
    assert runs[1] == await client.get_run(run_id)

    page, token = await client.list_runs(thread_id, page_size=1)
    assert [r["run_id"] for r in page] == newest_first[:1] and token
    page, token = await client.list_runs(thread_id, page_size=1, page_token=token)
    assert [r["run_id"] for r in page] == newest_first[1:] and token is None
    assert [r["run_id"] async for r in client.iter_runs(thread_id, page_size=1)] == newest_first
    assert [r["run_id"] for r in await in_thread(lambda: list(sync_client.iter_runs(thread_id, page_size=1)))] \
        == newest_first

    assert [r["run_id"] for r in (await client.list_runs(thread_id, statuses=["success", "error"]))[0]] == newest_first
    assert (await client.list_runs(thread_id, statuses="running"))[0] == []
    sync_runs, _ = await in_thread(sync_client.list_runs, thread_id, ["RUN_STATUS_SUCCESS"])
    assert [r["run_id"] for r in sync_runs] == newest_first


async def test_cancel_a_delayed_run(client: AsyncClient, sync_client: Client) -> None:
    run = await client.create_run("steps", {}, start_delay=3600)
    run_id, thread_id = run["run_id"], run["thread_id"]
    assert run["status"] == "pending" and "started_at" not in run
    pending, _ = await client.list_runs(thread_id, statuses=["pending"])
    assert [r["run_id"] for r in pending] == [run_id]

    cancelled = await client.cancel_run(run_id)
    assert cancelled["run_id"] == run_id and status_name(cancelled) == "cancelled"
    assert status_name(await client.get_run(run_id)) == "cancelled"
    assert (await client.list_runs(thread_id, statuses=["pending"]))[0] == []

    # Joining a run cancelled before it started: its end event, then the cancellation.
    events: list[Event] = []
    with pytest.raises(RunCancelledError):
        async for event in client.join(run_id):
            events.append(event)
    assert events[-1].kind == "end" and events[-1].result.status == "cancelled"

    delayed = await in_thread(sync_client.create_run, "steps", {}, start_delay=3600)
    cancelled = await in_thread(sync_client.cancel_run, delayed["run_id"], "rollback", True)
    assert status_name(cancelled) == "cancelled"


async def test_run_lookups_validate_the_run_id(client: AsyncClient, sync_client: Client) -> None:
    for call in (client.get_run("not-a-uuid"), client.cancel_run("not-a-uuid"), anext(client.join("not-a-uuid"))):
        with pytest.raises(InvalidArgumentError) as info:
            await call
        assert [field for field, _ in info.value.field_violations] == ["run_id"]
    with pytest.raises(InvalidArgumentError) as info:
        await in_thread(sync_client.get_run, "not-a-uuid")
    assert [field for field, _ in info.value.field_violations] == ["run_id"]
    with pytest.raises(InvalidArgumentError) as info:
        await client.list_runs(thread_id="nope")
    assert [field for field, _ in info.value.field_violations] == ["thread_id"]
    with pytest.raises(ValueError, match="statuses must be one of pending, running"):
        await client.list_runs(statuses=["bogus"])
    with pytest.raises(ValueError, match="action must be one of interrupt, rollback"):
        await client.cancel_run(str(uuid.uuid4()), action="delete")


async def test_unknown_run_is_not_found(client: AsyncClient, sync_client: Client) -> None:
    missing = str(uuid.uuid4())
    for call in (client.get_run(missing), client.cancel_run(missing), anext(client.join(missing))):
        with pytest.raises(NotFoundError) as info:
            await call
        assert info.value.reason == "RUN_NOT_FOUND" and info.value.run_id == missing
        assert str(info.value) == f"NOT_FOUND RUN_NOT_FOUND: run {missing} not found"
    with pytest.raises(NotFoundError) as info:
        await in_thread(lambda: list(sync_client.join(missing)))
    assert info.value.reason == "RUN_NOT_FOUND"
    with pytest.raises(NotFoundError) as info:
        await in_thread(sync_client.cancel_run, missing)
    assert info.value.reason == "RUN_NOT_FOUND"


class _DrainingRuns(run_service_pb2_grpc.RunServiceServicer):
    """A RunService whose Join sends one event, then ends as a draining replica does."""

    async def Join(self, request, context):
        yield run_service_pb2.RunServiceJoinResponse(event=event_pb2.RunEvent(
            sequence=request.after_sequence + 1,
            metadata=event_pb2.RunMetadataEvent(run_id=request.run_id, thread_id="t", attempt=1)))
        info = error_details_pb2.ErrorInfo(reason="SERVER_DRAINING", domain="graphrun", metadata={
            "run_id": request.run_id, "last_sequence": str(request.after_sequence + 1)})
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="this server is shutting down",
                                   details=[detail])
        await context.abort(grpc.StatusCode.UNAVAILABLE, status.message,
                            trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))


async def test_join_cut_short_by_a_draining_server_says_where_to_resume() -> None:
    fake = grpc.aio.server()
    run_service_pb2_grpc.add_RunServiceServicer_to_server(_DrainingRuns(), fake)
    port = fake.add_insecure_port("127.0.0.1:0")
    await fake.start()
    run_id = str(uuid.uuid4())
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            events: list[Event] = []
            with pytest.raises(UnavailableError) as info:
                async for event in client.join(run_id, after_sequence=4):
                    events.append(event)
        assert [e.sequence for e in events] == [5]
        assert info.value.reason == "SERVER_DRAINING" and info.value.last_sequence == 5
        assert info.value.run_id == run_id and info.value.thread_id == "t"

        def sync_join() -> GraphrunError:
            with Client(f"127.0.0.1:{port}") as sync_client:
                try:
                    list(sync_client.join(run_id))
                except GraphrunError as exc:
                    return exc
            raise AssertionError("the join did not fail")

        error = await in_thread(sync_join)
        assert isinstance(error, UnavailableError) and error.last_sequence == 1
    finally:
        await fake.stop(None)
    assert GraphrunError(grpc.StatusCode.NOT_FOUND, "x").last_sequence is None



# -- retries and keepalive ----------------------------------------------------------------


class _FlakyThreads(thread_service_pb2_grpc.ThreadServiceServicer):
    """ThreadService.Get fails UNAVAILABLE on every other attempt, as a restarting replica would."""

    def __init__(self) -> None:
        self.attempts = 0

    async def Get(self, request, context):
        self.attempts += 1
        if self.attempts % 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return thread_service_pb2.ThreadServiceGetResponse(thread=thread_pb2.Thread(thread_id=request.thread_id))


class _FlakyRuns(run_service_pb2_grpc.RunServiceServicer):
    """RunService.Wait fails UNAVAILABLE once, then succeeds; keeps each attempt's request id."""

    def __init__(self) -> None:
        self.attempts = 0
        self.request_ids: list[str] = []

    async def Wait(self, request, context):
        self.attempts += 1
        self.request_ids.append(request.spec.request_id)
        if self.attempts == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return run_service_pb2.RunServiceWaitResponse()


async def test_reads_are_retried_and_runs_are_retried_with_one_request_id() -> None:
    """A run is sent again only with the request id of its first try: the server answers that
    with the run the first try started (tests/runs/test_idempotent.py), never a second run."""
    threads, runs = _FlakyThreads(), _FlakyRuns()
    fake = grpc.aio.server()
    thread_service_pb2_grpc.add_ThreadServiceServicer_to_server(threads, fake)
    run_service_pb2_grpc.add_RunServiceServicer_to_server(runs, fake)
    port = fake.add_insecure_port("127.0.0.1:0")
    await fake.start()
    thread_id = str(uuid.uuid4())
    try:
        async with AsyncClient(f"127.0.0.1:{port}") as client:
            assert (await client.get_thread(thread_id))["thread_id"] == thread_id
            assert threads.attempts == 2  # failed once, retried by gRPC, answered
            await client.wait("agent", ask())
            assert runs.attempts == 2 and runs.request_ids[0] and len(set(runs.request_ids)) == 1

        runs.attempts, runs.request_ids = 0, []
        with Client(f"127.0.0.1:{port}") as sync_client:
            assert (await in_thread(sync_client.get_thread, thread_id))["thread_id"] == thread_id
            assert threads.attempts == 4
            await in_thread(sync_client.wait, "agent", ask(), request_id="mine-1")
            assert runs.attempts == 2 and runs.request_ids == ["mine-1", "mine-1"]
    finally:
        await fake.stop(None)


def test_retry_policy_names_real_read_only_methods() -> None:
    methods = {(service.full_name, method.name)
               for module in (run_service_pb2, thread_service_pb2, assistant_service_pb2, store_service_pb2,
                              cron_service_pb2, health_pb2)
               for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}
    retried = set(_convert.IDEMPOTENT_METHODS)
    assert retried <= methods  # a typo would silently disable the retry
    never = {("graphrun.v1.RunService", m) for m in ("Wait", "Stream", "Create", "Cancel")} | {
        ("graphrun.v1.ThreadService", m) for m in ("Create", "Delete", "UpdateState")} | {
        ("graphrun.v1.StoreService", m) for m in ("PutItem", "DeleteItem")} | {
        ("graphrun.v1.CronService", m) for m in ("Create", "Update", "Delete")}
    assert not retried & never
    options = dict(_convert.channel_options())
    assert options["grpc.enable_retries"] == 1
    # No keepalive faster than a default gRPC server accepts (5 min), no pings on idle connections.
    assert options["grpc.keepalive_time_ms"] > 300_000 and options["grpc.keepalive_permit_without_calls"] == 0
    assert dict(_convert.channel_options([("grpc.keepalive_time_ms", 60_000)]))["grpc.keepalive_time_ms"] == 60_000


# -- crons --------------------------------------------------------------------------------


async def test_async_cron_lifecycle(client: AsyncClient) -> None:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3 * 366)
    cron = await client.create_cron("0 0 1 1 *", "steps", {"log": ["yearly"]}, timezone="Europe/Berlin",
                                    end_time=end, cron_metadata={"team": "ops"}, metadata={"run": "m"},
                                    multitask_strategy="enqueue", stream_mode="updates")
    cron_id = cron["cron_id"]
    assert cron["schedule"] == "0 0 1 1 *" and cron["timezone"] == "Europe/Berlin"
    assert cron["metadata"] == {"team": "ops"} and cron["spec"]["metadata"] == {"run": "m"}
    assert cron["spec"]["multitask_strategy"] == "enqueue" and cron["spec"]["input"] == {"log": ["yearly"]}
    assert cron["stream_mode"] == ["updates"] and cron["paused"] is False
    assert dt.datetime.fromisoformat(cron["end_time"]) == end and cron["next_run_time"]
    assert await client.get_cron(cron_id) == cron

    paused = await client.update_cron(cron_id, paused=True, no_end_time=True)
    assert paused["paused"] is True and "next_run_time" not in paused and "end_time" not in paused
    assert paused["spec"] == cron["spec"] and paused["metadata"] == cron["metadata"]
    replaced = await client.update_cron(cron_id, assistant_id="agent", input={"messages": []}, paused=False)
    assert replaced["spec"]["assistant_id"] == "agent" and replaced["stream_mode"] == ["values"]
    assert replaced["next_run_time"]
    with pytest.raises(TypeError, match="assistant_id"):
        await client.update_cron(cron_id, input={"x": 1})

    listed, token = await client.list_crons(assistant_id="agent", page_size=1000)
    assert cron_id in {c["cron_id"] for c in listed} and token is None
    assert await client.list_runs(cron_id=cron_id) == ([], None)
    with pytest.raises(InvalidArgumentError) as bad:
        await client.create_cron("not a schedule", "steps", {})
    assert "cron.schedule" in dict(bad.value.field_violations)
    await client.delete_cron(cron_id)
    with pytest.raises(CronNotFoundError) as gone:
        await client.get_cron(cron_id)
    assert gone.value.reason == "CRON_NOT_FOUND" and isinstance(gone.value, NotFoundError)


async def test_sync_cron_lifecycle(sync_client: Client) -> None:
    cron = await in_thread(sync_client.create_cron, "@yearly", "tool_error", {"messages": []})
    assert cron["spec"]["assistant_id"] == "tool_error" and cron["timezone"] == "UTC" and not cron["spec"]["thread_id"]
    listed, _ = await in_thread(sync_client.list_crons, assistant_id="tool_error")
    assert [c["cron_id"] for c in listed] == [cron["cron_id"]]
    changed = await in_thread(sync_client.update_cron, cron["cron_id"], schedule="0 6 * * *")
    assert changed["schedule"] == "0 6 * * *" and changed["next_run_time"] != cron["next_run_time"]
    await in_thread(sync_client.delete_cron, cron["cron_id"])
    assert (await in_thread(sync_client.list_crons, assistant_id="tool_error")) == ([], None)


# -- threads ------------------------------------------------------------------------------


async def test_async_thread_lifecycle(client: AsyncClient) -> None:
    thread = await client.create_thread(metadata={"user": "ada", "n": 1})
    thread_id = thread["thread_id"]
    assert thread["metadata"] == {"user": "ada", "n": 1}
    assert thread["status"] == "idle"
    assert (await client.get_thread(thread_id))["thread_id"] == thread_id

    empty = await client.get_state(thread_id)
    assert empty["values"] == {} and "checkpoint" not in empty

    first = await client.wait("agent", ask(), thread_id=thread_id)
    check_agent_result(first)
    assert first.thread_id == thread_id
    state = await client.get_state(thread_id)
    assert len(state["values"]["messages"]) == 4
    assert (await client.get_thread(thread_id))["assistant_id"] == "agent"

    page, token = await client.get_history(thread_id, page_size=2)
    assert len(page) == 2 and token
    history = [s async for s in client.iter_history(thread_id, page_size=2)]
    assert history[:2] == page
    assert history[0]["checkpoint"] == state["checkpoint"]
    assert [s["metadata"]["step"] for s in history] == sorted((s["metadata"]["step"] for s in history), reverse=True)
    last_page, last_token = await client.get_history(thread_id, page_size=1000)
    assert len(last_page) == len(history) and last_token is None

    older = history[2]["checkpoint"]["checkpoint_id"]
    assert len((await client.get_state(thread_id, older))["values"]["messages"]) == 2

    ref = await client.update_state(thread_id, {"messages": [{"role": "user", "content": "noted"}]}, as_node="agent")
    assert ref["thread_id"] == thread_id and ref["checkpoint_id"]
    state = await client.get_state(thread_id)
    assert state["checkpoint"]["checkpoint_id"] == ref["checkpoint_id"]
    assert state["values"]["messages"][-1]["content"] == "noted"

    await client.delete_thread(thread_id)
    with pytest.raises(NotFoundError):
        await client.get_thread(thread_id)


async def test_sync_thread_lifecycle(sync_client: Client) -> None:
    thread_id = str(uuid.uuid4())
    thread = await in_thread(sync_client.create_thread, thread_id)
    assert thread["thread_id"] == thread_id and thread["metadata"] == {}
    result = await in_thread(sync_client.wait, "steps", {}, thread_id=thread_id)
    assert result.values["log"] == ["first", "second", "third"]
    state = await in_thread(sync_client.get_state, thread_id)
    assert state["values"]["log"] == ["first", "second", "third"]
    history = await in_thread(lambda: list(sync_client.iter_history(thread_id, page_size=2)))
    page, token = await in_thread(sync_client.get_history, thread_id)
    assert page == history and token is None
    ref = await in_thread(sync_client.update_state, thread_id, {"log": ["manual"]})
    assert (await in_thread(sync_client.get_state, thread_id))["checkpoint"] == ref | {"checkpoint_ns": ""}
    assert (await in_thread(sync_client.get_thread, thread_id))["thread_id"] == thread_id
    await in_thread(sync_client.delete_thread, thread_id)
    with pytest.raises(NotFoundError) as info:
        await in_thread(sync_client.get_state, thread_id)
    assert info.value.reason == "THREAD_NOT_FOUND"


async def test_wait_creates_a_missing_thread_on_request(client: AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    result = await client.wait("steps", {}, thread_id=thread_id, if_not_exists="create")
    assert result.thread_id == thread_id
    assert (await client.get_thread(thread_id))["thread_id"] == thread_id


# -- errors -------------------------------------------------------------------------------


async def test_unknown_thread_is_not_found(client: AsyncClient, sync_client: Client) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as info:
        await client.get_thread(missing)
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert info.value.reason == "THREAD_NOT_FOUND"
    assert info.value.metadata == {"thread_id": missing}
    assert info.value.thread_id == missing
    assert str(info.value) == f"NOT_FOUND THREAD_NOT_FOUND: thread {missing} not found"

    with pytest.raises(NotFoundError) as info:
        await client.wait("agent", ask(), thread_id=missing)
    assert info.value.reason == "THREAD_NOT_FOUND"

    with pytest.raises(NotFoundError) as info:
        await in_thread(sync_client.get_thread, missing)
    assert info.value.reason == "THREAD_NOT_FOUND"


async def test_reasons_raise_their_own_classes(client: AsyncClient, sync_client: Client, database_url: str) -> None:
    paused = await client.wait("approval", ask("ship it"))
    with pytest.raises(ThreadInterruptedError) as info:
        await client.wait("approval", ask("something else"), thread_id=paused.thread_id)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION and info.value.thread_id == paused.thread_id
    with pytest.raises(ThreadInterruptedError):
        await in_thread(sync_client.wait, "approval", ask("something else"), thread_id=paused.thread_id)
    with pytest.raises(ThreadNotFoundError):
        await in_thread(sync_client.get_state, str(uuid.uuid4()))

    # The call's deadline passes while the run, told to outlive its caller, goes on.
    with pytest.raises(RunStillRunningError) as still:
        await client.wait("durable", gated("s"), on_disconnect="continue", deadline=1.0)
    assert isinstance(still.value, RunTimeoutError) and still.value.reason == "RUN_STILL_RUNNING"
    run_id = still.value.run_id
    assert run_id and status_name(await client.get_run(run_id)) == "running"
    await in_thread(open_gate, database_url, f"{run_id}-1")
    events = [event async for event in client.join(run_id)]
    assert events[-1].result is not None and events[-1].result.status == "success"


async def test_invalid_thread_id_names_the_field(client: AsyncClient, sync_client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.wait("agent", ask(), thread_id="not-a-uuid")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in info.value.field_violations] == ["spec.thread_id"]
    assert "UUID" in info.value.field_violations[0][1]

    with pytest.raises(InvalidArgumentError) as info:
        await in_thread(lambda: list(sync_client.stream("agent", ask(), thread_id="not-a-uuid")))
    assert [field for field, _ in info.value.field_violations] == ["spec.thread_id"]


async def test_several_violations_at_once(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await client.wait("", ask(), config={"bogus": 1})
    assert {field for field, _ in info.value.field_violations} == {"spec.assistant_id", "spec.config.bogus"}
    assert str(info.value).startswith("INVALID_ARGUMENT: ")  # the code once, not again as the reason


async def test_failed_run_raises_run_failed(client: AsyncClient, sync_client: Client) -> None:
    with pytest.raises(RunFailedError) as info:
        await client.wait("steps", {"fail_at": "second"})
    error = info.value
    assert error.code == grpc.StatusCode.ABORTED and error.reason == "RUN_FAILED"
    assert "second failed on purpose" in error.message
    assert error.metadata["error_type"] == "ValueError"
    assert uuid.UUID(error.run_id) and uuid.UUID(error.thread_id)
    assert error.run_id == error.metadata["run_id"]
    # The thread keeps the completed step and stays usable.
    state = await client.get_state(error.thread_id)
    assert state["values"]["log"] == ["first"]

    with pytest.raises(RunFailedError) as info:
        await in_thread(sync_client.wait, "steps", {"fail_at": "second"})
    assert info.value.run_id and info.value.thread_id


async def test_failed_stream_delivers_events_then_raises(client: AsyncClient, sync_client: Client) -> None:
    events: list[Event] = []
    with pytest.raises(RunFailedError) as info:
        async for event in client.stream("steps", {"fail_at": "second"}, stream_mode="updates"):
            events.append(event)
    assert [e.kind for e in events] == ["metadata", "updates", "end"]
    assert events[-1].result.status == "error"
    assert events[-1].data["run"]["error"] == {"type": "ValueError", "message": "second failed on purpose",
                                                "reason": "RUN_FAILED"}
    assert info.value.run_id == events[0].data["run_id"]
    assert info.value.thread_id == events[0].data["thread_id"]

    def consume() -> tuple[list[Event], GraphrunError]:
        seen: list[Event] = []
        try:
            for event in sync_client.stream("steps", {"fail_at": "third"}):
                seen.append(event)
        except GraphrunError as exc:
            return seen, exc
        raise AssertionError("the stream did not fail")

    seen, exc = await in_thread(consume)
    assert isinstance(exc, RunFailedError)
    assert seen[0].kind == "metadata" and seen[-1].kind == "end"
    assert exc.run_id == seen[0].data["run_id"]


async def test_tool_error_fails_the_run(client: AsyncClient) -> None:
    with pytest.raises(RunFailedError) as info:
        await client.wait("tool_error", ask())
    assert info.value.metadata["error_type"]


async def test_run_timeout(client: AsyncClient) -> None:
    with pytest.raises(RunTimeoutError) as info:
        await client.wait("steps", {"hang_at": "second"}, timeout=0.2)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert info.value.reason == "RUN_TIMEOUT"
    assert info.value.run_id and info.value.thread_id
    assert (await client.get_state(info.value.thread_id))["values"]["log"] == ["first"]


async def test_unknown_assistant(client: AsyncClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.get_assistant("nope")
    assert info.value.reason == "ASSISTANT_NOT_FOUND"
    with pytest.raises(NotFoundError) as info:
        await client.wait("nope", ask())
    assert info.value.reason == "ASSISTANT_NOT_FOUND"


async def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncClient(f"127.0.0.1:{port}") as client:
        with pytest.raises(UnavailableError) as info:
            await client.health()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    with Client(f"127.0.0.1:{port}") as sync_client:
        with pytest.raises(UnavailableError):
            await in_thread(sync_client.list_assistants)


def test_run_spec_from_plain_values() -> None:
    spec = _convert.run_spec("agent", {"n": 1}, thread_id="t", config={"tags": ["x"]}, multitask_strategy="reject",
                             if_not_exists="create", granularity="partial", durability="exit", timeout=1.5,
                             on_disconnect="continue", interrupt_after=("a",), request_id="r-1")
    assert _convert.to_dict(spec) | {"input": None} == {
        "assistant_id": "agent", "thread_id": "t", "input": None, "config": {"tags": ["x"]},
        "multitask_strategy": "reject", "if_not_exists": "create",
        "granularity": "partial", "durability": "exit", "timeout": "1.500s",
        "on_disconnect": "continue", "interrupt_before": [], "interrupt_after": ["a"],
        "checkpoint_id": "", "webhook": "", "request_id": "r-1", "on_completion": "unspecified",
        "assistant_version": 0}
    assert _convert.to_dict(spec)["input"] == {"n": 1}
    command = _convert.run_spec("agent", command={"resume": {"ok": True}, "update": {"k": "v"}, "goto": "node"}).command
    assert _convert.to_dict(command) == {"resume": {"ok": True}, "update": {"k": "v"}, "goto": ["node"]}


def test_bad_options_fail_before_the_call() -> None:
    with pytest.raises(ValueError, match="granularity must be one of low, partial, full"):
        _convert.run_spec("agent", granularity="everything")
    with pytest.raises(ValueError, match="command keys"):
        _convert.run_spec("agent", command={"resum": 1})


# -- assistants, health, auth ---------------------------------------------------------------


async def test_assistants_and_health(client: AsyncClient, sync_client: Client) -> None:
    assistants, _ = await client.list_assistants(page_size=1000)
    ids = [a["assistant_id"] for a in assistants if a["assistant_id"] == a["graph_id"]]  # the graphs' own, first
    assert ids == sorted(ids) and {"agent", "approval", "steps", "tool_error"} <= set(ids)
    agent = await client.get_assistant("agent")
    assert {"agent", "tools"} <= set(agent["nodes"])
    assert "messages" in agent["input_schema"]["properties"]
    assert await client.health() == "SERVING"
    assert await client.health("graphrun.v1.RunService") == "SERVING"
    assert await in_thread(sync_client.health) == "SERVING"
    assert [a["assistant_id"] for a in (await in_thread(sync_client.list_assistants, page_size=1000))[0]] == [
        a["assistant_id"] for a in assistants]


async def test_assistants_are_created_updated_pinned_and_deleted(client: AsyncClient, sync_client: Client) -> None:
    made = await client.create_assistant("configured", name="Terse", config={"configurable": {"tone": "terse"}},
                                         context={"user": "ada", "model": "one"}, metadata={"suite": "client"})
    assistant_id = made["assistant_id"]
    assert (made["version"], made["name"], made["context"]) == (1, "Terse", {"user": "ada", "model": "one"})
    second = await client.update_assistant(assistant_id, context={"user": "ada", "model": "two"})
    assert second["version"] == 2 and second["name"] == "Terse"  # what was not given is kept
    versions, token = await client.list_assistant_versions(assistant_id, page_size=1)
    assert [v["version"] for v in versions] == [2] and token
    assert [v["version"] for v in (await client.list_assistant_versions(assistant_id, page_token=token))[0]] == [1]
    pinned = await client.wait(assistant_id, {}, assistant_version=1)
    assert pinned.run["assistant_version"] == 1 and pinned.values["seen"]["context"]["model"] == "one"
    current = await in_thread(sync_client.wait, assistant_id, {})
    assert current.run["assistant_version"] == 2 and current.values["seen"]["context"]["model"] == "two"
    back = await client.set_latest_assistant_version(assistant_id, 1)
    assert back["version"] == 1 and (await client.get_assistant(assistant_id))["context"]["model"] == "one"
    listed = [a["assistant_id"] async for a in client.iter_assistants(metadata={"suite": "client"}, page_size=1)]
    assert assistant_id in listed and "configured" not in listed
    await client.delete_assistant(assistant_id)
    with pytest.raises(NotFoundError) as gone:
        await client.get_assistant(assistant_id)
    assert gone.value.reason == "ASSISTANT_NOT_FOUND"


class _RecordingHealth(health.aio.HealthServicer):
    def __init__(self) -> None:
        super().__init__()
        self.metadata: list[dict[str, str]] = []

    async def Check(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def test_token_is_sent_as_bearer_metadata() -> None:
    servicer = _RecordingHealth()
    fake = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, fake)
    port = fake.add_insecure_port("127.0.0.1:0")
    await fake.start()
    try:
        async with AsyncClient(f"127.0.0.1:{port}", token="s3cret") as client:
            assert await client.health() == "SERVING"
        with Client(f"127.0.0.1:{port}", token="s3cret") as sync_client:
            assert await in_thread(sync_client.health) == "SERVING"
        async with AsyncClient(f"127.0.0.1:{port}") as anonymous:
            await anonymous.health()
    finally:
        await fake.stop(None)
    assert [m.get("authorization") for m in servicer.metadata] == ["Bearer s3cret", "Bearer s3cret", None]
