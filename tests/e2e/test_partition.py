"""Network partitions between one replica and PostgreSQL, through a TCP proxy (tests/tcp_proxy.py).

Replica `a` reaches the database only through the proxy, replica `b` directly.
What users rely on when `a` is cut off silently (sockets open, no byte passes):
no step runs on both replicas at once (`a` stops on its own clock before its
lease can lapse in the database), every acknowledged run ends SUCCESS, every
call on `a` answers UNAVAILABLE within GRAPHRUN_DB_TIMEOUT plus the documented
slack, health says NOT_SERVING within seconds and SERVING again only when calls
succeed, and `a` recovers by itself once the partition heals. Each state change
is logged once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import grpc
import psycopg
import pytest

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import run_pb2, run_service_pb2 as pb, thread_service_pb2 as tpb
from graphrun_server.storage.leases import GIVE_UP, LeaseKeeper
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.helpers import details, open_gate, spec
from support.replicas import Replica
from support.tcp_proxy import TcpProxy
from test_durable import durable, join, read_all, read_until, started

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)

LEASE = 3.0  # seconds: a takeover comes LEASE (+ a sweep) after the last renewal
DB_TIMEOUT = 2.0  # GRAPHRUN_DB_TIMEOUT of the replicas
SLACK = 1.0  # the documented slack: the first answer after a wait for a connection gets at least min(1 s, T/2)
HEALTH_BUDGET = 1.0  # health answers within this (servicers/health.py)
MARGIN = 2.0  # for a loaded two-core machine: bounds are asserted generously, never as tight thresholds

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def cluster_db(admin_dsn):
    """A database of its own, so that the in-process test server does not claim these runs."""
    if not psycopg.conninfo.conninfo_to_dict(admin_dsn).get("port"):
        pytest.skip("the test PostgreSQL listens on a Unix socket only: nothing to put a TCP proxy in front of")
    with scratch_database(admin_dsn) as dsn:
        yield dsn


@pytest.fixture
def proxy(cluster_db):
    params = psycopg.conninfo.conninfo_to_dict(cluster_db)
    proxy = TcpProxy(params.get("host") or "127.0.0.1", int(params["port"]))
    yield proxy
    proxy.close()


@pytest.fixture
def step_log(tmp_path):
    return tmp_path / "steps.jsonl"


@pytest.fixture
async def replicas(cluster_db, step_log):
    started_: list[Replica] = []

    async def start(name: str, database_url: str | None = None, **settings) -> Replica:
        settings = {"lease_seconds": LEASE, "db_timeout": DB_TIMEOUT, "grace_seconds": 4, "test_dsn": cluster_db,
                    "test_step_log": str(step_log), **settings}
        replica = await Replica(name, database_url or cluster_db, GRAPHS_CONFIG, **settings).start()
        started_.append(replica)
        return replica

    yield start
    await asyncio.gather(*(r.close() for r in started_))


class HealthLog:
    """Follows a replica's health Watch stream, recording each status with the time it came."""

    def __init__(self, replica: Replica):
        self.seen: list[tuple[float, int]] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._follow(health_pb2_grpc.HealthStub(replica.channel)))

    async def _follow(self, stub) -> None:
        async for response in stub.Watch(health_pb2.HealthCheckRequest(service="")):
            async with self._changed:
                self.seen.append((time.monotonic(), response.status))
                self._changed.notify_all()

    async def reaches(self, status, after: float, timeout: float) -> float:
        """The time health reported `status` at or after `after` (waiting up to `timeout`)."""
        async def found():
            async with self._changed:
                while True:
                    for at, seen in self.seen:
                        if at >= after and seen == status:
                            return at
                    await self._changed.wait()
        return await asyncio.wait_for(found(), timeout)

    def close(self) -> None:
        self._task.cancel()


async def timed(call) -> tuple[float, grpc.aio.AioRpcError | None]:
    began = time.monotonic()
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return time.monotonic() - began, error
    return time.monotonic() - began, None


def steps_by_run(path) -> dict[str, list[dict]]:
    """Each run's step intervals from the step log: {attempt, node, start, end, pid}."""
    intervals: dict[tuple[str, int, str], dict] = {}
    for line in path.read_text().splitlines():
        note = json.loads(line)
        step = intervals.setdefault((note["run_id"], note["attempt"], note["node"]),
                                    {"attempt": note["attempt"], "node": note["node"], "pid": note["pid"]})
        step[note["phase"]] = note["at"]
    runs: dict[str, list[dict]] = {}
    for (run_id, _, _), step in intervals.items():
        runs.setdefault(run_id, []).append(step)
    return runs


def assert_no_overlap(steps: list[dict]) -> None:
    """No two attempts of a run executed a step at overlapping times, and every step ended."""
    for step in steps:
        assert "start" in step and "end" in step, step
    for first in steps:
        for second in steps:
            if first["attempt"] < second["attempt"]:
                assert first["end"] < second["start"], (first, second)


def lease_expiries(dsn: str, run_ids: list[str]) -> dict[str, float]:
    """When each run's lease runs out in the database, on this machine's monotonic clock (at the
    earliest: the time before the query was sent plus the lease left when it ran)."""
    with psycopg.connect(dsn, autocommit=True) as db:
        before = time.monotonic()
        rows = db.execute("SELECT run_id::text, extract(epoch FROM lease_expires_at - clock_timestamp())::float"
                          " FROM graphrun_run WHERE run_id = ANY(%s::uuid[])", (run_ids,)).fetchall()
    return {run_id: before + left for run_id, left in rows}


def count(replica: Replica, text: str) -> int:
    return sum(text in line for line in replica.log)


async def test_a_silent_partition_stops_the_cut_off_replica_before_another_takes_over(
        replicas, proxy, cluster_db, step_log):
    a = await replicas("a", database_url=proxy.dsn(cluster_db))
    b = await replicas("b")
    health = HealthLog(a)
    await health.reaches(SERVING, 0, 30)
    # Acknowledged runs on a, each held in n2 (a step that outlasts the lease): only the gate of
    # their second attempt is ever opened.
    runs = [(await a.runs.Create(durable(f"p{i}", gate_at="n2"), timeout=30)).run for i in range(3)]
    assert all(r.status == run_pb2.RUN_STATUS_RUNNING for r in runs)  # executing on a
    watches = [join(b, r.run_id) for r in runs]
    for watch in watches:
        await read_until(watch, started("n2"))

    proxy.blackhole()
    cut = time.monotonic()
    expiries = lease_expiries(cluster_db, [r.run_id for r in runs])  # in the database, as b sees them
    # Every call on a that needs the database answers UNAVAILABLE within the bound.
    thread_id = runs[0].thread_id
    calls = {
        "RunService.Get": a.runs.Get(pb.RunServiceGetRequest(run_id=runs[0].run_id), timeout=60),
        "RunService.List": a.runs.List(pb.RunServiceListRequest(thread_id=thread_id), timeout=60),
        "ThreadService.Get": a.threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), timeout=60),
        "ThreadService.Create": a.threads.Create(tpb.ThreadServiceCreateRequest(), timeout=60),
        "RunService.Create": a.runs.Create(durable("new"), timeout=60),
        "RunService.Wait": a.runs.Wait(pb.RunServiceWaitRequest(
            spec=spec(assistant_id="steps", input={"log": []})), timeout=60),
    }
    answers = dict(zip(calls, await asyncio.gather(*(timed(c) for c in calls.values()))))
    for name, (elapsed, error) in answers.items():
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, (name, error)
        assert details(error)["reason"] == "DATABASE_UNAVAILABLE" and details(error)["retry"] > 0, name
        assert elapsed <= DB_TIMEOUT + SLACK + MARGIN, (name, elapsed)
    print("answers while cut off:", {name: round(elapsed, 2) for name, (elapsed, _) in answers.items()})
    began = time.monotonic()
    checked = await health_pb2_grpc.HealthStub(a.channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
    assert time.monotonic() - began <= HEALTH_BUDGET + MARGIN
    assert checked.status == NOT_SERVING
    not_serving = await health.reaches(NOT_SERVING, cut, 30)
    assert not_serving - cut <= DB_TIMEOUT + HEALTH_BUDGET + MARGIN

    # b takes each run over once its lease lapsed, and finishes it.
    for run, watch in zip(runs, watches):
        await read_until(watch, lambda e: e.HasField("metadata") and e.metadata.attempt == 2)
        await read_until(watch, started("n2"))
        open_gate(cluster_db, f"{run.run_id}-2")
        rest, error = await read_all(watch)
        assert error is None and rest[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    # a stopped its step on its own clock, before b started it again.
    steps = steps_by_run(step_log)
    for run in runs:
        assert_no_overlap(steps[run.run_id])
        first = next(s for s in steps[run.run_id] if s["attempt"] == 1 and s["node"] == "n2")
        second = next(s for s in steps[run.run_id] if s["attempt"] == 2 and s["node"] == "n2")
        assert first["pid"] == a.proc.pid and second["pid"] == b.proc.pid
        assert first["end"] < expiries[run.run_id]  # a stopped before its lease ran out in the database
        print(f"run {run.run_id}: a stopped n2 {first['end'] - cut:.2f} s into the partition, "
              f"{expiries[run.run_id] - first['end']:.2f} s before its lease ran out; "
              f"b started it {second['start'] - first['end']:.2f} s after a stopped")
    assert not any(status == SERVING and at > not_serving for at, status in health.seen)

    proxy.forward()
    healed = time.monotonic()
    serving = await health.reaches(SERVING, healed, 60)  # by itself: nobody restarted a
    answer = await a.runs.Wait(pb.RunServiceWaitRequest(spec=spec(assistant_id="steps", input={"log": []})),
                               timeout=30)  # SERVING means calls succeed
    assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
    print(f"a SERVING {serving - healed:.2f} s after the heal")
    health.close()
    # One line per change of state, not one per attempt.
    assert count(a, "database gone") == 1 and count(a, "database back") == 1, "".join(a.log)
    for run in runs:
        assert count(a, f"run {run.run_id}: lease lost") == 1, "".join(a.log)


async def test_reset_connections_are_survived_without_a_flood_of_lines(replicas, proxy, cluster_db, step_log):
    a = await replicas("a", database_url=proxy.dsn(cluster_db))
    run = (await a.runs.Create(durable("r", gate_at="n2"), timeout=30)).run
    watch = join(a, run.run_id)
    await read_until(watch, started("n2"))
    assert proxy.reset() > 0  # the pool's, the listener's, the lease keeper's connections
    open_gate(cluster_db, f"{run.run_id}-1")
    open_gate(cluster_db, f"{run.run_id}-2")
    events, error = await read_all(join(a, run.run_id))
    assert error is None and events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    got = await a.runs.Get(pb.RunServiceGetRequest(run_id=run.run_id), timeout=30)  # unseen by callers
    assert got.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert_no_overlap(steps_by_run(step_log)[run.run_id])
    assert count(a, "lease lost") <= 1 and count(a, "lease renewal failed") <= 1, "".join(a.log)


async def test_the_lease_keeper_gives_up_while_its_renewal_hangs_before_the_lease_lapses(proxy, cluster_db):
    """The keeper's renewal gets no answer (the call hangs); its clock reports the run lost anyway,
    while the lease the database enforces has not run out: nobody can have taken the run over yet."""
    await migrated(cluster_db)
    lease = 1.5
    thread_id, run_id, owner = str(uuid.uuid4()), str(uuid.uuid4()), f"replica-{uuid.uuid4().hex[:8]}"
    leased_at = time.monotonic()  # before the database sets the lease, as the runner's claims do
    with psycopg.connect(cluster_db, autocommit=True) as db:
        db.execute("INSERT INTO graphrun_thread (thread_id, status) VALUES (%s, 'busy')", (thread_id,))
        db.execute("INSERT INTO graphrun_run (run_id, thread_id, assistant_id, status, attempt, multitask_strategy,"
                   " spec, lease_owner, lease_expires_at) VALUES (%s, %s, 'steps', 'running', 1, 'reject', '{}', %s,"
                   " now() + make_interval(secs => %s))", (run_id, thread_id, owner, lease))
    renewing, lost = threading.Event(), threading.Event()
    renewals: list[float] = []
    lease_left_at_loss: list[bool] = []

    def runs():
        if threading.current_thread().name == "graphrun-leases":  # the renewer, about to send a renewal
            renewals.append(time.monotonic())
            if len(renewals) == 2:  # so the first one has come back
                renewing.set()
        return {run_id: (1, None, None, leased_at)}

    def report(gone: dict[str, int], cancels: dict[str, str]) -> None:
        if gone:
            with psycopg.connect(cluster_db, autocommit=True) as db:  # directly, not through the proxy
                lease_left_at_loss.append(db.execute(
                    "SELECT lease_expires_at > clock_timestamp() FROM graphrun_run WHERE run_id = %s",
                    (run_id,)).fetchone()[0])
            lost.set()

    keeper = LeaseKeeper(proxy.dsn(cluster_db), owner, lease, runs=runs, report=report)
    keeper.start()
    try:
        assert await asyncio.to_thread(renewing.wait, 30)
        proxy.blackhole()
        cut = time.monotonic()
        assert await asyncio.to_thread(lost.wait, 30)
        gave_up_after = time.monotonic() - cut
        assert lease_left_at_loss == [True]  # stopped before the database let anyone take over
        assert gave_up_after <= lease * GIVE_UP + MARGIN
        print(f"gave up {gave_up_after:.2f} s into the partition (lease {lease} s, give-up point "
              f"{lease * GIVE_UP:.2f} s after the last renewal that came back)")
    finally:
        keeper.stop()
        proxy.forward()
        await asyncio.to_thread(keeper.join, 10)
        with psycopg.connect(cluster_db, autocommit=True) as db:
            db.execute("DELETE FROM graphrun_run WHERE run_id = %s", (run_id,))
            db.execute("DELETE FROM graphrun_thread WHERE thread_id = %s", (thread_id,))


async def migrated(dsn: str) -> None:
    """graphrun's tables in `dsn`, as a replica starting on it would create them."""
    from graphrun_server.storage.checkpointer import FencedPostgresSaver
    from graphrun_server.storage.database import make_pool, migrate

    pool = make_pool(dsn, max_size=2)
    await pool.open(wait=True, timeout=30)
    try:
        await migrate(pool, FencedPostgresSaver(pool).setup)
    finally:
        await pool.close()
