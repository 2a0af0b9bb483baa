"""AssistantService: assistants made of a served graph, with their own config, context, metadata
and versions; each graph's default assistant (id: the graph id) as before and unchangeable; every
refusal names its field; another caller's assistant reads as one that does not exist."""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pytest
from google.protobuf import json_format

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import assistant_service_pb2 as pb, assistant_service_pb2_grpc, run_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import TIMEOUT, details, wait_request

SECRET = "test-secret-of-enough-length-for-hs256"


def _request(cls, **fields):
    return json_format.ParseDict(fields, cls())


def _dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


async def _create(assistants, credentials=None, **fields) -> dict:
    fields.setdefault("graph_id", "configured")
    created = await assistants.Create(_request(pb.AssistantServiceCreateRequest, **fields), metadata=credentials,
                                      timeout=TIMEOUT)
    return _dict(created.assistant)


async def _refused(call, code=grpc.StatusCode.INVALID_ARGUMENT) -> dict:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == code, refused.value.details()
    return details(refused.value)


async def test_create_stores_the_configuration_and_get_shows_it_with_the_graphs_schemas(assistants):
    created = await _create(assistants, name="Terse", description="answers in one line",
                            config={"configurable": {"tone": "terse"}, "tags": ["terse"], "recursion_limit": 7},
                            context={"model": "large", "temperature": 0.1}, metadata={"team": "docs"})
    assistant_id = created["assistant_id"]
    assert uuid.UUID(assistant_id) and created["graph_id"] == "configured" and created["version"] == 1
    got = _dict((await assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id),
                                      timeout=TIMEOUT)).assistant)
    assert got == created
    assert got["name"] == "Terse" and got["description"] == "answers in one line"
    assert got["config"] == {"configurable": {"tone": "terse"}, "tags": ["terse"], "recursion_limit": 7}
    assert got["context"] == {"model": "large", "temperature": 0.1} and got["metadata"] == {"team": "docs"}
    assert got["nodes"] == ["show"] and "user" in got["context_schema"]["properties"]  # the graph's
    assert got["created_at"] == got["updated_at"]
    updated = await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                               name="Terser"), timeout=TIMEOUT)
    assert updated.assistant.updated_at.ToDatetime() > updated.assistant.created_at.ToDatetime()
    given_id = str(uuid.uuid4())
    assert (await _create(assistants, assistant_id=given_id.upper()))["assistant_id"] == given_id
    info = await _refused(_create(assistants, assistant_id=given_id), grpc.StatusCode.ALREADY_EXISTS)
    assert info["reason"] == "ASSISTANT_ALREADY_EXISTS"


async def test_update_writes_the_next_version_and_set_latest_brings_one_back(assistants):
    created = await _create(assistants, name="v1", config={"configurable": {"tone": "terse"}},
                            context={"model": "large"}, metadata={"stage": "one"})
    assistant_id = created["assistant_id"]
    updated = _dict((await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                                      name="v2", config={"tags": ["chatty"]}),
                                             timeout=TIMEOUT)).assistant)
    assert updated["version"] == 2 and updated["name"] == "v2" and updated["config"] == {"tags": ["chatty"]}
    assert updated["context"] == {"model": "large"} and updated["metadata"] == {"stage": "one"}  # kept
    assert updated["created_at"] == created["created_at"]
    cleared = _dict((await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                                      description="", context={}), timeout=TIMEOUT)).assistant)
    assert cleared["version"] == 3 and "context" not in cleared and cleared["name"] == "v2"

    first = await assistants.ListVersions(pb.AssistantServiceListVersionsRequest(
        assistant_id=assistant_id, page_size=2), timeout=TIMEOUT)
    rest = await assistants.ListVersions(pb.AssistantServiceListVersionsRequest(
        assistant_id=assistant_id, page_size=2, page_token=first.next_page_token), timeout=TIMEOUT)
    versions = [_dict(v) for v in [*first.versions, *rest.versions]]
    assert [v["version"] for v in versions] == [3, 2, 1] and not rest.next_page_token
    assert versions[2]["name"] == "v1" and versions[2]["config"] == {"configurable": {"tone": "terse"}}
    assert versions[1]["config"] == {"tags": ["chatty"]}

    back = _dict((await assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id, version=1),
                                             timeout=TIMEOUT)).assistant)
    assert back["version"] == 1 and back["name"] == "v1" and back["config"] == {"configurable": {"tone": "terse"}}
    got = _dict((await assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id),
                                      timeout=TIMEOUT)).assistant)
    assert got["version"] == 1 and got["context"] == {"model": "large"}
    # The next update builds on the current version (1) and takes the next free number (4).
    fourth = _dict((await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                                     metadata={"stage": "four"}), timeout=TIMEOUT)).assistant)
    assert fourth["version"] == 4 and fourth["name"] == "v1" and fourth["metadata"] == {"stage": "four"}
    info = await _refused(assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id,
                                                                                   version=9), timeout=TIMEOUT),
                          grpc.StatusCode.NOT_FOUND)
    assert info["reason"] == "ASSISTANT_VERSION_NOT_FOUND"


async def test_list_filters_by_graph_and_metadata_and_pages_through_defaults_then_the_newest(assistants):
    tag = str(uuid.uuid4())
    made = [(await _create(assistants, graph_id=graph, metadata={"batch": tag, "i": i}))["assistant_id"]
            for i, graph in enumerate(["configured", "steps", "configured"])]
    by_metadata = await assistants.List(_request(pb.AssistantServiceListRequest, metadata={"batch": tag}),
                                        timeout=TIMEOUT)
    assert [a.assistant_id for a in by_metadata.assistants] == made[::-1]  # newest first, no defaults
    both = await assistants.List(_request(pb.AssistantServiceListRequest, metadata={"batch": tag},
                                          graph_id="configured"), timeout=TIMEOUT)
    assert [a.assistant_id for a in both.assistants] == [made[2], made[0]]

    everything = await assistants.List(pb.AssistantServiceListRequest(graph_id="configured", page_size=1000),
                                       timeout=TIMEOUT)
    paged, token = [], ""
    while True:
        page = await assistants.List(pb.AssistantServiceListRequest(graph_id="configured", page_size=1,
                                                                    page_token=token), timeout=TIMEOUT)
        assert len(page.assistants) == 1
        paged += [a.assistant_id for a in page.assistants]
        token = page.next_page_token
        if not token:
            break
    assert paged == [a.assistant_id for a in everything.assistants] and len(set(paged)) == len(paged)
    assert paged[0] == "configured" and {made[0], made[2]} <= set(paged) and made[1] not in paged
    assert paged.index(made[2]) < paged.index(made[0])
    defaults = await assistants.List(pb.AssistantServiceListRequest(), timeout=TIMEOUT)
    graph_ids = [a.assistant_id for a in defaults.assistants if a.assistant_id == a.graph_id]
    assert graph_ids == sorted(graph_ids) and {"agent", "steps", "configured"} <= set(graph_ids)
    assert [a.assistant_id for a in defaults.assistants][: len(graph_ids)] == graph_ids  # defaults first


async def test_delete_removes_the_assistant_and_its_versions(assistants, runs):
    assistant_id = (await _create(assistants, context={"user": "ada"}))["assistant_id"]
    await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id, name="two"),
                            timeout=TIMEOUT)
    await assistants.Delete(pb.AssistantServiceDeleteRequest(assistant_id=assistant_id), timeout=TIMEOUT)
    for call in (assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id), timeout=TIMEOUT),
                 assistants.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=assistant_id),
                                         timeout=TIMEOUT),
                 assistants.Delete(pb.AssistantServiceDeleteRequest(assistant_id=assistant_id), timeout=TIMEOUT),
                 runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)):
        assert (await _refused(call, grpc.StatusCode.NOT_FOUND))["reason"] == "ASSISTANT_NOT_FOUND"


async def test_a_graphs_default_assistant_is_as_before_and_cannot_be_changed(assistants, runs):
    default = _dict((await assistants.Get(pb.AssistantServiceGetRequest(assistant_id="configured"),
                                          timeout=TIMEOUT)).assistant)
    assert default["assistant_id"] == default["graph_id"] == default["name"] == "configured"
    assert default["version"] == 1 and "config" not in default and "context" not in default
    assert "created_at" not in default and default["nodes"] == ["show"]
    versions = await assistants.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id="configured"),
                                             timeout=TIMEOUT)
    assert [v.version for v in versions.versions] == [1] and not versions.next_page_token
    for call in (assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id="configured", name="x"),
                                   timeout=TIMEOUT),
                 assistants.Delete(pb.AssistantServiceDeleteRequest(assistant_id="configured"), timeout=TIMEOUT),
                 assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id="configured", version=1),
                                      timeout=TIMEOUT)):
        assert "assistant_id" in (await _refused(call))["violations"]
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    assert done.run.assistant_id == done.run.graph_id == "steps" and done.run.assistant_version == 1


@pytest.mark.parametrize("fields, field", [
    ({"graph_id": ""}, "graph_id"),
    ({"graph_id": "ghost"}, "graph_id"),
    ({"assistant_id": "not-a-uuid"}, "assistant_id"),
    ({"config": {"callbacks": []}}, "config.callbacks"),
    ({"config": {"configurable": {"thread_id": "x"}}}, "config.configurable.thread_id"),
    ({"config": {"recursion_limit": 0}}, "config.recursion_limit"),
    ({"config": {"tags": "one"}}, "config.tags"),
    ({"context": {"temperature": "hot"}}, "context.temperature"),
    ({"metadata": {"blob": "x" * 70_000}}, "metadata"),
    ({"name": "n" * 257}, "name"),
    ({"description": "nul\x00"}, "description"),
    ({"webhook": "https://hooks.example.com/x"}, "webhook"),  # webhooks are off on this server
])
async def test_create_refuses_bad_fields_naming_them(assistants, fields, field):
    info = await _refused(_create(assistants, **fields))
    assert field in info["violations"], info["violations"]


async def test_a_context_may_leave_required_fields_to_its_runs(assistants):
    created = await _create(assistants, context={"model": "large"})  # `user` is required, and left out
    assert created["context"] == {"model": "large"}


@pytest.mark.parametrize("call, field", [
    (lambda a, i: a.Get(pb.AssistantServiceGetRequest()), "assistant_id"),
    (lambda a, i: a.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=i, graph_id="ghost")), "graph_id"),
    (lambda a, i: a.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=i,
                                    context={"temperature": "hot"})), "context.temperature"),
    (lambda a, i: a.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=i, config={"x": 1})), "config.x"),
    (lambda a, i: a.Update(_request(pb.AssistantServiceUpdateRequest, name="x")), "assistant_id"),
    (lambda a, i: a.List(pb.AssistantServiceListRequest(page_size=-1)), "page_size"),
    (lambda a, i: a.List(pb.AssistantServiceListRequest(page_token="garbage")), "page_token"),
    (lambda a, i: a.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=i, page_size=1001)), "page_size"),
    (lambda a, i: a.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=i, page_token="x")),
     "page_token"),
    (lambda a, i: a.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=i, version=0)), "version"),
])
async def test_other_calls_refuse_bad_fields_naming_them(assistants, call, field):
    assistant_id = (await _create(assistants, context={"model": "large"}))["assistant_id"]
    info = await _refused(call(assistants, assistant_id))
    assert field in info["violations"], info["violations"]
    got = await assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id), timeout=TIMEOUT)
    assert got.assistant.version == 1  # nothing written


async def test_an_update_may_move_the_assistant_to_another_graph(assistants):
    assistant_id = (await _create(assistants, context={"model": "large"}))["assistant_id"]
    moved = await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                             graph_id="steps"), timeout=TIMEOUT)
    assert moved.assistant.graph_id == "steps" and list(moved.assistant.nodes) == ["first", "second", "third"]
    assert _dict(moved.assistant)["context"] == {"model": "large"}  # steps declares no schema: kept as it is


async def test_unknown_ids_are_not_found(assistants):
    for assistant_id in (str(uuid.uuid4()), "ghost"):
        for call in (assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id), timeout=TIMEOUT),
                     assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id,
                                                name="x"), timeout=TIMEOUT),
                     assistants.Delete(pb.AssistantServiceDeleteRequest(assistant_id=assistant_id), timeout=TIMEOUT),
                     assistants.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=assistant_id),
                                             timeout=TIMEOUT),
                     assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id, version=1),
                                          timeout=TIMEOUT)):
            assert (await _refused(call, grpc.StatusCode.NOT_FOUND))["reason"] == "ASSISTANT_NOT_FOUND"


# -- owners and scopes -------------------------------------------------------------------------


def _bearer(subject: str, **claims):
    now = int(time.time())
    token = jwt.encode({"sub": subject, "aud": "graphrun", "iss": "tests", "exp": now + 300, "iat": now, **claims},
                       SECRET, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def secured(admin_dsn):
    """A server with authentication on, on a database of its own."""
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG,
                                 auth=AuthSettings(audience="graphrun", issuer="tests", jwt_secret=SECRET))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield channel
        finally:
            await app.stop(grace=1)


async def test_another_caller_gets_not_found_an_admin_sees_all_the_read_scope_only_reads(secured):
    assistants = assistant_service_pb2_grpc.AssistantServiceStub(secured)
    runs = run_service_pb2_grpc.RunServiceStub(secured)
    alice, bob = _bearer("alice"), _bearer("bob")
    mine = await _create(assistants, alice, context={"user": "alice"})
    assistant_id = mine["assistant_id"]
    done = await runs.Wait(wait_request(assistant_id=assistant_id, input={}), metadata=alice, timeout=TIMEOUT)
    assert done.run.assistant_id == assistant_id

    for call in (assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id), metadata=bob,
                                timeout=TIMEOUT),
                 assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id, name="x"),
                                   metadata=bob, timeout=TIMEOUT),
                 assistants.Delete(pb.AssistantServiceDeleteRequest(assistant_id=assistant_id), metadata=bob,
                                   timeout=TIMEOUT),
                 assistants.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=assistant_id),
                                         metadata=bob, timeout=TIMEOUT),
                 assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id, version=1),
                                      metadata=bob, timeout=TIMEOUT),
                 runs.Wait(wait_request(assistant_id=assistant_id, input={}), metadata=bob, timeout=TIMEOUT)):
        assert (await _refused(call, grpc.StatusCode.NOT_FOUND))["reason"] == "ASSISTANT_NOT_FOUND"
    listed = await assistants.List(pb.AssistantServiceListRequest(), metadata=bob, timeout=TIMEOUT)
    assert assistant_id not in {a.assistant_id for a in listed.assistants}
    assert "configured" in {a.assistant_id for a in listed.assistants}  # defaults are everyone's
    got = await assistants.Get(pb.AssistantServiceGetRequest(assistant_id=assistant_id), metadata=alice,
                               timeout=TIMEOUT)
    assert got.assistant.version == 1  # bob changed nothing

    admin = _bearer("ops", scope="graphrun:admin")
    listed = await assistants.List(pb.AssistantServiceListRequest(), metadata=admin, timeout=TIMEOUT)
    assert assistant_id in {a.assistant_id for a in listed.assistants}
    await assistants.Update(_request(pb.AssistantServiceUpdateRequest, assistant_id=assistant_id, name="by ops"),
                            metadata=admin, timeout=TIMEOUT)

    auditor = _bearer("alice", scope="graphrun:read")  # alice's own, read-only
    read = await assistants.ListVersions(pb.AssistantServiceListVersionsRequest(assistant_id=assistant_id),
                                         metadata=auditor, timeout=TIMEOUT)
    assert [v.version for v in read.versions] == [2, 1]
    for call in (assistants.Create(pb.AssistantServiceCreateRequest(graph_id="configured"), metadata=auditor,
                                   timeout=TIMEOUT),
                 assistants.SetLatest(pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id, version=1),
                                      metadata=auditor, timeout=TIMEOUT)):
        info = await _refused(call, grpc.StatusCode.PERMISSION_DENIED)
        assert info["reason"] == "READ_ONLY_SCOPE"
