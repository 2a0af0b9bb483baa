"""Completion webhooks: a run naming a URL is POSTed, signed, once it ends — from a durable outbox,
retried after a failure, at least once — and hosts outside the allow-list, or private addresses
reached through a wildcard, are refused (no server-side request forgery)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import json
import threading

import grpc
import pytest
from google.protobuf import duration_pb2

from conftest import GRAPHS_CONFIG
from graphrun.v1 import assistant_service_pb2 as apb, assistant_service_pb2_grpc, run_pb2, run_service_pb2 as pb
from graphrun.v1 import run_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import TIMEOUT, details, spec, wait_request

SECRET = "webhook-signing-key"


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers with the next status queued."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []
        self.got = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.got:
                    code = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.got.notify_all()
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def wait_for(self, count: int) -> list[tuple[dict, bytes]]:
        def wait() -> list:
            with self.got:
                assert self.got.wait_for(lambda: len(self.posts) >= count, timeout=TIMEOUT), self.posts
                return list(self.posts)
        return await asyncio.to_thread(wait)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
async def served_channel(database_url):
    """A server allowing webhooks, on the database of the session's server (which allows none)."""
    app = await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG,
                             webhook_allowed_hosts="127.0.0.1, *.example.com, local*", webhook_secret=SECRET)).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield channel
    finally:
        await app.stop(grace=1)


@pytest.fixture(scope="module")
def served(served_channel):
    return run_service_pb2_grpc.RunServiceStub(served_channel)


async def _delivered(runs, run_id: str) -> run_pb2.Run:
    """The run once its webhook's delivery is no longer pending (a delivery record is written
    right after the POST is answered)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            run = (await runs.Get(pb.RunServiceGetRequest(run_id=run_id), timeout=TIMEOUT)).run
            if run.webhook.status != run_pb2.WEBHOOK_STATUS_PENDING:
                return run
            await asyncio.sleep(0.05)  # polling what the database shows, not synchronising with the code


async def test_a_run_posts_its_end_signed_once(served, receiver):
    runs = served
    done = await runs.Wait(wait_request(assistant_id="steps", input={}, webhook=receiver.url), timeout=TIMEOUT)
    [(headers, body)] = await receiver.wait_for(1)
    assert headers["graphrun-webhook-id"] == done.run.run_id
    expected = hmac.new(SECRET.encode(), headers["graphrun-timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["graphrun-signature"] == "sha256=" + expected.hexdigest()
    payload = json.loads(body)
    assert payload["run"]["run_id"] == done.run.run_id and payload["run"]["status"] == "RUN_STATUS_SUCCESS"
    assert payload["state"]["values"]["log"] == ["first", "second", "third"]
    run = await _delivered(runs, done.run.run_id)
    assert run.webhook.status == run_pb2.WEBHOOK_STATUS_DELIVERED and run.webhook.attempts == 1
    assert run.webhook.url == receiver.url and run.webhook.HasField("delivered_at")
    assert len(receiver.posts) == 1


async def test_a_failed_delivery_is_tried_again(served, receiver):
    runs = served
    receiver.answers = [500]
    done = await runs.Wait(wait_request(assistant_id="steps", input={}, webhook=receiver.url), timeout=TIMEOUT)
    posts = await receiver.wait_for(2)
    assert [h["graphrun-webhook-id"] for h, _ in posts] == [done.run.run_id] * 2  # the same id: deduplicable
    run = await _delivered(runs, done.run.run_id)
    assert run.webhook.status == run_pb2.WEBHOOK_STATUS_DELIVERED and run.webhook.attempts == 2


async def test_a_cancelled_run_posts_too(served, receiver):
    runs = served
    created = await runs.Create(pb.RunServiceCreateRequest(spec=spec(assistant_id="steps", input={}, webhook=receiver.url),
                                                           start_delay=duration_pb2.Duration(seconds=3600)),
                               timeout=TIMEOUT)
    await runs.Cancel(pb.RunServiceCancelRequest(run_id=created.run.run_id), timeout=TIMEOUT)
    [(headers, body)] = await receiver.wait_for(1)
    assert json.loads(body)["run"]["status"] == "RUN_STATUS_CANCELLED"


@pytest.mark.parametrize("url, why", [
    ("https://evil.test/hook", "is not in GRAPHRUN_WEBHOOK_ALLOWED_HOSTS"),
    ("ftp://hooks.example.com/x", "must be an http:// or https:// URL"),
    ("not a url", "must be an http:// or https:// URL"),
])
async def test_a_host_outside_the_allow_list_is_refused_before_the_run(served, url, why):
    runs = served
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await runs.Wait(wait_request(assistant_id="steps", input={}, webhook=url), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert why in details(refused.value)["violations"]["spec.webhook"]


async def test_a_wildcard_never_reaches_a_private_address(served, receiver):
    """`local*` matches `localhost`, which resolves to loopback and is not listed by name."""
    runs = served
    url = receiver.url.replace("127.0.0.1", "localhost")
    done = await runs.Wait(wait_request(assistant_id="steps", input={}, webhook=url), timeout=TIMEOUT)
    run = (await runs.Get(pb.RunServiceGetRequest(run_id=done.run.run_id), timeout=TIMEOUT)).run
    async with asyncio.timeout(TIMEOUT):
        while not run.webhook.last_error:
            await asyncio.sleep(0.05)  # polling what the database shows
            run = (await runs.Get(pb.RunServiceGetRequest(run_id=done.run.run_id), timeout=TIMEOUT)).run
    assert run.webhook.last_error.startswith("refused: localhost resolves to a non-public address")
    assert receiver.posts == []


async def test_webhooks_are_refused_where_none_are_allowed(runs):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await runs.Wait(wait_request(assistant_id="steps", input={}, webhook="https://hooks.example.com/x"),
                        timeout=TIMEOUT)
    assert "webhooks are off on this server" in details(refused.value)["violations"]["spec.webhook"]


async def test_allowed_hosts_need_a_signing_key(database_url):
    with pytest.raises(SystemExit, match="GRAPHRUN_WEBHOOK_SECRET"):
        await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG,
                           webhook_allowed_hosts="hooks.example.com")).start()


async def test_an_assistants_webhook_is_the_default_for_its_runs(served_channel, receiver, runs):
    served_assistants = assistant_service_pb2_grpc.AssistantServiceStub(served_channel)
    served_runs = run_service_pb2_grpc.RunServiceStub(served_channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served_assistants.Create(apb.AssistantServiceCreateRequest(graph_id="steps", webhook="https://evil.test/x"),
                                       timeout=TIMEOUT)
    assert "is not in GRAPHRUN_WEBHOOK_ALLOWED_HOSTS" in details(refused.value)["violations"]["webhook"]
    created = await served_assistants.Create(apb.AssistantServiceCreateRequest(graph_id="steps", webhook=receiver.url),
                                             timeout=TIMEOUT)
    assert created.assistant.webhook == receiver.url
    assistant_id = created.assistant.assistant_id
    done = await served_runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    [(headers, body)] = await receiver.wait_for(1)
    assert headers["graphrun-webhook-id"] == done.run.run_id and done.run.webhook.url == receiver.url
    assert json.loads(body)["run"]["assistant_id"] == assistant_id
    stateless = await served_runs.Wait(wait_request(assistant_id=assistant_id, input={},
                                                    on_completion="ON_COMPLETION_DELETE"), timeout=TIMEOUT)
    assert not stateless.run.HasField("webhook")  # nothing left to report: the default does not apply

    # The session's server shares the database but allows no webhooks: it refuses the assistant's runs.
    with pytest.raises(grpc.aio.AioRpcError) as off:
        await runs.Wait(wait_request(assistant_id=assistant_id, input={}), timeout=TIMEOUT)
    assert off.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "webhooks are off" in details(off.value)["violations"]["spec.assistant_id"]
