"""Stateless runs (`on_completion: DELETE`), as LangGraph's `/runs/wait` without a thread: the run
answers as any run does — the same values LangGraph gives in-process — and then its thread, the run
and its checkpoints are gone."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import grpc
import psycopg
import pytest
from google.protobuf import json_format

from graphrun.v1 import run_pb2, run_service_pb2 as pb, thread_service_pb2 as tpb
from support.helpers import TIMEOUT, details, stream_request, wait_request

STATELESS = "ON_COMPLETION_DELETE"


def _module(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(f"stateless_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _gone(runs, threads, run_id: str, thread_id: str) -> None:
    for call in (threads.Get(tpb.ThreadServiceGetRequest(thread_id=thread_id), timeout=TIMEOUT),
                 runs.Get(pb.RunServiceGetRequest(run_id=run_id), timeout=TIMEOUT)):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_stateless_wait_answers_then_leaves_nothing(runs, threads, database_url):
    steps = _module(pathlib.Path(__file__).parents[1] / "graphs" / "steps.py")  # what the server serves as `steps`
    done = await runs.Wait(wait_request(assistant_id="steps", input={}, on_completion=STATELESS), timeout=TIMEOUT)
    assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
    graph = steps.graph.compile() if hasattr(steps.graph, "compile") else steps.graph
    assert json_format.MessageToDict(done.state.values) == await graph.ainvoke({})  # LangGraph, no checkpointer
    await _gone(runs, threads, done.run.run_id, done.run.thread_id)
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (done.run.thread_id,)).fetchone()
    assert left[0] == 0


async def test_a_stateless_stream_ends_with_its_state_then_leaves_nothing(runs, threads):
    events = [r.event async for r in runs.Stream(stream_request(["updates"], assistant_id="steps", input={},
                                                                on_completion=STATELESS), timeout=TIMEOUT)]
    end = events[-1].end
    assert end.run.status == run_pb2.RUN_STATUS_SUCCESS and end.state.values
    await _gone(runs, threads, end.run.run_id, end.run.thread_id)


@pytest.mark.parametrize("fields", [
    {"thread_id": "7d2f2f6e-0d1c-4d54-9a39-1d3f8c3b1a10"},
    {"webhook": "https://hooks.example.com/x"},
])
async def test_a_stateless_run_needs_a_thread_of_its_own_and_no_webhook(runs, fields):
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await runs.Wait(wait_request(assistant_id="steps", input={}, on_completion=STATELESS, **fields),
                        timeout=TIMEOUT)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.on_completion" in details(bad.value)["violations"]
