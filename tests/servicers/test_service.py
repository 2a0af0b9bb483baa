"""The service around the API: health, reflection, assistants, the embedded database."""

import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from graphrun.v1 import assistant_service_pb2 as apb, run_pb2, run_service_pb2_grpc
from graphrun_server.app import App, Settings
from conftest import GRAPHS_CONFIG
from support.helpers import wait_request

BUF = str(pathlib.Path(sys.executable).parent / "buf")

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def test_health_reports_serving_for_the_server_and_each_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "graphrun.v1.RunService", "graphrun.v1.ThreadService", "graphrun.v1.AssistantService"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_a_replica_whose_database_connections_are_all_busy_still_reports_serving(database_url):
    """Busy is not unhealthy: a burst of runs can hold every pooled connection for seconds, and a
    replica reporting NOT_SERVING then would be taken out of service, or restarted, for it."""
    app = await App(Settings(host="127.0.0.1", port=0, database_url=database_url, config=GRAPHS_CONFIG,
                             pool_size=2)).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # Both connections of the pool busy, as with runs.
            async with app._pool.connection(), app._pool.connection():
                await app._health.refresh()  # the periodic check, now rather than in 5 s
                busy = await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
    finally:
        await app.stop(grace=1)
    assert busy.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_pool_too_small_to_start_is_refused_with_a_clear_message(database_url):
    with pytest.raises(SystemExit, match="GRAPHRUN_POOL_SIZE must be at least 2, not 1"):
        await App(Settings(host="127.0.0.1", port=0, database_url=database_url, config=GRAPHS_CONFIG,
                           pool_size=1)).start()


async def test_reflection_lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = set()
    async for response in responses:
        names |= {s.name for s in response.list_services_response.service}
    assert {"graphrun.v1.RunService", "graphrun.v1.ThreadService", "graphrun.v1.AssistantService",
            "grpc.health.v1.Health"} <= names


async def test_reflection_describes_the_api_with_its_comments(channel):
    """What `grpcurl describe` shows: the protos' descriptors with their comments; the health
    service and the well-known types resolve too."""
    from google.protobuf import descriptor_pb2

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
                for symbol in ("graphrun.v1.RunService", "grpc.health.v1.Health")]
    requests.append(reflection_pb2.ServerReflectionRequest(file_by_filename="google/protobuf/struct.proto"))
    files = {}
    async for response in stub.ServerReflectionInfo(iter(requests)):
        assert not response.HasField("error_response"), response.error_response
        for raw in response.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[file.name] = file
    assert {"graphrun/v1/run_service.proto", "grpc_health/v1/health.proto",
            "google/protobuf/struct.proto"} <= set(files)
    comments = [loc.leading_comments for loc in files["graphrun/v1/run_service.proto"].source_code_info.location]
    assert any("DEADLINE_EXCEEDED" in c for c in comments), comments[:5]  # Wait's documentation


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_buf_curl_lists_and_calls_through_either_reflection_protocol(server, protocol):
    """Current grpcurl and `buf curl` ask for grpc.reflection.v1 first; older tools for v1alpha."""
    base = ["--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol]
    listed = await asyncio.to_thread(subprocess.run, [BUF, "curl", *base, "--list-services",
                                                      f"http://127.0.0.1:{server.port}"],
                                     capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert {"graphrun.v1.RunService", "grpc.reflection.v1.ServerReflection"} <= set(listed.stdout.split())
    called = await asyncio.to_thread(subprocess.run, [BUF, "curl", *base, "-d", "{}",
                                                      f"http://127.0.0.1:{server.port}/graphrun.v1.AssistantService/List"],
                                     capture_output=True, text=True, timeout=60)
    assert called.returncode == 0, called.stderr
    assert '"assistantId": "agent"' in called.stdout


async def test_assistants_list_graphs_with_their_schemas(assistants):
    listed = await assistants.List(apb.AssistantServiceListRequest())
    ids = [a.assistant_id for a in listed.assistants if a.assistant_id == a.graph_id]  # the graphs' own (first)
    assert ids == sorted(ids) and {"agent", "steps", "approval"} <= set(ids)
    agent = (await assistants.Get(apb.AssistantServiceGetRequest(assistant_id="agent"))).assistant
    assert set(agent.nodes) == {"agent", "tools"}
    schema = json_format.MessageToDict(agent.input_schema)
    assert "messages" in schema["properties"]
    assert agent.description
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await assistants.Get(apb.AssistantServiceGetRequest(assistant_id="ghost"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_server_without_a_dsn_runs_on_an_embedded_postgres():
    """… and leaves the data directory's parents as they were, but for traverse (as root,
    pgserver would let everyone list them)."""
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="graphrun-embedded-")) / "pgdata"
    data_dir.parent.chmod(0o700)
    app = await App(Settings(port=0, database_url=None, data_dir=str(data_dir))).start()
    if os.geteuid() == 0:
        assert oct(data_dir.parent.stat().st_mode & 0o777) == oct(0o711)
    else:
        assert oct(data_dir.parent.stat().st_mode & 0o777) == oct(0o700)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            response = await stub.Wait(wait_request(assistant_id="agent", input={
                "messages": [{"role": "user", "content": "Wann wurde die Heizungsanlage gewartet?"}]}))
            assert response.run.status == run_pb2.RUN_STATUS_SUCCESS
            assert "15. Januar 2025" in json_format.MessageToDict(response.state.values)["messages"][-1]["content"]
        assert (data_dir / "PG_VERSION").exists()
    finally:
        await app.stop(grace=1)
        shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make serve" in readme
    assert "\nmake test\n" in ci


@pytest.mark.parametrize("event_loop", [None, "asyncio"])
async def test_the_server_process_serves_on_uvloop_by_default_or_on_asyncio(database_url, event_loop):
    from support.replicas import Replica

    settings = {"event_loop": event_loop} if event_loop else {}
    replica = await Replica("loop", database_url, GRAPHS_CONFIG, **settings).start()
    try:
        assert f"event loop: {event_loop or 'uvloop'}" in await replica.wait_for_log("event loop:", timeout=30)
        answer = await replica.runs.Wait(wait_request(assistant_id="steps", input={"log": []}), timeout=30)
        assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
    finally:
        await replica.close()


async def test_an_unknown_event_loop_stops_the_server_with_a_clear_message(database_url):
    from support.replicas import Replica

    replica = Replica("bad-loop", database_url, GRAPHS_CONFIG, event_loop="trio")
    with pytest.raises(RuntimeError) as failed:
        await replica.start()
    assert "GRAPHRUN_EVENT_LOOP must be one of uvloop, asyncio, not 'trio'" in str(failed.value)
    await replica.close()


async def test_a_setting_that_is_not_a_number_stops_the_server_with_a_message_naming_it(database_url):
    from support.replicas import Replica

    replica = Replica("bad-setting", database_url, GRAPHS_CONFIG, pool_size="twenty")
    with pytest.raises(RuntimeError) as failed:
        await replica.start()
    assert "GRAPHRUN_POOL_SIZE must be an integer, not 'twenty'" in str(failed.value)
    assert "Traceback" not in str(failed.value)
    await replica.close()


async def test_workers_share_one_port_that_no_other_server_can_take(database_url):
    """`--workers 2` serves from two processes on one port; a server started on a port in use
    stops with a message naming it (gRPC's default SO_REUSEPORT would have let it take half the
    connections); SIGTERM stops the workers and their parent cleanly."""
    import signal
    import socket

    from support.replicas import Replica

    with socket.socket() as probe:  # a free port (the workers need a fixed one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workers = await Replica("workers", database_url, GRAPHS_CONFIG, port=port, workers=2).start()
    intruder = Replica("intruder", database_url, GRAPHS_CONFIG, port=port)
    more_workers = Replica("more-workers", database_url, GRAPHS_CONFIG, port=port, workers=2)
    try:
        second = await asyncio.wait_for(workers.proc.stdout.readline(), 60)  # the other worker's "serving on"
        assert second.decode().strip() == f"graphrun serving on 127.0.0.1:{port}" and workers.port == port
        answer = await workers.runs.Wait(wait_request(assistant_id="steps", input={}), timeout=30)
        assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
        for worker in ("1", "2"):  # each process names itself on its lines
            assert await workers.wait_for_log(f"[worker {worker}] ", timeout=30)

        for other in (intruder, more_workers):  # a second server, or a second set of workers
            with pytest.raises(RuntimeError) as failed:
                await other.start()
            assert f"cannot listen on 127.0.0.1:{port}" in str(failed.value) and "--port" in str(failed.value)
            assert "Traceback" not in str(failed.value)
        assert (await workers.runs.Wait(wait_request(assistant_id="steps", input={}), timeout=30)).run.status \
            == run_pb2.RUN_STATUS_SUCCESS  # still served by the workers alone

        workers.signal(signal.SIGTERM)
        assert await workers.exited() == 0
    finally:
        await intruder.close()
        await more_workers.close()
        if workers.proc.returncode is None:  # SIGKILL would orphan the worker processes
            workers.signal(signal.SIGTERM)
            await workers.exited()
        await workers.close()


def test_workers_read_back_the_settings_their_parent_passes(monkeypatch):
    """`--workers` hands its settings to its processes as GRAPHRUN_* variables (`to_env`): every
    one must read back as given (yes/no settings are written as True, which used to read as no)."""
    given = Settings(port=7001, allow_unauthenticated=True, share_port=True, pool_size=7, lease_seconds=2.5,
                     event_loop="asyncio", grace_seconds=3.0)
    for name in [n for n in os.environ if n.startswith("GRAPHRUN_")]:
        monkeypatch.delenv(name)
    for name, value in given.to_env().items():
        monkeypatch.setenv(name, value)
    read = Settings.from_env()
    assert {k: v for k, v in read.__dict__.items() if k != "auth"} == \
        {k: v for k, v in given.__dict__.items() if k != "auth"}


async def test_a_host_that_does_not_resolve_stops_the_server_with_a_message_naming_it(database_url):
    from support.replicas import Replica

    replica = Replica("bad-host", database_url, GRAPHS_CONFIG, host="no-such-host.invalid", port=50099,
                      allow_unauthenticated=1)
    with pytest.raises(RuntimeError) as failed:
        await replica.start()
    assert "cannot listen on no-such-host.invalid:50099" in str(failed.value) and "--host" in str(failed.value)
    assert "Traceback" not in str(failed.value)
    await replica.close()
