"""A cron over three replica processes on one database: every replica's scheduler wakes for each
tick of a per-second schedule, and each tick starts exactly one run, which any replica can look up
and follow."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import json_format

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import cron_pb2, cron_service_pb2 as pb, cron_service_pb2_grpc, run_pb2, run_service_pb2 as rpb
from support.helpers import TIMEOUT
from support.replicas import Replica

pytestmark = pytest.mark.replicas  # real server processes: the slow tests (`-m "not replicas"` skips them)

TICKS = 4


async def _runs(replica: Replica, cron_id: str) -> list[run_pb2.Run]:
    reply = await replica.runs.List(rpb.RunServiceListRequest(cron_id=cron_id, page_size=1000), timeout=TIMEOUT)
    return list(reply.runs)


async def test_a_cron_over_three_replicas_starts_one_run_per_tick(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        # A short interval: each replica sees the new cron within 0.2 s, so all three take part in every tick.
        replicas = [Replica(name, dsn, GRAPHS_CONFIG, cron_interval=0.2) for name in "abc"]
        try:
            await asyncio.gather(*(r.start() for r in replicas))
            crons = cron_service_pb2_grpc.CronServiceStub(replicas[0].channel)
            cron = json_format.ParseDict({"schedule": "* * * * * *", "spec": {"assistant_id": "steps", "input": {}}},
                                         cron_pb2.Cron())
            cron = (await crons.Create(pb.CronServiceCreateRequest(cron=cron), timeout=TIMEOUT)).cron
            async with asyncio.timeout(TIMEOUT):
                while len(runs := await _runs(replicas[1], cron.cron_id)) < TICKS:
                    await asyncio.sleep(0.1)  # polling the condition, within the deadline
            await crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron.cron_id), timeout=TIMEOUT)
            runs = await _runs(replicas[2], cron.cron_id)  # whatever a tick in flight at the delete added

            ticks = [r.cron_tick_time.ToDatetime() for r in runs]
            assert len(set(ticks)) == len(runs) >= TICKS, sorted(ticks)  # every tick: exactly one run
            assert all(r.cron_id == cron.cron_id for r in runs)
            oldest = runs[-1]
            events = [r.event async for r in replicas[2].runs.Join(rpb.RunServiceJoinRequest(run_id=oldest.run_id),
                                                                   timeout=TIMEOUT)]
            assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
        finally:
            await asyncio.gather(*(r.close() for r in replicas))
