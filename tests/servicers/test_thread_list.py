"""ThreadService.List: a caller's threads, newest first, page by page, filtered by status,
metadata and assistant; with authentication on, each caller sees only its own threads."""

from __future__ import annotations

import time
import uuid

import grpc
import jwt
import pytest
from google.protobuf import json_format

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun import AsyncClient
from graphrun.v1 import run_pb2, run_service_pb2_grpc, thread_pb2, thread_service_pb2 as pb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import details, wait_request

SECRET = "test-secret-of-enough-length-for-hs256"


def _bearer(subject: str):
    now = int(time.time())
    token = jwt.encode({"sub": subject, "aud": "graphrun", "iss": "tests", "exp": now + 300, "iat": now}, SECRET,
                       algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def secured(admin_dsn):
    """A server with authentication on, on a database of its own (so lists hold only this file's threads)."""
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG,
                                 auth=AuthSettings(audience="graphrun", issuer="tests", jwt_secret=SECRET))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield app, channel
        finally:
            await app.stop(grace=1)


async def _list(threads, caller: str, **fields) -> pb.ThreadServiceListResponse:
    request = json_format.ParseDict(fields, pb.ThreadServiceListRequest())
    return await threads.List(request, metadata=_bearer(caller), timeout=30)


async def test_threads_are_listed_newest_first_page_by_page_and_only_the_callers(secured):
    _, channel = secured
    threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
    mine = []
    for i in range(5):
        created = await threads.Create(pb.ThreadServiceCreateRequest(), metadata=_bearer("alice"), timeout=30)
        mine.append(created.thread.thread_id)
    await threads.Create(pb.ThreadServiceCreateRequest(), metadata=_bearer("bob"), timeout=30)

    seen, token = [], ""
    while True:
        page = await _list(threads, "alice", page_size=2, page_token=token)
        assert len(page.threads) <= 2
        seen += [t.thread_id for t in page.threads]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(mine))
    assert len((await _list(threads, "bob")).threads) == 1
    assert (await _list(threads, "carol")).threads == []


async def test_filters_by_status_metadata_and_assistant(secured):
    _, channel = secured
    threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
    runs = run_service_pb2_grpc.RunServiceStub(channel)
    caller = f"filters-{uuid.uuid4()}"
    tagged = await threads.Create(pb.ThreadServiceCreateRequest(metadata=json_format.ParseDict(
        {"user": "alice", "project": {"id": 7}}, pb.ThreadServiceCreateRequest().metadata)),
        metadata=_bearer(caller), timeout=30)
    ran = await runs.Wait(wait_request(assistant_id="steps", input={}), metadata=_bearer(caller), timeout=30)
    assert ran.run.status == run_pb2.RUN_STATUS_SUCCESS

    by_metadata = await _list(threads, caller, metadata={"project": {"id": 7}})
    assert [t.thread_id for t in by_metadata.threads] == [tagged.thread.thread_id]
    assert (await _list(threads, caller, metadata={"user": "bob"})).threads == []
    by_assistant = await _list(threads, caller, assistant_id="steps")
    assert [t.thread_id for t in by_assistant.threads] == [ran.run.thread_id]
    idle = await _list(threads, caller, statuses=["THREAD_STATUS_IDLE"])
    assert {t.thread_id for t in idle.threads} == {tagged.thread.thread_id, ran.run.thread_id}
    assert (await _list(threads, caller, statuses=["THREAD_STATUS_INTERRUPTED", "THREAD_STATUS_ERROR"])).threads == []
    assert all(t.status == thread_pb2.THREAD_STATUS_IDLE for t in idle.threads)


@pytest.mark.parametrize("fields, field", [
    ({"page_size": -1}, "page_size"),
    ({"page_size": 1001}, "page_size"),
    ({"statuses": [42]}, "statuses[0]"),
    ({"page_token": "not-a-token"}, "page_token"),
    ({"assistant_id": "a\u0000b"}, "assistant_id"),
])
async def test_bad_requests_name_the_field(secured, fields, field):
    _, channel = secured
    threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _list(threads, "alice", **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details(raised.value)["violations"]


async def test_the_python_client_lists_and_iterates_threads(secured):
    app, _ = secured
    caller = f"client-{uuid.uuid4()}"
    token = _bearer(caller)[0][1].removeprefix("Bearer ")
    async with AsyncClient(f"127.0.0.1:{app.port}", token=token) as client:
        created = [await client.create_thread(metadata={"n": i}) for i in range(3)]
        page, next_token = await client.list_threads(page_size=2)
        assert [t["thread_id"] for t in page] == [created[2]["thread_id"], created[1]["thread_id"]] and next_token
        every = [t["thread_id"] async for t in client.iter_threads(statuses="idle", page_size=1)]
        assert every == [t["thread_id"] for t in reversed(created)]
        only, _ = await client.list_threads(metadata={"n": 1})
        assert [t["thread_id"] for t in only] == [created[1]["thread_id"]]
