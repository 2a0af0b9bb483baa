"""Failover: the primary dies and a synchronous standby (made with pg_basebackup) is promoted.

The replica is given both servers in one DSN with `target_session_attrs=read-write`,
so it connects to whichever is the primary. Synchronous replication is what makes a
run acknowledged before the primary died exist on the standby. What users rely on:
while there is no primary, calls fail UNAVAILABLE and health says NOT_SERVING;
once the standby is promoted the replica finds it by itself, reports SERVING only
when calls succeed, and the acknowledged run completes.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import grpc
import psycopg
import pytest

from conftest import GRAPHS_CONFIG
from graphrun.v1 import run_pb2, run_service_pb2 as pb, thread_service_pb2 as tpb
from support.helpers import details, open_gate, spec, to_dict
from support.own_postgres import BASEBACKUP, READY_WITHIN, OwnPostgres
from support.replicas import Replica
from test_durable import durable, join, read_all, read_until, started
from test_partition import DB_TIMEOUT, MARGIN, NOT_SERVING, SERVING, SLACK, HealthLog, timed

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)


@pytest.fixture
def primary_and_standby():
    if not BASEBACKUP.exists():
        reason = f"no pg_basebackup beside the embedded PostgreSQL's binaries ({BASEBACKUP.parent})"
        print(f"skipped: {reason}")
        pytest.skip(reason)
    primary = OwnPostgres(settings={"synchronous_standby_names": "*", "wal_level": "replica"}).init()
    standby = None
    try:
        primary.start()
        standby = primary.standby()
        standby.start()
        wait_until_synchronous(primary)
        yield primary, standby
    finally:
        primary.destroy()
        if standby is not None:
            standby.destroy()


def wait_until_synchronous(primary: OwnPostgres) -> None:
    """Until the standby confirms each commit: from then on an acknowledged write is on both."""
    deadline = time.monotonic() + READY_WITHIN
    with psycopg.connect(primary.dsn, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").fetchone()[0] == 0:
            assert time.monotonic() < deadline, "the standby never became synchronous"
            time.sleep(0.05)  # polling a readiness condition, not synchronising with the code under test


async def test_failover_to_a_synchronous_standby_loses_no_acknowledged_run(primary_and_standby, database_url):
    primary, standby = primary_and_standby
    dsn = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
           "?target_session_attrs=read-write")
    # database_url: the session database, where the durable test graph's gates live (it stays up)
    a = await Replica("a", dsn, GRAPHS_CONFIG, lease_seconds=3, db_timeout=DB_TIMEOUT, test_dsn=database_url).start()
    try:
        health = HealthLog(a)
        await health.reaches(SERVING, 0, 30)
        gate = f"failover-{uuid.uuid4()}"
        run = (await a.runs.Create(durable("f", gate_at="n2", gate=gate), timeout=30)).run  # acknowledged
        watch = join(a, run.run_id)
        await read_until(watch, started("n2"))
        watch.cancel()

        await asyncio.to_thread(primary.stop, signal.SIGQUIT)  # the primary dies (immediate shutdown)
        died = time.monotonic()
        await health.reaches(NOT_SERVING, died, 30)
        elapsed, error = await timed(a.threads.Get(tpb.ThreadServiceGetRequest(thread_id=run.thread_id), timeout=60))
        assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert details(error)["reason"] == "DATABASE_UNAVAILABLE" and elapsed <= DB_TIMEOUT + SLACK + MARGIN

        await asyncio.to_thread(standby.promote)
        promoted = time.monotonic()
        serving = await health.reaches(SERVING, promoted, 60)
        answer = await a.runs.Wait(pb.RunServiceWaitRequest(spec=spec(assistant_id="steps", input={"log": []})),
                                   timeout=30)  # SERVING means calls succeed
        assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
        served = time.monotonic()
        assert not any(status == SERVING and died < at < promoted for at, status in health.seen)

        open_gate(database_url, gate)
        events, error = await read_all(join(a, run.run_id))
        assert error is None and events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
        assert to_dict(events[-1].end.state.values)["log"] == ["f:n1", "f:n2", "f:n3", "f:n4"]
        await a.wait_for_log("notification listener reconnected", timeout=30)
        health.close()
        print(f"after the promotion: SERVING in {serving - promoted:.2f} s, first call served "
              f"{served - promoted:.2f} s; {''.join(line for line in a.log if 'reconnected' in line)}")
    finally:
        await a.close()
