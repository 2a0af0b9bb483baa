"""Durable runs across real server processes sharing one PostgreSQL: joins from other
replicas, takeovers after SIGKILL, stale owners, cancels, drains, multitask strategies."""

import asyncio
import signal
import time
import uuid

import grpc
import psycopg
import pytest
from google.protobuf import json_format

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import event_pb2, run_pb2, run_service_pb2 as pb, thread_pb2, thread_service_pb2 as tpb
from support.helpers import TIMEOUT, details, open_gate, reached_gate, side_effects, spec, to_dict
from support.replicas import Replica

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)

LEASE = 1.0  # seconds: takeovers happen quickly in these tests


@pytest.fixture(scope="module")
def cluster_db(admin_dsn):
    """A database of its own, so that the in-process test server does not claim these runs."""
    with scratch_database(admin_dsn) as dsn:
        yield dsn


@pytest.fixture
async def replicas(cluster_db):
    started: list[Replica] = []

    async def start(name: str, **settings) -> Replica:
        settings = {"lease_seconds": LEASE, "grace_seconds": 4, "test_dsn": cluster_db, **settings}
        replica = await Replica(name, cluster_db, GRAPHS_CONFIG, **settings).start()
        started.append(replica)
        return replica

    yield start
    await asyncio.gather(*(r.close() for r in started))


def durable(tag: str, gate_at: str | None = None, gate: str = "{run_id}-{attempt}", **fields) -> pb.RunServiceCreateRequest:
    body = {"tag": tag, "gates": {gate_at: gate} if gate_at else {}}
    return pb.RunServiceCreateRequest(spec=spec(assistant_id="durable", input=body, **fields),
                                      stream_mode=["updates", "tasks"])


async def read_until(call, predicate) -> list[event_pb2.RunEvent]:
    """Read a Join/Stream call's events until one satisfies predicate (inclusive)."""
    seen = []
    while True:
        response = await call.read()
        assert response != grpc.aio.EOF, f"stream ended early after {[e.sequence for e in seen]}"
        seen.append(response.event)
        if predicate(response.event):
            return seen


async def read_all(call) -> tuple[list[event_pb2.RunEvent], grpc.aio.AioRpcError | None]:
    seen = []
    try:
        while (response := await call.read()) != grpc.aio.EOF:
            seen.append(response.event)
    except grpc.aio.AioRpcError as error:
        return seen, error
    return seen, None


def started(node: str, attempt_events=None):
    return lambda e: e.HasField("task") and e.task.name == node and e.task.phase == event_pb2.TASK_PHASE_STARTED


def join(replica: Replica, run_id: str, after: int = 0):
    return replica.runs.Join(pb.RunServiceJoinRequest(run_id=run_id, after_sequence=after), timeout=TIMEOUT)


def kinds(events):
    return [e.WhichOneof("attributes") for e in events]


def assert_numbered(events, start=1):
    assert [e.sequence for e in events] == list(range(start, start + len(events)))


async def test_join_from_another_replica_mid_run_and_after_a_disconnect(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    run = (await a.runs.Create(durable("j", gate_at="n3"), timeout=TIMEOUT)).run
    assert run.status == run_pb2.RUN_STATUS_RUNNING  # accepted and started by a

    first = join(b, run.run_id)
    part1 = await read_until(first, started("n2"))
    first.cancel()  # the client goes away mid-run
    second = join(b, run.run_id, after=part1[-1].sequence)
    part2 = await read_until(second, started("n3"))
    open_gate(cluster_db, f"{run.run_id}-1")
    rest, error = await read_all(second)
    assert error is None
    joined = part1 + part2 + rest
    assert_numbered(joined)
    assert kinds(joined)[0] == "metadata" and kinds(joined)[-1] == "end"
    assert joined[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS

    # The same events, from the executing replica, after the fact.
    full, error = await read_all(join(a, run.run_id))
    assert error is None
    assert [json_format.MessageToDict(e) for e in full] == [json_format.MessageToDict(e) for e in joined]


async def test_a_killed_replica_s_run_is_finished_by_another_without_redoing_steps(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    run = (await a.runs.Create(durable("k", gate_at="n3"), timeout=TIMEOUT)).run
    watch = join(b, run.run_id)
    before = await read_until(watch, started("n3"))
    await reached_gate(cluster_db, f"{run.run_id}-1")  # n3 holds its task key (below) when killed

    a.signal(signal.SIGKILL)
    killed = time.monotonic()
    await a.exited()
    taken = await read_until(watch, lambda e: e.HasField("metadata") and e.metadata.attempt == 2)
    takeover = time.monotonic() - killed
    open_gate(cluster_db, f"{run.run_id}-2")
    rest, error = await read_all(watch)
    assert error is None
    events = before + taken + rest
    assert_numbered(events)
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS and events[-1].end.run.attempt == 2

    # Completed steps ran once: n1 and n2 in attempt 1, n3 and n4 only in attempt 2.
    assert side_effects(cluster_db, run.run_id) == {"n1": [1], "n2": [1], "n3": [2], "n4": [2]}
    # n3 started in both attempts under one task key (README: "A key for each task"), so a tool
    # it called can tell the second call from a new one.
    with psycopg.connect(cluster_db) as conn:
        keys = dict(conn.execute("SELECT name, task_key FROM test_gate_waiter WHERE name LIKE %s",
                                 (f"{run.run_id}-%",)).fetchall())
    assert set(keys) == {f"{run.run_id}-1", f"{run.run_id}-2"}
    assert keys[f"{run.run_id}-1"] == keys[f"{run.run_id}-2"]
    assert keys[f"{run.run_id}-1"].startswith(f"{run.run_id}:n3:")
    state = await b.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["k:n1", "k:n2", "k:n3", "k:n4"]
    print(f"takeover after SIGKILL: {takeover:.2f}s (lease {LEASE}s)")


async def test_a_stalled_owner_cannot_finish_or_overwrite_the_run(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    run = (await a.runs.Create(durable("s", gate_at="n2"), timeout=TIMEOUT)).run
    watch = join(b, run.run_id)
    await read_until(watch, started("n2"))

    a.signal(signal.SIGSTOP)  # a keeps its state but stops renewing its lease
    await read_until(watch, lambda e: e.HasField("metadata") and e.metadata.attempt == 2)
    await read_until(watch, started("n2"))
    open_gate(cluster_db, f"{run.run_id}-1")  # a's node may complete the moment it wakes
    a.signal(signal.SIGCONT)
    await a.wait_for_log(f"run {run.run_id} attempt 1 lost")
    open_gate(cluster_db, f"{run.run_id}-2")
    rest, error = await read_all(watch)
    assert error is None and rest[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS

    got = await a.runs.Get(pb.RunServiceGetRequest(run_id=run.run_id), timeout=TIMEOUT)
    assert got.run.status == run_pb2.RUN_STATUS_SUCCESS and got.run.attempt == 2
    state = await a.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["s:n1", "s:n2", "s:n3", "s:n4"]


async def test_a_stalled_owner_whose_node_finishes_after_the_takeover_wrote_writes_no_checkpoint(
        replicas, cluster_db):
    """The checkpoint fence end to end: the old owner's node completes after the new attempt
    has written a checkpoint, while the old owner does not know yet that it lost the run.

    Its lease keeper would tell it within moments, so the test holds the run's row lock
    meanwhile (the keeper's renewal waits on it; the fence itself reads the row without
    locking it): the only thing between the old owner's write and the thread is the fence.
    Leases are long and the takeover is made by expiring the lease while the owner is stopped,
    so no renewal timing is involved."""
    a, b = await asyncio.gather(replicas("a", lease_seconds=30), replicas("b", lease_seconds=30))
    gates = {"n2": "{run_id}-n2-{attempt}", "n3": "{run_id}-n3-{attempt}"}
    run = (await a.runs.Create(pb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", input={"tag": "f", "gates": gates}, durability="DURABILITY_SYNC")),
        timeout=TIMEOUT)).run
    open_gate(cluster_db, f"{run.run_id}-n2-2")  # the new attempt passes n2 at once, then waits at n3
    await reached_gate(cluster_db, f"{run.run_id}-n2-1")

    a.signal(signal.SIGSTOP)  # a stalls inside n2
    with psycopg.connect(cluster_db, autocommit=True) as conn:
        conn.execute("UPDATE graphrun_run SET lease_expires_at = now() - interval '1 second' WHERE run_id = %s",
                     (run.run_id,))
        conn.execute("SELECT pg_notify('graphrun_run', '')")  # b claims it now, not at its next sweep
    await reached_gate(cluster_db, f"{run.run_id}-n3-2")  # attempt 2 ran n2 and stored its checkpoint

    with psycopg.connect(cluster_db) as hold:  # a's lease renewal cannot tell it that it lost the run
        hold.execute("SELECT 1 FROM graphrun_run WHERE run_id = %s FOR UPDATE", (run.run_id,))
        open_gate(cluster_db, f"{run.run_id}-n2-1")
        a.signal(signal.SIGCONT)  # a's n2 completes now, and a tries to write what it did
        refused = asyncio.ensure_future(a.wait_for_log(f"run {run.run_id} attempt 1 lost", timeout=TIMEOUT))
        went_on = asyncio.ensure_future(reached_gate(cluster_db, f"{run.run_id}-n3-1"))  # a wrote, then went on
        done, pending = await asyncio.wait([refused, went_on], return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()  # a timeout is a failure
        hold.rollback()
    await a.wait_for_log(f"run {run.run_id} attempt 1 lost", timeout=TIMEOUT)

    open_gate(cluster_db, f"{run.run_id}-n3-2")
    events, error = await read_all(join(b, run.run_id))
    assert error is None
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS and events[-1].end.run.attempt == 2
    # a's n2 did complete, after b's: its write came after the takeover's.
    assert side_effects(cluster_db, run.run_id) == {"n1": [1], "n2": [2, 1], "n3": [2], "n4": [2]}
    with psycopg.connect(cluster_db) as conn:
        steps = [row[0] for row in conn.execute(
            "SELECT (metadata->>'step')::int FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = ''"
            " ORDER BY checkpoint_id", (run.thread_id,))]
    assert steps == sorted(set(steps)), f"a second checkpoint of one step: the old attempt wrote ({steps})"
    state = await b.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["f:n1", "f:n2", "f:n3", "f:n4"]


async def test_a_run_whose_replicas_keep_dying_ends_error_and_frees_its_thread(replicas, cluster_db):
    a = await replicas("a")
    run = (await a.runs.Create(durable("x", gate_at="n2"), timeout=TIMEOUT)).run
    await read_until(join(a, run.run_id), started("n2"))
    a.signal(signal.SIGKILL)
    await a.exited()
    b = await replicas("b", max_attempts=1)  # the next attempt would be the second: give up
    events, error = await read_all(join(b, run.run_id))
    assert error.code() == grpc.StatusCode.ABORTED
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_ERROR
    assert "gave up after 1 attempts" in events[-1].end.run.error.message
    thread = await b.threads.Get(tpb.ThreadServiceGetRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert thread.thread.status == thread_pb2.THREAD_STATUS_ERROR  # not stuck busy
    again = await b.runs.Wait(pb.RunServiceWaitRequest(spec=spec(assistant_id="durable", thread_id=run.thread_id,
                                                                 input={"tag": "y", "gates": {}})), timeout=30)
    assert again.run.status == run_pb2.RUN_STATUS_SUCCESS


async def test_cancel_from_another_replica_and_of_a_pending_run(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    run = (await a.runs.Create(durable("c", gate_at="n2"), timeout=TIMEOUT)).run
    watch = join(a, run.run_id)
    await read_until(watch, started("n2"))
    cancelled = await b.runs.Cancel(pb.RunServiceCancelRequest(run_id=run.run_id, wait=True), timeout=TIMEOUT)
    assert cancelled.run.status == run_pb2.RUN_STATUS_CANCELLED
    rest, error = await read_all(watch)
    assert error.code() == grpc.StatusCode.CANCELLED and details(error)["reason"] == "RUN_CANCELLED"
    state = await a.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=run.thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["c:n1"]  # interrupt keeps what was written

    later = (await a.runs.Create(pb.RunServiceCreateRequest(
        spec=spec(assistant_id="durable", input={"tag": "p"}), start_delay={"seconds": 3600}), timeout=TIMEOUT)).run
    assert later.status == run_pb2.RUN_STATUS_PENDING
    gone = await b.runs.Cancel(pb.RunServiceCancelRequest(run_id=later.run_id), timeout=TIMEOUT)
    assert gone.run.status == run_pb2.RUN_STATUS_CANCELLED
    events, error = await read_all(join(a, later.run_id))
    assert kinds(events) == ["end"] and error.code() == grpc.StatusCode.CANCELLED
    thread = await a.threads.Get(tpb.ThreadServiceGetRequest(thread_id=later.thread_id), timeout=TIMEOUT)
    assert thread.thread.status == thread_pb2.THREAD_STATUS_IDLE


async def test_rollback_cancel_removes_what_the_run_wrote(replicas, cluster_db):
    a = await replicas("a")
    first = await a.runs.Wait(pb.RunServiceWaitRequest(spec=spec(assistant_id="durable", input={"tag": "r0"})),
                              timeout=TIMEOUT)
    thread_id = first.run.thread_id
    run = (await a.runs.Create(durable("r1", gate_at="n3", thread_id=thread_id), timeout=TIMEOUT)).run
    await read_until(join(a, run.run_id), started("n3"))
    await a.runs.Cancel(pb.RunServiceCancelRequest(run_id=run.run_id, action=pb.CANCEL_ACTION_ROLLBACK, wait=True),
                        timeout=TIMEOUT)
    state = await a.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    assert to_dict(state.state.values)["log"] == ["r0:n1", "r0:n2", "r0:n3", "r0:n4"]
    with psycopg.connect(cluster_db) as conn:
        left = conn.execute("SELECT count(*) FROM checkpoints WHERE metadata->>'run_id' = %s", (run.run_id,)).fetchone()
    assert left[0] == 0


async def sigterm_ends_with_server_draining(replica: Replica, watch, seen: list) -> list[event_pb2.RunEvent]:
    """SIGTERM the replica a Join is open on: the Join ends UNAVAILABLE with SERVER_DRAINING and
    the last sequence it sent, and the replica exits 0. Returns every event the Join got."""
    replica.signal(signal.SIGTERM)
    more, error = await read_all(watch)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    info = details(error)
    assert info["reason"] == "SERVER_DRAINING", info
    seen = seen + more
    assert info["metadata"]["last_sequence"] == str(seen[-1].sequence)
    assert await replica.exited() == 0
    return seen


async def test_sigterm_hands_runs_to_another_replica(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a", grace_seconds=2), replicas("b"))
    run = (await a.runs.Create(durable("d", gate_at="n2"), timeout=TIMEOUT)).run
    watch = join(a, run.run_id)
    seen = await read_until(watch, started("n2"))
    seen = await sigterm_ends_with_server_draining(a, watch, seen)

    open_gate(cluster_db, f"{run.run_id}-2")
    rest, error = await read_all(join(b, run.run_id, after=seen[-1].sequence))
    assert error is None
    events = seen + rest
    assert_numbered(events)
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS and events[-1].end.run.attempt == 2
    assert side_effects(cluster_db, run.run_id) == {"n1": [1], "n2": [2], "n3": [2], "n4": [2]}


async def test_sigterm_ends_streams_of_runs_executing_elsewhere_at_once(replicas, cluster_db):
    """A replica shutting down ends its streams of runs it does not execute (Join of a run on
    another replica, of a queued run) at once, UNAVAILABLE with SERVER_DRAINING and the last
    sequence sent, rather than holding them for the whole grace period and then failing them
    with gRPC's bare "Cancelling all calls"."""
    a, b = await asyncio.gather(replicas("a", grace_seconds=60), replicas("b"))
    run = (await b.runs.Create(durable("x", gate_at="n2"), timeout=TIMEOUT)).run
    watch = join(a, run.run_id)
    seen = await read_until(watch, started("n2"))
    seen = await sigterm_ends_with_server_draining(a, watch, seen)  # well before its 60 s of grace
    open_gate(cluster_db, f"{run.run_id}-1")
    rest, error = await read_all(join(b, run.run_id, after=seen[-1].sequence))
    assert error is None and rest[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS


def _intervals(dsn: str, thread_id: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT queue_position, started_at, ended_at, status, spec->'input'->>'tag' FROM graphrun_run"
            " WHERE thread_id = %s AND attempt > 0 ORDER BY started_at", (thread_id,)).fetchall()


def assert_one_at_a_time(rows) -> None:
    for (_, _, end, *_), (_, start, _, *_) in zip(rows, rows[1:]):
        assert end <= start, "two runs of one thread overlapped"


async def test_reject_under_concurrency_accepts_exactly_one(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    thread_id = str(uuid.uuid4())
    await a.threads.Create(tpb.ThreadServiceCreateRequest(thread_id=thread_id), timeout=TIMEOUT)
    calls = [(a, b)[i % 2].runs.Create(durable(f"t{i}", gate_at="n1", gate="reject-gate", thread_id=thread_id),
                                       timeout=TIMEOUT)
             for i in range(12)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    accepted = [r.run for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(accepted) == 1
    assert {e.code() for e in refused} == {grpc.StatusCode.ABORTED}
    assert {details(e)["metadata"]["run_id"] for e in refused} == {accepted[0].run_id}
    open_gate(cluster_db, "reject-gate")
    events, error = await read_all(join(b, accepted[0].run_id))
    assert error is None


async def test_enqueue_runs_one_at_a_time_in_arrival_order(replicas, cluster_db):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    thread_id = str(uuid.uuid4())
    await a.threads.Create(tpb.ThreadServiceCreateRequest(thread_id=thread_id), timeout=TIMEOUT)
    created = await asyncio.gather(*[
        (a, b)[i % 2].runs.Create(durable(f"q{i}", thread_id=thread_id,
                                          multitask_strategy="MULTITASK_STRATEGY_ENQUEUE"), timeout=TIMEOUT)
        for i in range(10)])
    for response in created:
        events, error = await read_all(join(a, response.run.run_id))
        assert error is None and events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    rows = _intervals(cluster_db, thread_id)
    assert len(rows) == 10
    assert_one_at_a_time(rows)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # executed in arrival order
    state = await a.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=TIMEOUT)
    tags = [entry.split(":")[0] for entry in to_dict(state.state.values)["log"]][::4]
    assert tags == [r[4] for r in rows]


@pytest.mark.parametrize("strategy, kept", [("MULTITASK_STRATEGY_INTERRUPT", ["old:n1"]),
                                            ("MULTITASK_STRATEGY_ROLLBACK", [])])
async def test_interrupt_and_rollback_replace_the_run_in_flight(replicas, cluster_db, strategy, kept):
    a, b = await asyncio.gather(replicas("a"), replicas("b"))
    old = (await a.runs.Create(durable("old", gate_at="n2"), timeout=TIMEOUT)).run
    watch = join(a, old.run_id)
    await read_until(watch, started("n2"))
    new = await b.runs.Wait(pb.RunServiceWaitRequest(spec=spec(
        assistant_id="durable", thread_id=old.thread_id, input={"tag": "new", "gates": {}},
        multitask_strategy=strategy)), timeout=TIMEOUT)
    assert new.run.status == run_pb2.RUN_STATUS_SUCCESS
    _, error = await read_all(watch)
    assert error.code() == grpc.StatusCode.CANCELLED
    assert to_dict(new.state.values)["log"] == kept + ["new:n1", "new:n2", "new:n3", "new:n4"]
    assert_one_at_a_time(_intervals(cluster_db, old.thread_id))


async def test_hand_backs_on_sigterm_do_not_use_up_attempts(replicas, cluster_db):
    """With one attempt allowed, a run handed back by a draining replica still completes
    elsewhere: only executions that ended without a hand-back (a crash) count."""
    a, b = await asyncio.gather(replicas("a", grace_seconds=2, max_attempts=1), replicas("b", max_attempts=1))
    run = (await a.runs.Create(durable("h", gate_at="n2"), timeout=TIMEOUT)).run
    await read_until(join(a, run.run_id), started("n2"))
    a.signal(signal.SIGTERM)
    assert await a.exited() == 0

    open_gate(cluster_db, f"{run.run_id}-2")
    events, error = await read_all(join(b, run.run_id))
    assert error is None
    end = events[-1].end.run
    assert end.status == run_pb2.RUN_STATUS_SUCCESS and end.attempt == 2, end
    assert side_effects(cluster_db, run.run_id) == {"n1": [1], "n2": [2], "n3": [2], "n4": [2]}
