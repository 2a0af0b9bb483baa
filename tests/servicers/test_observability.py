"""What operators see: Prometheus metrics, OpenTelemetry traces, JSON logs with run ids."""

import asyncio
import json
import re
import time
import urllib.request
import uuid

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import GRAPHS_CONFIG, scratch_database
from graphrun.v1 import run_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.observability.metrics import LOOP_LAG_INTERVAL
from graphrun_server.observability.tracing import make_provider
from support.helpers import messages, question, stream_request, wait_request
from support.replicas import Replica


@pytest.fixture(scope="module")
async def observed(database_url):
    """A second server with metrics on (any free port) and traces kept in memory."""
    exporter = InMemorySpanExporter()
    app = App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG, metrics_port=0,
                       metrics_host="127.0.0.1"), tracer_provider=make_provider(exporter, batch=False))
    await app.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield app, run_service_pb2_grpc.RunServiceStub(channel), exporter
    await app.stop(grace=1)


def _scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_show_how_often_a_turn_found_its_messages_kept(observed):
    app, runs, _ = observed
    thread_id = str(uuid.uuid4())
    before = await asyncio.to_thread(_scrape, app.metrics_port)
    for turn in range(3):  # the second reads the first turn's message; the third reads it kept
        said = {"role": "user", "content": f"turn {turn}", "id": f"{thread_id}-{turn}"}
        waited = await runs.Wait(wait_request(assistant_id="keeps_messages", thread_id=thread_id,
                                              if_not_exists="IF_NOT_EXISTS_CREATE", input={"messages": [said]}))
        assert len(messages(waited.state)) == turn + 1
    after = await asyncio.to_thread(_scrape, app.metrics_port)

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    for cache in ("decoded", "converted"):
        assert grew(f'graphrun_message_cache_lookups_total{{cache="{cache}",result="hit"}}') >= 1, cache
        assert grew(f'graphrun_message_cache_lookups_total{{cache="{cache}",result="miss"}}') >= 1, cache
        assert after[f'graphrun_message_cache_messages{{cache="{cache}"}}'] >= 1, cache


async def test_metrics_count_rpcs_runs_streams_and_the_pool(observed):
    app, runs, _ = observed
    before = await asyncio.to_thread(_scrape, app.metrics_port)
    began = time.monotonic()
    await runs.Wait(wait_request(assistant_id="steps", input={}))
    with pytest.raises(grpc.aio.AioRpcError):
        await runs.Wait(wait_request(assistant_id="steps", input={"fail_at": "first"}))
    [e async for e in runs.Stream(stream_request(["updates"], assistant_id="steps", input={}))]
    elapsed = time.monotonic() - began
    m = await asyncio.to_thread(_scrape, app.metrics_port)
    wait = 'method="/graphrun.v1.RunService/Wait"'
    assert m[f'graphrun_rpc_requests_total{{code="OK",{wait}}}'] >= 1
    assert m[f'graphrun_rpc_requests_total{{code="ABORTED",{wait}}}'] >= 1
    assert m[f'graphrun_rpc_duration_seconds_count{{{wait}}}'] >= 2
    assert m['graphrun_rpc_requests_total{code="OK",method="/graphrun.v1.RunService/Stream"}'] >= 1
    assert m['graphrun_runs_finished_total{status="success"}'] >= 2
    assert m['graphrun_runs_finished_total{status="error"}'] >= 1
    assert m["graphrun_run_duration_seconds_count"] >= 3
    # The three runs took part of the time the three calls took, no more (not, say, the host's uptime).
    ran = m["graphrun_run_duration_seconds_sum"] - before.get("graphrun_run_duration_seconds_sum", 0.0)
    assert 0 < ran <= elapsed, (ran, elapsed)
    assert m["graphrun_active_streams"] == 0 and m["graphrun_runs_executing"] == 0
    assert m['graphrun_db_pool_connections{state="open"}'] >= 1
    assert "graphrun_queue_depth" in m
    assert "graphrun_event_loop_lag_seconds_count" in m and "graphrun_event_loop_lag_seconds_sum" in m


async def test_the_event_loop_lag_counts_a_stall(observed):
    """A loop held by blocking code runs its timers late: the lag histogram sees it."""
    app, _, _ = observed
    before = await asyncio.to_thread(_scrape, app.metrics_port)
    over = 'graphrun_event_loop_lag_seconds_bucket{le="0.1"}'
    time.sleep(2 * LOOP_LAG_INTERVAL)  # noqa: ASYNC251 - the stall under test (the server shares this loop)
    loop = asyncio.get_running_loop()
    ran = loop.create_future()
    loop.call_at(loop.time(), ran.set_result, None)  # runs after the timers due before it: the lag's beat
    await ran
    after = await asyncio.to_thread(_scrape, app.metrics_port)
    count = "graphrun_event_loop_lag_seconds_count"
    stalled = (after[count] - after[over]) - (before[count] - before[over])
    assert stalled >= 1, (before, after)


async def test_traces_have_a_span_per_call_run_and_node(observed):
    _, runs, exporter = observed
    exporter.clear()
    done = await runs.Wait(wait_request(assistant_id="agent", input=question()))
    spans = exporter.get_finished_spans()
    run_span = next(s for s in spans if s.name == "graphrun.run"
                    and s.attributes["graphrun.run_id"] == done.run.run_id)
    nodes = [s for s in spans if s.name.startswith("graphrun.node ") and s.parent
             and s.parent.span_id == run_span.context.span_id]
    assert [s.name for s in sorted(nodes, key=lambda s: s.start_time)] == [
        "graphrun.node agent", "graphrun.node tools", "graphrun.node agent"]
    assert run_span.attributes["graphrun.outcome"] == "success"
    assert any(s.name == "/graphrun.v1.RunService/Wait" for s in spans)  # the gRPC instrumentation


async def test_a_failed_calls_span_carries_its_status(observed):
    _, runs, exporter = observed
    exporter.clear()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await runs.Wait(wait_request(assistant_id="steps", input={"fail_at": "first"}), timeout=30)
    assert failed.value.code() == grpc.StatusCode.ABORTED
    [span] = [s for s in exporter.get_finished_spans() if s.name == "/graphrun.v1.RunService/Wait"]
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.ABORTED.value[0]
    assert span.status.status_code.name == "ERROR" and "ABORTED" in span.status.description


async def test_json_logs_name_the_run_on_every_line_about_it(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        await _json_logs(dsn)


async def _json_logs(dsn: str) -> None:
    replica = await Replica("logs", dsn, GRAPHS_CONFIG, log_format="json").start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await replica.runs.Wait(wait_request(assistant_id="steps", input={"fail_at": "second"}))
        run_id = dict(caught.value.trailing_metadata() or ()).get("graphrun-run-id") or \
            caught.value.details().split()[1]
        line = await replica.wait_for_log(f"run {run_id} failed")
        record = json.loads(line)
        assert record["run_id"] == run_id and record["thread_id"]
        assert record["level"] == "INFO" and record["logger"] == "graphrun_server.runner"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record["time"]
        summary = json.loads(await replica.wait_for_log("serving on"))
        assert summary["address"] == f"127.0.0.1:{replica.port}" and summary["authentication"] == "off"
        assert summary["tls"] == "off" and "steps" in summary["graphs"].split(", ")
        assert summary["database"].startswith("127.0.0.1:5432/")
        assert all(entry.lstrip().startswith("{") for entry in replica.log if entry.strip()), replica.log[:3]
    finally:
        await replica.close()


async def test_message_contents_never_reach_the_logs(runs, caplog):
    """What callers send and graphs answer stays out of the server's log, even at DEBUG and
    when runs fail: the log names runs, threads and error types, not contents."""
    secret = "SECRET-7f3a-do-not-log"
    with caplog.at_level("DEBUG"):
        answer = await runs.Wait(wait_request(assistant_id="agent", input=question(f"{secret} Wann?")), timeout=30)
        assert secret in str(answer.state.values)  # it did travel through the server
        async for _ in runs.Stream(stream_request(["messages", "values", "updates"], assistant_id="agent",
                                                  input=question(secret)), timeout=30):
            pass
        with pytest.raises(grpc.aio.AioRpcError):
            await runs.Wait(wait_request(assistant_id="steps", input={"fail_at": "second", "log": [secret]}),
                            timeout=30)
    assert caplog.records and secret not in caplog.text
