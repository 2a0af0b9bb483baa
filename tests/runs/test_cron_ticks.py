"""Crons' ticks: each starts one ordinary run (Get, List by cron, Join, Cancel work on it), on a new
thread or the cron's thread; a tick while the thread is busy is skipped and recorded; missed ticks
cost one run, never a burst; nothing starts after the end time; a tick tried again (a replica whose
claim lapsed) gets the run it already has. On servers of their own, on a database of their own."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import psycopg
import pytest
from google.protobuf import field_mask_pb2, json_format, struct_pb2

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import assistant_service_pb2 as apb, assistant_service_pb2_grpc
from graphrun.v1 import cron_pb2, cron_service_pb2 as pb, cron_service_pb2_grpc, run_pb2, run_service_pb2 as rpb
from graphrun.v1 import run_service_pb2_grpc, thread_service_pb2 as tpb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import TIMEOUT

EVERY_SECOND = "* * * * * *"
HOURLY = "0 * * * *"


class Server:
    def __init__(self, app: App, channel: grpc.aio.Channel, dsn: str):
        self.app, self.dsn = app, dsn
        self.crons = cron_service_pb2_grpc.CronServiceStub(channel)
        self.runs = run_service_pb2_grpc.RunServiceStub(channel)
        self.threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
        self.assistants = assistant_service_pb2_grpc.AssistantServiceStub(channel)

    async def create(self, schedule: str, **fields) -> cron_pb2.Cron:
        fields.setdefault("spec", {"assistant_id": "steps", "input": {}})
        cron = json_format.ParseDict({"schedule": schedule, **fields}, cron_pb2.Cron())
        return (await self.crons.Create(pb.CronServiceCreateRequest(cron=cron), timeout=TIMEOUT)).cron

    async def get(self, cron_id: str) -> cron_pb2.Cron:
        return (await self.crons.Get(pb.CronServiceGetRequest(cron_id=cron_id), timeout=TIMEOUT)).cron

    async def delete(self, cron_id: str) -> None:
        await self.crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron_id), timeout=TIMEOUT)

    async def runs_of(self, cron_id: str) -> list[run_pb2.Run]:
        reply = await self.runs.List(rpb.RunServiceListRequest(cron_id=cron_id, page_size=1000), timeout=TIMEOUT)
        return list(reply.runs)

    def sql(self, statement: str, *params) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(statement, params)


async def until(probe, what: str):
    """Poll `probe` until it answers something true, within the tests' deadline."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while not (answer := await probe()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None
    return answer


@pytest.fixture(scope="module")
async def database(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        yield dsn


async def _serve(dsn: str, **settings) -> tuple[App, grpc.aio.Channel]:
    app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG, **settings)).start()
    return app, grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")


@pytest.fixture(scope="module")
async def server(database):
    app, channel = await _serve(database)
    try:
        yield Server(app, channel, database)
    finally:
        await channel.close()
        await app.stop(grace=1)


async def _later_round(server: Server) -> None:
    """Return once the scheduler has made a round after now: a new per-second cron's first run
    exists only once a round started after it was created."""
    marker = await server.create(EVERY_SECOND)
    await until(lambda: server.runs_of(marker.cron_id), "the marker cron ran")
    await server.delete(marker.cron_id)


async def test_each_tick_starts_an_ordinary_run_on_a_thread_of_its_own(server):
    cron = await server.create(EVERY_SECOND, spec={"assistant_id": "steps", "input": {"log": ["tick"]},
                                                   "metadata": {"from": "cron"}}, stream_mode=["updates"])
    runs = await until(lambda: _at_least(server.runs_of(cron.cron_id), 3), "three ticks started runs")
    await server.delete(cron.cron_id)

    assert all(r.cron_id == cron.cron_id for r in runs)
    assert len({r.thread_id for r in runs}) == len(runs)  # a new thread per tick
    ticks = [r.cron_tick_time.ToDatetime() for r in runs]
    assert len(set(ticks)) == len(runs) and all(t.microsecond == 0 for t in ticks)
    assert json_format.MessageToDict(runs[0].metadata) == {"from": "cron"}

    first = runs[-1]  # newest first
    events = [r.event async for r in server.runs.Join(rpb.RunServiceJoinRequest(run_id=first.run_id),
                                                        timeout=TIMEOUT)]
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert [e.updates.node for e in events if e.HasField("updates")] == ["first", "second", "third"]
    got = (await server.runs.Get(rpb.RunServiceGetRequest(run_id=first.run_id), timeout=TIMEOUT)).run
    assert got.cron_id == cron.cron_id and got.cron_tick_time == first.cron_tick_time
    state = await server.threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=first.thread_id),
                                          timeout=TIMEOUT)
    assert json_format.MessageToDict(state.state.values)["log"] == ["tick", "first", "second", "third"]

    listed = {r.run_id for r in await server.runs_of(cron.cron_id)}
    everything = await server.runs.List(rpb.RunServiceListRequest(page_size=1000), timeout=TIMEOUT)
    assert listed == {r.run_id for r in everything.runs if r.cron_id == cron.cron_id}  # the filter finds them all


async def _at_least(runs, n: int):
    runs = await runs
    return runs if len(runs) >= n else None


async def test_a_tick_while_the_crons_thread_is_busy_is_skipped_and_recorded(server):
    thread = (await server.threads.Create(tpb.ThreadServiceCreateRequest(), timeout=TIMEOUT)).thread
    cron = await server.create(EVERY_SECOND, spec={"assistant_id": "steps", "thread_id": thread.thread_id,
                                                   "input": {"hang_at": "second"}})
    running = (await until(lambda: server.runs_of(cron.cron_id), "the first tick ran"))[0]
    skipped = await until(lambda: _skipped(server, cron.cron_id), "a tick was skipped")
    await server.delete(cron.cron_id)

    assert running.thread_id == thread.thread_id
    assert skipped.last_skip.reason == "THREAD_BUSY" and thread.thread_id in skipped.last_skip.message
    assert skipped.last_skip.tick_time.ToDatetime() > running.cron_tick_time.ToDatetime()
    assert [r.run_id for r in await server.runs_of(cron.cron_id)] == [running.run_id]  # the skipped tick made none
    assert skipped.last_run_id == running.run_id

    cancelled = await server.runs.Cancel(rpb.RunServiceCancelRequest(run_id=running.run_id, wait=True),
                                         timeout=TIMEOUT)
    assert cancelled.run.status == run_pb2.RUN_STATUS_CANCELLED


async def _skipped(server: Server, cron_id: str):
    cron = await server.get(cron_id)
    return cron if cron.HasField("last_skip") else None


async def test_enqueue_queues_a_tick_behind_the_run_in_flight(server):
    thread = (await server.threads.Create(tpb.ThreadServiceCreateRequest(), timeout=TIMEOUT)).thread
    cron = await server.create(EVERY_SECOND, spec={"assistant_id": "steps", "thread_id": thread.thread_id,
                                                   "input": {"hang_at": "second"},
                                                   "multitask_strategy": "MULTITASK_STRATEGY_ENQUEUE"})
    runs = await until(lambda: _at_least(server.runs_of(cron.cron_id), 2), "two ticks started runs")
    await server.delete(cron.cron_id)
    assert runs[-1].status == run_pb2.RUN_STATUS_RUNNING
    assert {r.status for r in runs[:-1]} == {run_pb2.RUN_STATUS_PENDING}  # queued behind the first
    assert {r.thread_id for r in runs} == {thread.thread_id}
    for run in await server.runs_of(cron.cron_id):  # the queued ones first, then the one in flight
        await server.runs.Cancel(rpb.RunServiceCancelRequest(run_id=run.run_id, wait=True), timeout=TIMEOUT)


async def test_missed_ticks_start_one_run_when_a_replica_starts_not_a_burst(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        quiet, quiet_channel = await _serve(dsn, crons=False)  # serves CronService, starts no runs
        try:
            idle = Server(quiet, quiet_channel, dsn)
            cron = await idle.create(HOURLY)
            # As if no replica had run for five hours: the cron's next tick is five ticks ago.
            idle.sql("UPDATE graphrun_cron SET next_run_at = date_trunc('hour', now()) - interval '5 hours'"
                     " WHERE cron_id = %s", cron.cron_id)
            late = (await idle.get(cron.cron_id)).next_run_time.ToDatetime(tzinfo=dt.UTC)

            app, channel = await _serve(dsn)  # a replica that runs crons starts
            try:
                ticking = Server(app, channel, dsn)
                await until(lambda: ticking.runs_of(cron.cron_id), "the late tick ran")
                await _later_round(ticking)
                ran = await ticking.runs_of(cron.cron_id)
                after = await ticking.get(cron.cron_id)
            finally:
                await channel.close()
                await app.stop(grace=1)
        finally:
            await quiet_channel.close()
            await quiet.stop(grace=1)
    assert len(ran) == 1  # six ticks were missed (five hours ago to this hour): one run
    assert ran[0].cron_tick_time.ToDatetime(tzinfo=dt.UTC) == late  # the tick that was due
    assert after.last_run_id == ran[0].run_id and after.last_tick_time == ran[0].cron_tick_time
    assert after.next_run_time.ToDatetime(tzinfo=dt.UTC) >= late + dt.timedelta(hours=6)  # on from now


async def test_no_run_starts_after_the_end_time(server):
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    cron = await server.create(EVERY_SECOND, end_time=end.isoformat())
    ended = await until(lambda: _ended(server, cron.cron_id), "the cron has no next tick")
    runs = await server.runs_of(cron.cron_id)
    await _later_round(server)
    assert [r.run_id for r in await server.runs_of(cron.cron_id)] == [r.run_id for r in runs]
    assert runs and all(r.cron_tick_time.ToDatetime(tzinfo=dt.UTC) <= end for r in runs)
    assert ended.last_tick_time.ToDatetime(tzinfo=dt.UTC) <= end
    await server.delete(cron.cron_id)


async def _ended(server: Server, cron_id: str):
    cron = await server.get(cron_id)
    return cron if cron.HasField("last_tick_time") and not cron.HasField("next_run_time") else None


async def test_a_late_tick_found_after_the_end_time_starts_nothing(server):
    cron = await server.create(HOURLY, end_time=(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat())
    server.sql("UPDATE graphrun_cron SET next_run_at = date_trunc('hour', now()) - interval '1 hour',"
               " end_time = date_trunc('hour', now()) - interval '30 minutes' WHERE cron_id = %s", cron.cron_id)
    server.app.cron_scheduler.wake()
    ended = await until(lambda: _ended(server, cron.cron_id), "the late tick was handled")
    assert ended.last_skip.reason == "END_TIME_PASSED"
    assert await server.runs_of(cron.cron_id) == []
    await server.delete(cron.cron_id)


async def test_a_tick_started_again_gets_the_run_it_already_has(server):
    """A replica whose claim lapsed (it stalled) and one that took the tick over both start it: the
    second meets the first's run, under the run id the cron and the tick give it."""
    cron = await server.create(HOURLY)
    server.sql("UPDATE graphrun_cron SET next_run_at = date_trunc('hour', now()) WHERE cron_id = %s", cron.cron_id)
    server.app.cron_scheduler.wake()
    await until(lambda: _moved_on(server, cron.cron_id), "the due tick ran")
    first = await server.get(cron.cron_id)
    server.sql("UPDATE graphrun_cron SET next_run_at = %s WHERE cron_id = %s",
               first.last_tick_time.ToDatetime(tzinfo=dt.UTC), cron.cron_id)  # the same tick is due again
    server.app.cron_scheduler.wake()
    await until(lambda: _moved_on(server, cron.cron_id), "the tick ran again")
    again = await server.get(cron.cron_id)
    assert first.last_run_id
    assert again.last_run_id == first.last_run_id and again.last_tick_time == first.last_tick_time
    assert [r.run_id for r in await server.runs_of(cron.cron_id)] == [first.last_run_id]
    await server.delete(cron.cron_id)


async def _moved_on(server: Server, cron_id: str) -> bool:
    """Whether the cron's next tick is in the future again: its due tick was handled."""
    with psycopg.connect(server.dsn) as conn:
        row = conn.execute("SELECT next_run_at > now() FROM graphrun_cron WHERE cron_id = %s", (cron_id,)).fetchone()
    return bool(row and row[0])


async def test_a_paused_cron_starts_nothing_and_resumes_from_now(server):
    cron = await server.create(EVERY_SECOND, paused=True)
    assert not cron.HasField("next_run_time")
    await _later_round(server)
    assert await server.runs_of(cron.cron_id) == []
    resumed = (await server.crons.Update(pb.CronServiceUpdateRequest(
        cron=cron_pb2.Cron(cron_id=cron.cron_id), update_mask=field_mask_pb2.FieldMask(paths=["paused"])),
        timeout=TIMEOUT)).cron
    runs = await until(lambda: server.runs_of(cron.cron_id), "the resumed cron ran")
    await server.delete(cron.cron_id)
    assert runs[-1].cron_tick_time == resumed.next_run_time  # the ticks it slept through are not made up


async def test_a_tick_whose_run_is_refused_is_skipped_and_the_cron_can_still_be_changed(server):
    cron = await server.create(EVERY_SECOND, paused=True)
    # As if the graph had left the server's configuration since the cron was made.
    server.sql("UPDATE graphrun_cron SET assistant_id = 'gone', spec = jsonb_set(spec, '{assistant_id}', '\"gone\"')"
               " WHERE cron_id = %s", cron.cron_id)
    paths = field_mask_pb2.FieldMask(paths=["paused"])
    await server.crons.Update(pb.CronServiceUpdateRequest(cron=cron_pb2.Cron(cron_id=cron.cron_id), update_mask=paths),
                              timeout=TIMEOUT)
    skipped = await until(lambda: _skipped(server, cron.cron_id), "a tick was skipped")
    assert skipped.last_skip.reason == "ASSISTANT_NOT_FOUND" and not skipped.last_run_id
    paused = await server.crons.Update(pb.CronServiceUpdateRequest(
        cron=cron_pb2.Cron(cron_id=cron.cron_id, paused=True), update_mask=paths), timeout=TIMEOUT)
    assert paused.cron.paused and not paused.cron.HasField("next_run_time")
    assert await server.runs_of(cron.cron_id) == []
    await server.delete(cron.cron_id)


async def test_a_cron_of_a_created_assistant_runs_its_current_version(server):
    created = await server.assistants.Create(apb.AssistantServiceCreateRequest(
        graph_id="steps", name="nightly", config=json_format.ParseDict({"tags": ["v1"]}, struct_pb2.Struct())),
        timeout=TIMEOUT)
    assistant_id = created.assistant.assistant_id
    cron = await server.create(EVERY_SECOND, paused=True, spec={"assistant_id": assistant_id, "input": {}})
    await server.assistants.Update(apb.AssistantServiceUpdateRequest(
        assistant_id=assistant_id, config=json_format.ParseDict({"tags": ["v2"]}, struct_pb2.Struct())),
        timeout=TIMEOUT)
    await server.crons.Update(pb.CronServiceUpdateRequest(
        cron=cron_pb2.Cron(cron_id=cron.cron_id), update_mask=field_mask_pb2.FieldMask(paths=["paused"])),
        timeout=TIMEOUT)
    run = (await until(lambda: server.runs_of(cron.cron_id), "the cron ran"))[-1]
    await server.delete(cron.cron_id)
    assert run.assistant_id == assistant_id and run.graph_id == "steps" and run.assistant_version == 2
