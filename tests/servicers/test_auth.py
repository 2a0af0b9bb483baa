"""Authentication: bearer JWTs (HS256 secret, RS256 public key) or API keys on every call but
health and reflection; no authentication means loopback only unless explicitly allowed."""

import json
import logging
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import GRAPHS_CONFIG
from graphrun.v1 import assistant_service_pb2 as apb, assistant_service_pb2_grpc, run_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import TIMEOUT, details, spec, stream_request, wait_request

SECRET = "test-secret-of-enough-length-for-hs256"


def _token(key=SECRET, algorithm="HS256", **claims) -> str:
    now = int(time.time())
    body = {"sub": "team-a", "aud": "graphrun", "iss": "tests", "exp": now + 60, "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "public.pem"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, path


async def _start(database_url, **auth) -> App:
    return await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG,
                              auth=AuthSettings(audience="graphrun", issuer="tests", **auth))).start()


@pytest.fixture(scope="module")
async def secured(database_url, tmp_path_factory):
    keys = tmp_path_factory.mktemp("apikeys") / "keys.json"
    keys.write_text(json.dumps({"key-of-team-b": "team-b"}))
    app = await _start(database_url, jwt_secret=SECRET, api_keys_file=str(keys))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel
    await app.stop(grace=1)


def _bearer(token: str):
    return (("authorization", f"Bearer {token}"),)


async def test_a_valid_token_or_api_key_is_let_in(secured):
    runs = run_service_pb2_grpc.RunServiceStub(secured)
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), metadata=_bearer(_token()), timeout=TIMEOUT)
    assert done.run.status == 3  # SUCCESS
    assistants = assistant_service_pb2_grpc.AssistantServiceStub(secured)
    listed = await assistants.List(apb.AssistantServiceListRequest(), metadata=_bearer("key-of-team-b"),
                                   timeout=TIMEOUT)
    assert listed.assistants


@pytest.mark.parametrize("credentials, reason", [  # made when the test runs: tokens minted at collection expire
    (lambda: (), "TOKEN_MISSING"),
    (lambda: (("authorization", "Basic abc"),), "TOKEN_MALFORMED"),
    (lambda: _bearer(_token(exp=int(time.time()) - 10)), "TOKEN_EXPIRED"),
    (lambda: _bearer(_token(nbf=int(time.time()) + 3600)), "TOKEN_NOT_YET_VALID"),
    (lambda: _bearer(_token(aud="someone-else")), "TOKEN_INVALID"),
    (lambda: _bearer(_token(iss="elsewhere")), "TOKEN_INVALID"),
    (lambda: _bearer(_token(key="another-secret-of-enough-length-xx")), "TOKEN_INVALID"),
    (lambda: _bearer(_token(sub=None)), "TOKEN_INVALID"),
    (lambda: _bearer("key-of-nobody"), "TOKEN_INVALID"),
], ids=["missing", "basic", "expired", "not-yet-valid", "audience", "issuer", "key", "no-sub", "unknown-key"])
async def test_bad_or_missing_credentials_are_unauthenticated(secured, credentials, reason, caplog):
    metadata = credentials()
    runs = run_service_pb2_grpc.RunServiceStub(secured)
    with caplog.at_level(logging.DEBUG):
        for call in (runs.Wait(wait_request(assistant_id="steps", input={}), metadata=metadata, timeout=TIMEOUT),
                     runs.Stream(stream_request(["values"], assistant_id="steps", input={}), metadata=metadata,
                                 timeout=TIMEOUT)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                if isinstance(call, grpc.aio.UnaryUnaryCall):
                    await call
                else:
                    await call.read()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert details(caught.value)["reason"] == reason
    for _, value in metadata:  # credentials never reach the logs
        assert value.split()[-1] not in caplog.text


async def _list_services(channel, metadata=()) -> set[str]:
    """The service names server reflection lists (what grpcurl asks first)."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                     metadata=metadata, timeout=TIMEOUT)
    return {s.name async for response in call for s in response.list_services_response.service}


async def test_health_and_reflection_need_no_token(secured):
    health = health_pb2_grpc.HealthStub(secured)
    assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert "graphrun.v1.RunService" in await _list_services(secured)


@pytest.fixture(scope="module")
async def health_required(database_url):
    """A server started as an operator would: GRAPHRUN_AUTH_HEALTH=required in its environment."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRAPHRUN_JWT_SECRET", SECRET)
        env.setenv("GRAPHRUN_JWT_AUDIENCE", "graphrun")
        env.setenv("GRAPHRUN_JWT_ISSUER", "tests")
        env.setenv("GRAPHRUN_AUTH_HEALTH", "required")
        settings = Settings.from_env(host="127.0.0.1", port=0, database_url=database_url, config=GRAPHS_CONFIG)
    app = await App(settings).start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield channel
    await app.stop(grace=1)


async def test_auth_health_required_makes_health_need_a_token(health_required):
    health = health_pb2_grpc.HealthStub(health_required)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(caught.value)["reason"] == "TOKEN_MISSING"
    answer = await health.Check(health_pb2.HealthCheckRequest(), metadata=_bearer(_token()), timeout=TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_auth_health_required_makes_reflection_need_a_token(health_required):
    assert "graphrun.v1.RunService" in await _list_services(health_required, _bearer(_token()))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list_services(health_required)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_rs256_tokens_are_checked_with_the_public_key(database_url, rsa_key):
    key, public = rsa_key
    app = await _start(database_url, jwt_public_key_file=str(public))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            assistants = assistant_service_pb2_grpc.AssistantServiceStub(channel)
            await assistants.List(apb.AssistantServiceListRequest(), metadata=_bearer(_token(key, "RS256")),
                                  timeout=TIMEOUT)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await assistants.List(apb.AssistantServiceListRequest(), metadata=_bearer(_token()),  # HS256
                                      timeout=TIMEOUT)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await app.stop(grace=1)


async def test_without_authentication_only_loopback_unless_allowed(database_url):
    with pytest.raises(SystemExit, match="without authentication"):
        await App(Settings(host="0.0.0.0", port=0, database_url=database_url, config=GRAPHS_CONFIG)).start()
    app = await App(Settings(host="0.0.0.0", port=0, database_url=database_url, config=GRAPHS_CONFIG,
                             allow_unauthenticated=True)).start()
    await app.stop(grace=1)


async def test_another_caller_sees_nothing_of_a_callers_threads_and_runs(secured):
    from google.protobuf import json_format, struct_pb2

    from graphrun.v1 import run_service_pb2 as rpb, thread_service_pb2 as tpb, thread_service_pb2_grpc

    runs = run_service_pb2_grpc.RunServiceStub(secured)
    threads = thread_service_pb2_grpc.ThreadServiceStub(secured)
    a, b = _bearer(_token()), _bearer("key-of-team-b")
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), metadata=a, timeout=TIMEOUT)
    thread_id, run_id = done.run.thread_id, done.run.run_id
    mine = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=a, timeout=TIMEOUT)
    assert json_format.MessageToDict(mine.thread.metadata) == {"owner": "team-a"}

    values = json_format.ParseDict({"log": ["x"]}, struct_pb2.Struct())
    refused = [
        threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=b, timeout=TIMEOUT),
        threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), metadata=b, timeout=TIMEOUT),
        threads.GetHistory(tpb.ThreadServiceGetHistoryRequest(thread_id=thread_id), metadata=b, timeout=TIMEOUT),
        threads.UpdateState(tpb.ThreadServiceUpdateStateRequest(thread_id=thread_id, values=values), metadata=b,
                            timeout=TIMEOUT),
        threads.Delete(tpb.ThreadServiceDeleteRequest(thread_id=thread_id), metadata=b, timeout=TIMEOUT),
        runs.Get(rpb.RunServiceGetRequest(run_id=run_id), metadata=b, timeout=TIMEOUT),
        runs.Cancel(rpb.RunServiceCancelRequest(run_id=run_id), metadata=b, timeout=TIMEOUT),
        runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, input={}), metadata=b, timeout=TIMEOUT),
    ]
    for call in refused:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert details(caught.value)["reason"] in ("THREAD_NOT_FOUND", "RUN_NOT_FOUND")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Join(rpb.RunServiceJoinRequest(run_id=run_id), metadata=b, timeout=TIMEOUT).read()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await runs.List(rpb.RunServiceListRequest(), metadata=b, timeout=TIMEOUT)
    assert run_id not in {r.run_id for r in listed.runs}
    # Nothing changed for the owner.
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), metadata=a, timeout=TIMEOUT)
    assert json_format.MessageToDict(state.state.values)["log"] == ["first", "second", "third"]


async def test_another_caller_cannot_start_runs_on_or_list_a_callers_thread(secured):
    """Stream, Create, List by thread, and a Wait that would create the thread: another caller's
    thread is answered as one that does not exist, and nothing happens to it."""
    from google.protobuf import json_format

    from graphrun.v1 import run_service_pb2 as rpb, thread_service_pb2 as tpb, thread_service_pb2_grpc

    runs = run_service_pb2_grpc.RunServiceStub(secured)
    threads = thread_service_pb2_grpc.ThreadServiceStub(secured)
    a, b = _bearer(_token()), _bearer("key-of-team-b")
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), metadata=a, timeout=TIMEOUT)
    thread_id = done.run.thread_id
    on_a_thread = {"assistant_id": "steps", "thread_id": thread_id, "input": {},
                   "multitask_strategy": "MULTITASK_STRATEGY_ENQUEUE"}  # never refused as merely busy

    def assert_not_found(error: grpc.aio.AioRpcError) -> None:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        assert details(error)["reason"] == "THREAD_NOT_FOUND"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Stream(stream_request(["values"], **on_a_thread), metadata=b, timeout=TIMEOUT).read()
    assert_not_found(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Create(rpb.RunServiceCreateRequest(spec=spec(**on_a_thread)), metadata=b, timeout=TIMEOUT)
    assert_not_found(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.List(rpb.RunServiceListRequest(thread_id=thread_id), metadata=b, timeout=TIMEOUT)
    assert_not_found(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(**on_a_thread, if_not_exists="IF_NOT_EXISTS_CREATE"), metadata=b,
                        timeout=TIMEOUT)
    assert_not_found(caught.value)

    # Nothing ran on the thread, and it is still the first caller's.
    listed = await runs.List(rpb.RunServiceListRequest(thread_id=thread_id), metadata=a, timeout=TIMEOUT)
    assert [r.run_id for r in listed.runs] == [done.run.run_id]
    thread = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=a, timeout=TIMEOUT)
    assert json_format.MessageToDict(thread.thread.metadata) == {"owner": "team-a"}
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), metadata=a, timeout=TIMEOUT)
    assert json_format.MessageToDict(state.state.values)["log"] == ["first", "second", "third"]
