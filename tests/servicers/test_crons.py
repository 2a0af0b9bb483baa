"""CronService: each RPC and its refusals (INVALID_ARGUMENT naming the field, NOT_FOUND for another
owner's cron or thread, PERMISSION_DENIED for a read-only caller), on a server of its own with
authentication on. The schedules here tick once a year, so no run starts: what ticks do is
tests/runs/test_cron_ticks.py's."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

import grpc
import jwt
import pytest
from google.protobuf import field_mask_pb2, json_format

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import cron_pb2, cron_service_pb2 as pb, cron_service_pb2_grpc, run_pb2
from graphrun.v1 import thread_service_pb2 as tpb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import TIMEOUT, details

SECRET = "test-secret-of-enough-length-for-hs256"
YEARLY = "0 0 1 1 *"
ALICE, BOB = "alice", "bob"


def _bearer(subject: str, **claims):
    now = int(time.time())
    token = jwt.encode({"sub": subject, "aud": "graphrun", "iss": "tests", "exp": now + 300, "iat": now, **claims},
                       SECRET, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def secured(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG, auth=AuthSettings(
            audience="graphrun", issuer="tests", jwt_secret=SECRET))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield channel
        finally:
            await app.stop(grace=1)


@pytest.fixture
def crons(secured):
    return cron_service_pb2_grpc.CronServiceStub(secured)


@pytest.fixture
def threads(secured):
    return thread_service_pb2_grpc.ThreadServiceStub(secured)


def _cron(**fields) -> cron_pb2.Cron:
    fields.setdefault("schedule", YEARLY)
    fields.setdefault("spec", {"assistant_id": "steps", "input": {}})
    return json_format.ParseDict(fields, cron_pb2.Cron())


async def _create(crons, caller: str = ALICE, **fields) -> cron_pb2.Cron:
    reply = await crons.Create(pb.CronServiceCreateRequest(cron=_cron(**fields)), metadata=_bearer(caller),
                               timeout=TIMEOUT)
    return reply.cron


async def _refused(call, code=grpc.StatusCode.INVALID_ARGUMENT) -> dict:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return details(refused.value)


def _next_new_year(zone: str) -> dt.datetime:
    now = dt.datetime.now(ZoneInfo(zone))
    return dt.datetime(now.year + 1, 1, 1, tzinfo=ZoneInfo(zone))


async def test_create_returns_the_cron_with_its_first_tick_in_its_time_zone(crons):
    cron = await _create(crons, timezone="Asia/Tokyo", metadata={"team": "ops"},
                         spec={"assistant_id": "steps", "input": {"log": ["start"]}, "metadata": {"kind": "nightly"},
                               "multitask_strategy": "MULTITASK_STRATEGY_ENQUEUE", "timeout": "30s"},
                         stream_mode=["updates"])
    assert uuid.UUID(cron.cron_id)
    assert cron.schedule == YEARLY and cron.timezone == "Asia/Tokyo" and not cron.paused
    assert cron.next_run_time.ToDatetime(tzinfo=dt.UTC) == _next_new_year("Asia/Tokyo")
    assert json_format.MessageToDict(cron.metadata) == {"team": "ops"}
    assert json_format.MessageToDict(cron.spec, preserving_proto_field_name=True) == {
        "assistant_id": "steps", "input": {"log": ["start"]}, "metadata": {"kind": "nightly"},
        "multitask_strategy": "MULTITASK_STRATEGY_ENQUEUE", "timeout": "30s", "durability": "DURABILITY_SYNC",
        "on_completion": "ON_COMPLETION_KEEP"}
    assert list(cron.stream_mode) == ["updates"]
    assert not cron.last_run_id and not cron.HasField("last_tick_time") and not cron.HasField("last_skip")
    got = await crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=_bearer(ALICE), timeout=TIMEOUT)
    assert got.cron == cron


async def test_a_schedule_with_seconds_and_the_default_time_zone(crons):
    cron = await _create(crons, schedule="*/20 * * * * *")
    assert cron.timezone == "UTC"
    first = cron.next_run_time.ToDatetime(tzinfo=dt.UTC)
    assert first.second % 20 == 0 and first > cron.created_at.ToDatetime(tzinfo=dt.UTC)
    await crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron.cron_id), metadata=_bearer(ALICE), timeout=TIMEOUT)


async def test_a_cron_on_a_thread_is_deleted_with_it(crons, threads):
    thread = await threads.Create(tpb.ThreadServiceCreateRequest(), metadata=_bearer(ALICE), timeout=TIMEOUT)
    cron = await _create(crons, spec={"assistant_id": "steps", "thread_id": thread.thread.thread_id})
    assert cron.spec.thread_id == thread.thread.thread_id and not cron.spec.HasField("input")
    await threads.Delete(tpb.ThreadServiceDeleteRequest(thread_id=thread.thread.thread_id), metadata=_bearer(ALICE),
                         timeout=TIMEOUT)
    gone = await _refused(crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=_bearer(ALICE),
                                    timeout=TIMEOUT), grpc.StatusCode.NOT_FOUND)
    assert gone["reason"] == "CRON_NOT_FOUND"


@pytest.mark.parametrize("fields, field", [
    ({"schedule": ""}, "cron.schedule"),
    ({"schedule": "61 * * * *"}, "cron.schedule"),
    ({"schedule": "* * *"}, "cron.schedule"),
    ({"schedule": "0 0 30 2 *"}, "cron.schedule"),  # February 30th: never
    ({"timezone": "Mars/Olympus_Mons"}, "cron.timezone"),
    ({"timezone": "../../etc/passwd"}, "cron.timezone"),
    ({"cron_id": "nope"}, "cron.cron_id"),
    ({"end_time": "2001-01-01T00:00:00Z"}, "cron.end_time"),
    ({"spec": {"input": {}}}, "cron.spec.assistant_id"),
    ({"spec": {"assistant_id": "steps"}}, "cron.spec.input"),  # a thread per tick needs input
    ({"spec": {"assistant_id": "steps", "input": {}, "thread_id": "nope"}}, "cron.spec.thread_id"),
    ({"spec": {"assistant_id": "steps", "input": {}, "config": {"bogus": 1}}}, "cron.spec.config.bogus"),
    ({"spec": {"assistant_id": "steps", "input": {}, "interrupt_before": ["nowhere"]}},
     "cron.spec.interrupt_before[0]"),
    ({"spec": {"assistant_id": "approval", "input": {"messages": [{"role": "user"}]}}},
     "cron.spec.input.messages[0]"),
    ({"spec": {"assistant_id": "steps", "input": {}, "command": {"goto": ["first"]}}}, "cron.spec.command"),
    ({"spec": {"assistant_id": "steps", "input": {}, "request_id": "mine"}}, "cron.spec.request_id"),
    ({"spec": {"assistant_id": "steps", "input": {}, "on_disconnect": "ON_DISCONNECT_CANCEL"}},
     "cron.spec.on_disconnect"),
    ({"spec": {"assistant_id": "steps", "input": {}, "granularity": "GRANULARITY_LOW"}}, "cron.spec.granularity"),
    ({"spec": {"assistant_id": "steps", "input": {}, "if_not_exists": "IF_NOT_EXISTS_CREATE"}},
     "cron.spec.if_not_exists"),
    ({"spec": {"assistant_id": "steps", "input": {}, "webhook": "https://hooks.example.com/x"}},
     "cron.spec.webhook"),  # this server allows no webhooks
    ({"stream_mode": ["nonsense"]}, "cron.stream_mode[0]"),
])
async def test_create_refuses_a_bad_cron_naming_the_field(crons, fields, field):
    refused = await _refused(crons.Create(pb.CronServiceCreateRequest(cron=_cron(**fields)), metadata=_bearer(ALICE),
                                          timeout=TIMEOUT))
    assert field in refused["violations"], refused["violations"]
    listed = await crons.List(pb.CronServiceListRequest(page_size=1000), metadata=_bearer(ALICE), timeout=TIMEOUT)
    assert all(c.schedule != fields.get("schedule") for c in listed.crons if "schedule" in fields)


async def test_an_end_time_before_the_first_tick_is_refused(crons):
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    refused = await _refused(crons.Create(pb.CronServiceCreateRequest(cron=_cron(end_time=soon.isoformat())),
                                          metadata=_bearer(ALICE), timeout=TIMEOUT))
    assert "first tick" in refused["violations"]["cron.end_time"]


async def test_an_unknown_assistant_or_another_owners_thread_is_not_found(crons, threads):
    missing = await _refused(crons.Create(pb.CronServiceCreateRequest(cron=_cron(
        spec={"assistant_id": "no-such-graph", "input": {}})), metadata=_bearer(ALICE), timeout=TIMEOUT),
        grpc.StatusCode.NOT_FOUND)
    assert missing["reason"] == "ASSISTANT_NOT_FOUND"
    bobs = await threads.Create(tpb.ThreadServiceCreateRequest(), metadata=_bearer(BOB), timeout=TIMEOUT)
    for thread_id in (bobs.thread.thread_id, str(uuid.uuid4())):
        hidden = await _refused(crons.Create(pb.CronServiceCreateRequest(cron=_cron(
            spec={"assistant_id": "steps", "thread_id": thread_id})), metadata=_bearer(ALICE), timeout=TIMEOUT),
            grpc.StatusCode.NOT_FOUND)
        assert hidden["reason"] == "THREAD_NOT_FOUND"


async def test_a_taken_cron_id_already_exists(crons):
    cron = await _create(crons)
    taken = await _refused(crons.Create(pb.CronServiceCreateRequest(cron=_cron(cron_id=cron.cron_id)),
                                        metadata=_bearer(BOB), timeout=TIMEOUT), grpc.StatusCode.ALREADY_EXISTS)
    assert taken["reason"] == "CRON_ALREADY_EXISTS"


async def test_update_changes_only_the_masked_fields(crons):
    cron = await _create(crons, metadata={"v": 1})
    change = _cron(cron_id=cron.cron_id, schedule="0 12 * * *", timezone="Europe/Berlin", metadata={"v": 2},
                   spec={"assistant_id": "agent", "input": {}})
    updated = (await crons.Update(pb.CronServiceUpdateRequest(
        cron=change, update_mask=field_mask_pb2.FieldMask(paths=["schedule", "timezone"])),
        metadata=_bearer(ALICE), timeout=TIMEOUT)).cron
    assert updated.schedule == "0 12 * * *" and updated.timezone == "Europe/Berlin"
    assert json_format.MessageToDict(updated.metadata) == {"v": 1} and updated.spec.assistant_id == "steps"
    berlin = updated.next_run_time.ToDatetime(tzinfo=dt.UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert (berlin.hour, berlin.minute) == (12, 0)
    assert updated.updated_at.ToDatetime() > cron.updated_at.ToDatetime()

    paused = (await crons.Update(pb.CronServiceUpdateRequest(
        cron=cron_pb2.Cron(cron_id=cron.cron_id, paused=True), update_mask=field_mask_pb2.FieldMask(paths=["paused"])),
        metadata=_bearer(ALICE), timeout=TIMEOUT)).cron
    assert paused.paused and not paused.HasField("next_run_time") and paused.schedule == "0 12 * * *"
    resumed = (await crons.Update(pb.CronServiceUpdateRequest(
        cron=cron_pb2.Cron(cron_id=cron.cron_id), update_mask=field_mask_pb2.FieldMask(paths=["paused"])),
        metadata=_bearer(ALICE), timeout=TIMEOUT)).cron
    assert not resumed.paused and resumed.next_run_time == updated.next_run_time


async def test_update_without_a_mask_replaces_the_whole_cron(crons):
    cron = await _create(crons, metadata={"v": 1}, stream_mode=["updates"])
    replaced = (await crons.Update(pb.CronServiceUpdateRequest(cron=_cron(
        cron_id=cron.cron_id, spec={"assistant_id": "agent", "input": {"messages": []}})),
        metadata=_bearer(ALICE), timeout=TIMEOUT)).cron
    assert replaced.spec.assistant_id == "agent" and list(replaced.stream_mode) == ["values"]
    assert json_format.MessageToDict(replaced.metadata) == {}


@pytest.mark.parametrize("cron, paths, field", [
    ({"cron_id": ""}, ["paused"], "cron.cron_id"),
    ({}, ["schedule", "owner"], "update_mask.paths[1]"),
    ({"schedule": "every day"}, ["schedule"], "cron.schedule"),
    ({"timezone": "Nowhere"}, ["timezone"], "cron.timezone"),
    ({"end_time": "2001-01-01T00:00:00Z"}, ["end_time"], "cron.end_time"),
    ({"spec": {"assistant_id": "steps", "input": {}, "checkpoint_id": str(uuid.uuid4())}}, ["spec"],
     "cron.spec.checkpoint_id"),
])
async def test_update_refuses_a_bad_change_naming_the_field(crons, cron, paths, field):
    existing = await _create(crons)
    change = json_format.ParseDict({"cron_id": existing.cron_id, **cron}, cron_pb2.Cron())
    refused = await _refused(crons.Update(pb.CronServiceUpdateRequest(
        cron=change, update_mask=field_mask_pb2.FieldMask(paths=paths)), metadata=_bearer(ALICE), timeout=TIMEOUT))
    assert field in refused["violations"], refused["violations"]
    after = await crons.Get(pb.CronServiceGetRequest(cron_id=existing.cron_id), metadata=_bearer(ALICE),
                            timeout=TIMEOUT)
    assert after.cron == existing  # nothing changed


async def test_list_pages_and_filters_the_callers_crons(crons, threads):
    carol = "carol"  # a caller of its own, so the list holds only this test's crons
    thread = await threads.Create(tpb.ThreadServiceCreateRequest(), metadata=_bearer(carol), timeout=TIMEOUT)
    made = [await _create(crons, carol) for _ in range(3)]
    made.append(await _create(crons, carol, spec={"assistant_id": "agent", "thread_id": thread.thread.thread_id}))
    await _create(crons, "dave")

    seen, token = [], ""
    while True:
        page = await crons.List(pb.CronServiceListRequest(page_size=3, page_token=token), metadata=_bearer(carol),
                                timeout=TIMEOUT)
        seen += [c.cron_id for c in page.crons]
        token = page.next_page_token
        if not token:
            break
    assert seen == [c.cron_id for c in reversed(made)]  # newest first, only carol's
    by_assistant = await crons.List(pb.CronServiceListRequest(assistant_id="agent"), metadata=_bearer(carol),
                                    timeout=TIMEOUT)
    by_thread = await crons.List(pb.CronServiceListRequest(thread_id=thread.thread.thread_id),
                                 metadata=_bearer(carol), timeout=TIMEOUT)
    assert [c.cron_id for c in by_assistant.crons] == [c.cron_id for c in by_thread.crons] == [made[-1].cron_id]


@pytest.mark.parametrize("request_, field", [
    (pb.CronServiceListRequest(page_size=1001), "page_size"),
    (pb.CronServiceListRequest(thread_id="nope"), "thread_id"),
    (pb.CronServiceListRequest(page_token="%%%"), "page_token"),
])
async def test_list_refuses_bad_filters(crons, request_, field):
    refused = await _refused(crons.List(request_, metadata=_bearer(ALICE), timeout=TIMEOUT))
    assert field in refused["violations"]


async def test_another_owners_cron_is_not_found_but_an_admin_reaches_it(crons):
    cron = await _create(crons)
    bob = _bearer(BOB)
    for call in (crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=bob, timeout=TIMEOUT),
                 crons.Update(pb.CronServiceUpdateRequest(cron=cron_pb2.Cron(cron_id=cron.cron_id, paused=True),
                                                          update_mask=field_mask_pb2.FieldMask(paths=["paused"])),
                              metadata=bob, timeout=TIMEOUT),
                 crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron.cron_id), metadata=bob, timeout=TIMEOUT)):
        assert (await _refused(call, grpc.StatusCode.NOT_FOUND))["reason"] == "CRON_NOT_FOUND"
    listed = await crons.List(pb.CronServiceListRequest(page_size=1000), metadata=bob, timeout=TIMEOUT)
    assert cron.cron_id not in {c.cron_id for c in listed.crons}

    admin = _bearer("ops", scope="graphrun:admin")
    seen = await crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=admin, timeout=TIMEOUT)
    assert seen.cron == cron
    await crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron.cron_id), metadata=admin, timeout=TIMEOUT)
    gone = crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=_bearer(ALICE), timeout=TIMEOUT)
    assert (await _refused(gone, grpc.StatusCode.NOT_FOUND))["reason"] == "CRON_NOT_FOUND"


async def test_unknown_or_malformed_ids(crons):
    for call in (crons.Get(pb.CronServiceGetRequest(cron_id=str(uuid.uuid4())), metadata=_bearer(ALICE),
                           timeout=TIMEOUT),
                 crons.Delete(pb.CronServiceDeleteRequest(cron_id=str(uuid.uuid4())), metadata=_bearer(ALICE),
                              timeout=TIMEOUT)):
        assert (await _refused(call, grpc.StatusCode.NOT_FOUND))["reason"] == "CRON_NOT_FOUND"
    for call in (crons.Get(pb.CronServiceGetRequest(cron_id="nope"), metadata=_bearer(ALICE), timeout=TIMEOUT),
                 crons.Delete(pb.CronServiceDeleteRequest(), metadata=_bearer(ALICE), timeout=TIMEOUT)):
        assert "cron_id" in (await _refused(call))["violations"]


async def test_a_read_only_caller_may_look_but_not_change(crons):
    cron = await _create(crons)
    reader = _bearer(ALICE, scope="graphrun:read")
    seen = await crons.Get(pb.CronServiceGetRequest(cron_id=cron.cron_id), metadata=reader, timeout=TIMEOUT)
    assert seen.cron == cron
    await crons.List(pb.CronServiceListRequest(), metadata=reader, timeout=TIMEOUT)
    for call in (crons.Create(pb.CronServiceCreateRequest(cron=_cron()), metadata=reader, timeout=TIMEOUT),
                 crons.Delete(pb.CronServiceDeleteRequest(cron_id=cron.cron_id), metadata=reader, timeout=TIMEOUT)):
        assert (await _refused(call, grpc.StatusCode.PERMISSION_DENIED))["reason"] == "READ_ONLY_SCOPE"


async def test_the_spec_of_a_cron_round_trips(crons):
    cron = await _create(crons, spec={
        "assistant_id": "steps", "input": {"log": []}, "config": {"tags": ["a"], "recursion_limit": 5},
        "context": {}, "interrupt_after": ["first"], "durability": "DURABILITY_EXIT",
        "on_completion": "ON_COMPLETION_DELETE"}, subgraphs=True)
    assert cron.spec.durability == run_pb2.DURABILITY_EXIT and list(cron.spec.interrupt_after) == ["first"]
    assert cron.spec.HasField("context") and cron.subgraphs
    again = await _create(crons, spec=json_format.MessageToDict(cron.spec), subgraphs=True)
    assert again.spec == cron.spec
