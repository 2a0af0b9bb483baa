"""Thread time-to-live: a thread's own TTL or the server's default (`checkpointer.ttl` in the
project's langgraph.json, tests/projects/ttl) counts from its last activity; a sweep deletes (or
prunes) the threads idle past it, on one replica at a time, and never one with a run in flight."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import grpc
import psycopg
import pytest
from google.protobuf import duration_pb2, json_format

from graphrun.v1 import run_service_pb2 as rpb, run_service_pb2_grpc, thread_pb2
from graphrun.v1 import thread_service_pb2 as pb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.project import ProjectError, load_project
from graphrun_server.thread_ttl import SWEEP_LOCK
from support.helpers import TIMEOUT, details, open_gate, spec, wait_request

PROJECT = pathlib.Path(__file__).parents[1] / "projects" / "ttl"


@pytest.fixture(scope="module")
async def served(database_url):
    # The test database: its gates (tests/graphs/durable.py) live there.
    app = await App(Settings(port=0, database_url=database_url, config=str(PROJECT / "langgraph.json"))).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield app, run_service_pb2_grpc.RunServiceStub(channel), thread_service_pb2_grpc.ThreadServiceStub(channel)
    finally:
        await app.stop(grace=1)


def _idle_for(dsn: str, thread_id: str, minutes: float) -> None:
    """As if the thread's last activity were `minutes` ago."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE graphrun_thread SET updated_at = now() - make_interval(secs => %s) WHERE thread_id = %s",
                     (minutes * 60, thread_id))


def _ttl(minutes: float, strategy=thread_pb2.TTL_STRATEGY_UNSPECIFIED) -> thread_pb2.ThreadTtl:
    return thread_pb2.ThreadTtl(ttl=duration_pb2.Duration(seconds=int(minutes * 60)), strategy=strategy)


async def _exists(threads, thread_id: str) -> bool:
    try:
        await threads.Get(pb.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT)
        return True
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND
        return False


async def test_a_thread_shows_its_ttl_and_when_it_expires(served):
    _, _, threads = served
    own = (await threads.Create(pb.ThreadServiceCreateRequest(ttl=_ttl(2, thread_pb2.TTL_STRATEGY_KEEP_LATEST)),
                                timeout=TIMEOUT)).thread
    assert own.ttl.ttl.seconds == 120 and own.ttl.strategy == thread_pb2.TTL_STRATEGY_KEEP_LATEST
    assert own.expires_at.ToDatetime() - own.updated_at.ToDatetime() == dt.timedelta(minutes=2)
    default = (await threads.Create(pb.ThreadServiceCreateRequest(), timeout=TIMEOUT)).thread
    assert not default.HasField("ttl")  # the server's default applies: 60 minutes
    assert default.expires_at.ToDatetime() - default.updated_at.ToDatetime() == dt.timedelta(minutes=60)


async def test_the_sweep_expires_idle_threads_and_spares_busy_and_recent_ones(served, database_url):
    app, runs, threads = served
    idle = (await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)).run.thread_id
    kept = (await threads.Create(pb.ThreadServiceCreateRequest(ttl=_ttl(5, thread_pb2.TTL_STRATEGY_KEEP_LATEST)),
                                 timeout=TIMEOUT)).thread.thread_id
    await runs.Wait(wait_request(assistant_id="steps", thread_id=kept, input={}), timeout=TIMEOUT)
    await runs.Wait(wait_request(assistant_id="steps", thread_id=kept, input={}), timeout=TIMEOUT)
    recent = (await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)).run.thread_id
    busy_run = (await runs.Create(rpb.RunServiceCreateRequest(spec=spec(
        assistant_id="durable", input={"tag": "ttl", "gates": {"n2": "{run_id}-{attempt}"}})), timeout=TIMEOUT)).run
    state_before = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=kept), timeout=TIMEOUT)
    for thread_id, minutes in ((idle, 61), (kept, 6), (recent, 59), (busy_run.thread_id, 120)):
        _idle_for(database_url, thread_id, minutes)

    swept = await app.thread_sweeper.sweep()

    assert swept >= 2
    assert not await _exists(threads, idle)  # the default: deleted
    assert await _exists(threads, recent)  # not idle long enough
    assert await _exists(threads, busy_run.thread_id)  # a run in flight: never
    history = await threads.GetHistory(pb.ThreadServiceGetHistoryRequest(thread_id=kept), timeout=TIMEOUT)
    assert [s.checkpoint.checkpoint_id for s in history.states] == [state_before.state.checkpoint.checkpoint_id]
    after = await threads.GetState(pb.ThreadServiceGetStateRequest(thread_id=kept), timeout=TIMEOUT)
    assert json_format.MessageToDict(after.state.values) == json_format.MessageToDict(state_before.state.values)
    open_gate(database_url, f"{busy_run.run_id}-1")


async def test_one_replica_sweeps_at_a_time(served, database_url):
    app, _, _ = served
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK,))  # another replica is sweeping
        assert await app.thread_sweeper.sweep() is None
        conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
    assert await app.thread_sweeper.sweep() is not None


@pytest.mark.parametrize("ttl, field", [(_ttl(0.5), "ttl.ttl"), (thread_pb2.ThreadTtl(strategy=9), "ttl.strategy")])
async def test_a_bad_ttl_names_the_field(served, ttl, field):
    _, _, threads = served
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await threads.Create(pb.ThreadServiceCreateRequest(ttl=ttl), timeout=TIMEOUT)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in details(bad.value)["violations"]


@pytest.mark.parametrize("ttl, message", [
    ({"strategy": "archive"}, "checkpointer.ttl.strategy must be 'delete' or 'keep_latest'"),
    ({"default_ttl": -5}, "checkpointer.ttl.default_ttl must be a positive number"),
    ("forever", "'checkpointer.ttl' must be an object"),
])
def test_a_bad_checkpointer_ttl_stops_the_server_with_one_line(tmp_path, ttl, message):
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"steps": str(PROJECT.parent.parent / "graphs" / "steps.py") + ":graph"},
                                  "checkpointer": {"ttl": ttl}}))
    with pytest.raises(ProjectError, match=message):
        load_project(str(config))
