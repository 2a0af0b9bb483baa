"""Database outages: a PostgreSQL this module starts, kills connections of, stops and restarts.

What users rely on: calls fail fast with UNAVAILABLE while the database is away,
health says NOT_SERVING, the server recovers by itself, connections the database
dropped while idle never surface as errors, and a run acknowledged before the
outage completes afterwards.
"""

import asyncio
import os
import uuid

import grpc
import psycopg
import pytest

from conftest import GRAPHS_CONFIG
from graphrun.v1 import run_pb2, run_service_pb2 as pb, run_service_pb2_grpc, thread_service_pb2 as tpb
from graphrun.v1 import thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.helpers import details, open_gate, side_effects, spec, to_dict
from support.own_postgres import OwnPostgres
from test_durable import read_until, started

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def postgres():
    own = OwnPostgres().init()
    own.start()
    yield own
    own.destroy()


@pytest.fixture(scope="module")
async def outage_app(postgres, database_url):
    # database_url: the session database, where the durable test graph's gates live (it stays up)
    app = await App(Settings(host="127.0.0.1", port=0, database_url=postgres.dsn, config=GRAPHS_CONFIG,
                             lease_seconds=10)).start()
    yield app
    await app.stop(grace=1)


@pytest.fixture(scope="module")
async def stubs(outage_app):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{outage_app.port}") as channel:
        yield (run_service_pb2_grpc.RunServiceStub(channel), thread_service_pb2_grpc.ThreadServiceStub(channel),
               health_pb2_grpc.HealthStub(channel))


def gated(gate_at: str, gate: str, **fields) -> run_pb2.RunSpec:
    return spec(assistant_id="durable", input={"tag": "outage", "gates": {gate_at: gate}}, **fields)


def steps_request() -> pb.RunServiceWaitRequest:
    return pb.RunServiceWaitRequest(spec=spec(assistant_id="steps", input={"log": []}))


async def health_becomes(health, status) -> None:
    """Follow the health Watch stream until it reports `status`."""
    async for response in health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60):
        if response.status == status:
            return


def kill_idle_sessions(dsn: str) -> int:
    """Terminate every idle session of graphrun's database, as a cloud proxy's idle timeout does
    (waiting until each has exited: a connection killed while in use is another matter)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'").fetchone()[0]


async def test_idle_connections_killed_by_the_database_never_reach_callers(stubs, postgres):
    runs, threads, health = stubs
    warm = await asyncio.gather(*(runs.Wait(steps_request(), timeout=30) for _ in range(4)))
    assert kill_idle_sessions(postgres.dsn) >= 2  # the pool's idle connections, the listener, the lease keeper

    answers = await asyncio.gather(*(runs.Wait(steps_request(), timeout=30) for _ in range(8)),
                                   *(threads.Get(tpb.ThreadServiceGetRequest(thread_id=w.run.thread_id), timeout=30)
                                     for w in warm))
    assert all(a.run.status == run_pb2.RUN_STATUS_SUCCESS for a in answers[:8])
    assert [a.thread.thread_id for a in answers[8:]] == [w.run.thread_id for w in warm]
    assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=30)).status == SERVING


async def test_restart_fails_calls_fast_and_loses_no_acknowledged_run(stubs, postgres, database_url):
    runs, threads, health = stubs
    gate = f"outage-{uuid.uuid4()}"
    # A background run, acknowledged and stopped at n2 (n1's checkpoint is stored).
    created = await runs.Create(pb.RunServiceCreateRequest(spec=gated("n2", gate), stream_mode=["tasks"]), timeout=30)
    background = created.run
    join = runs.Join(pb.RunServiceJoinRequest(run_id=background.run_id), timeout=60)
    await read_until(join, started("n2"))
    join.cancel()
    # A Wait in flight, its run recorded (gRPC Python gives a unary call's metadata only with its
    # response, so the run is found through its thread).
    thread = (await threads.Create(tpb.ThreadServiceCreateRequest(), timeout=30)).thread
    in_flight = runs.Wait(pb.RunServiceWaitRequest(spec=gated("n1", gate, thread_id=thread.thread_id)), timeout=60)
    listing = pb.RunServiceListRequest(thread_id=thread.thread_id)
    while not (listed := (await runs.List(listing, timeout=30)).runs):
        assert not in_flight.done()
    waited_run_id = listed[0].run_id
    await asyncio.to_thread(postgres.stop)
    # While the database is away: every call that needs it fails with UNAVAILABLE, health says so.
    calls = await asyncio.gather(
        runs.Wait(steps_request(), timeout=60),
        threads.Get(tpb.ThreadServiceGetRequest(thread_id=background.thread_id), timeout=60),
        runs.Get(pb.RunServiceGetRequest(run_id=background.run_id), timeout=60),
        return_exceptions=True)
    for call in calls:
        assert isinstance(call, grpc.aio.AioRpcError), call
        assert call.code() == grpc.StatusCode.UNAVAILABLE, call
        assert details(call)["reason"] == "DATABASE_UNAVAILABLE"
        assert details(call)["retry"] > 0
    assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=30)).status == NOT_SERVING

    # Both runs finish their current node now; its checkpoint cannot be written.
    open_gate(os.environ["GRAPHRUN_TEST_DSN"], gate)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await in_flight
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(failed.value.initial_metadata())["graphrun-run-id"] == waited_run_id  # to Join it later

    await asyncio.to_thread(postgres.start)
    await health_becomes(health, SERVING)  # by itself: nobody restarted graphrun

    # Both acknowledged runs complete: continued from their last stored checkpoint.
    for run_id in (background.run_id, waited_run_id):
        events = [r.event async for r in runs.Join(pb.RunServiceJoinRequest(run_id=run_id), timeout=60)]
        end = events[-1].end
        assert end.run.status == run_pb2.RUN_STATUS_SUCCESS, end
        assert to_dict(end.state.values)["log"] == ["outage:n1", "outage:n2", "outage:n3", "outage:n4"]
        done = side_effects(database_url, run_id)
        assert sorted(done) == ["n1", "n2", "n3", "n4"] and done["n3"] == done["n4"] == [end.run.attempt]
    # And new calls work again.
    assert (await runs.Wait(steps_request(), timeout=30)).run.status == run_pb2.RUN_STATUS_SUCCESS
