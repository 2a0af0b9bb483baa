"""Scopes and service identities: `graphrun:admin` sees and acts on every owner's resources,
`graphrun:read` may only read, and with GRAPHRUN_AUTH_MTLS a verified client certificate names
the caller (its SPIFFE id, else its CN) without a token."""

from __future__ import annotations

import datetime as dt
import json
import time

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import run_pb2, run_service_pb2 as rpb, run_service_pb2_grpc, store_service_pb2 as spb
from graphrun.v1 import store_service_pb2_grpc, thread_service_pb2 as tpb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import TIMEOUT, details, wait_request
from test_tls import _cert, _key, _pem

SECRET = "test-secret-of-enough-length-for-hs256"


def _bearer(subject: str, **claims):
    now = int(time.time())
    token = jwt.encode({"sub": subject, "aud": "graphrun", "iss": "tests", "exp": now + 300, "iat": now, **claims},
                       SECRET, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def secured(admin_dsn, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.json"
    keys.write_text(json.dumps({"auditor-key": {"name": "auditor", "scopes": ["graphrun:read"]}, "plain-key": "carol"}))
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG, auth=AuthSettings(
            audience="graphrun", issuer="tests", jwt_secret=SECRET, api_keys_file=str(keys)))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield channel
        finally:
            await app.stop(grace=1)


async def test_an_admin_sees_and_acts_on_every_owners_resources(secured):
    threads = thread_service_pb2_grpc.ThreadServiceStub(secured)
    runs = run_service_pb2_grpc.RunServiceStub(secured)
    alice = _bearer("alice")
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), metadata=alice, timeout=TIMEOUT)
    thread_id = done.run.thread_id
    admin = _bearer("ops", scope="openid graphrun:admin")

    with pytest.raises(grpc.aio.AioRpcError) as hidden:  # another plain caller does not see it
        await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=_bearer("bob"), timeout=TIMEOUT)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    seen = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=admin, timeout=TIMEOUT)
    assert seen.thread.thread_id == thread_id
    state = await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id), metadata=admin,
                                   timeout=TIMEOUT)
    assert state.state.checkpoint.checkpoint_id
    listed = await threads.List(tpb.ThreadServiceListRequest(page_size=1000), metadata=admin, timeout=TIMEOUT)
    assert thread_id in {t.thread_id for t in listed.threads}
    run = await runs.Get(rpb.RunServiceGetRequest(run_id=done.run.run_id), metadata=admin, timeout=TIMEOUT)
    assert run.run.status == run_pb2.RUN_STATUS_SUCCESS
    await threads.Delete(tpb.ThreadServiceDeleteRequest(thread_id=thread_id), metadata=admin, timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), metadata=alice, timeout=TIMEOUT)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("kind", ["jwt", "api-key"])
async def test_the_read_scope_reads_and_changes_nothing(secured, kind):
    # Minted here, not at collection: a token made when the suite starts may expire before this runs.
    credentials = (_bearer("auditor", scp=["graphrun:read"]) if kind == "jwt"
                   else (("authorization", "Bearer auditor-key"),))
    threads = thread_service_pb2_grpc.ThreadServiceStub(secured)
    runs = run_service_pb2_grpc.RunServiceStub(secured)
    store = store_service_pb2_grpc.StoreServiceStub(secured)
    listed = await threads.List(tpb.ThreadServiceListRequest(), metadata=credentials, timeout=TIMEOUT)
    assert listed.threads == []  # its own: none
    await runs.List(rpb.RunServiceListRequest(), metadata=credentials, timeout=TIMEOUT)
    await store.SearchItems(spb.StoreServiceSearchItemsRequest(), metadata=credentials, timeout=TIMEOUT)
    changes = [
        runs.Wait(wait_request(assistant_id="steps", input={}), metadata=credentials, timeout=TIMEOUT),
        threads.Create(tpb.ThreadServiceCreateRequest(), metadata=credentials, timeout=TIMEOUT),
        store.PutItem(spb.StoreServicePutItemRequest(namespace=["auditor"], key="k"), metadata=credentials,
                      timeout=TIMEOUT),
    ]
    for change in changes:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await change
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert details(refused.value)["reason"] == "READ_ONLY_SCOPE"
    assert (await threads.List(tpb.ThreadServiceListRequest(), metadata=credentials, timeout=TIMEOUT)).threads == []


async def test_an_api_key_without_scopes_is_a_plain_caller(secured):
    threads = thread_service_pb2_grpc.ThreadServiceStub(secured)
    created = await threads.Create(tpb.ThreadServiceCreateRequest(), metadata=(("authorization", "Bearer plain-key"),),
                                   timeout=TIMEOUT)
    assert created.thread.metadata["owner"] == "carol"


# -- client certificates as identities --------------------------------------------------------


def _client_cert(ca, ca_key, *, cn: str, spiffe: str | None = None):
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1)))
    if spiffe:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]),
                                        critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


async def test_a_client_certificate_names_the_caller_without_a_token(admin_dsn, tmp_path):
    ca_key = _key()
    ca = _cert("graphrun test CA", ca_key, ca=True)
    server_key = _key()
    server_cert = _cert("server", server_key, ca, ca_key, server=True)
    for name, obj in (("ca", ca), ("server", server_cert), ("server_key", server_key)):
        (tmp_path / f"{name}.pem").write_bytes(_pem(obj))
    clients = {"orders": _client_cert(ca, ca_key, cn="orders-cn", spiffe="spiffe://mesh.test/ns/shop/sa/orders"),
               "billing": _client_cert(ca, ca_key, cn="billing")}
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(port=0, database_url=dsn, config=GRAPHS_CONFIG, tls_cert=str(tmp_path / "server.pem"),
                                 tls_key=str(tmp_path / "server_key.pem"), tls_client_ca=str(tmp_path / "ca.pem"),
                                 auth=AuthSettings(mtls=True))).start()
        try:
            def channel(who: str) -> grpc.aio.Channel:
                key, cert = clients[who]
                return grpc.aio.secure_channel(f"127.0.0.1:{app.port}", grpc.ssl_channel_credentials(
                    _pem(ca), _pem(key), _pem(cert)), options=[("grpc.ssl_target_name_override", "localhost")])

            async with channel("orders") as orders, channel("billing") as billing:
                mine = await thread_service_pb2_grpc.ThreadServiceStub(orders).Create(
                    tpb.ThreadServiceCreateRequest(), timeout=TIMEOUT)
                assert mine.thread.metadata["owner"] == "spiffe://mesh.test/ns/shop/sa/orders"
                theirs = await thread_service_pb2_grpc.ThreadServiceStub(billing).Create(
                    tpb.ThreadServiceCreateRequest(), timeout=TIMEOUT)
                assert theirs.thread.metadata["owner"] == "billing"  # no SPIFFE id: the CN
                with pytest.raises(grpc.aio.AioRpcError) as hidden:
                    await thread_service_pb2_grpc.ThreadServiceStub(billing).Get(
                        tpb.ThreadServiceGetRequest(thread_id=mine.thread.thread_id), timeout=TIMEOUT)
                assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            await app.stop(grace=1)


async def test_certificate_identities_need_mutual_tls(database_url):
    with pytest.raises(SystemExit, match="GRAPHRUN_AUTH_MTLS needs mutual TLS"):
        await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG, auth=AuthSettings(mtls=True))
                  ).start()
