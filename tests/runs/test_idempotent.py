"""Idempotent run requests: the same caller sending a run again with the same `request_id` gets the
run the first request started — never a second execution of the graph — and the Python client
retries Wait, Stream and Create with one when the connection drops."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from graphrun import AsyncClient
from graphrun.v1 import run_pb2, run_service_pb2 as pb
from support.helpers import (TIMEOUT, details, open_gate, reached_gate, side_effects, spec, stream_request,
                             wait_request)
from support.tcp_proxy import TcpProxy

ONCE = {"n1": [1], "n2": [1], "n3": [1], "n4": [1]}  # each node of tests/graphs/durable.py ran once


def _durable(request_id: str, **fields) -> dict:
    return {"assistant_id": "durable", "input": {"tag": "idem", "gates": {}}, "request_id": request_id, **fields}


async def test_a_repeated_wait_gets_the_first_run_and_runs_the_graph_once(runs, database_url):
    request_id = str(uuid.uuid4())
    first = await runs.Wait(wait_request(**_durable(request_id)), timeout=TIMEOUT)
    again = await runs.Wait(wait_request(**_durable(request_id)), timeout=TIMEOUT)
    assert again.run.run_id == first.run.run_id and again.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert again.state.values == first.state.values
    assert side_effects(database_url, first.run.run_id) == ONCE


async def test_a_repeated_wait_on_an_existing_thread_gets_the_first_run_and_runs_the_graph_once(runs, database_url):
    # A Wait on an existing thread sends its acceptance in the pipeline of LangGraph's first read:
    # the repeat's acceptance fails there, and the repeat follows the first run instead.
    thread_id = (await runs.Wait(wait_request(**_durable(str(uuid.uuid4()))), timeout=TIMEOUT)).run.thread_id
    request_id = str(uuid.uuid4())
    first = await runs.Wait(wait_request(**_durable(request_id, thread_id=thread_id)), timeout=TIMEOUT)
    again = await runs.Wait(wait_request(**_durable(request_id, thread_id=thread_id)), timeout=TIMEOUT)
    assert again.run.run_id == first.run.run_id and again.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert first.run.thread_id == thread_id and again.state.values == first.state.values
    assert side_effects(database_url, first.run.run_id) == ONCE


async def test_concurrent_duplicates_share_one_run(runs, database_url):
    request_id = str(uuid.uuid4())
    replies = await asyncio.gather(*(runs.Wait(wait_request(**_durable(request_id)), timeout=TIMEOUT)
                                     for _ in range(3)))
    assert len({r.run.run_id for r in replies}) == 1
    assert all(r.run.status == run_pb2.RUN_STATUS_SUCCESS for r in replies)
    assert side_effects(database_url, replies[0].run.run_id) == ONCE


async def test_a_repeated_stream_follows_the_first_run_from_its_start(runs):
    request_id = str(uuid.uuid4())
    first = [r.event async for r in runs.Stream(stream_request(["updates"], **_durable(request_id)), timeout=TIMEOUT)]
    again = [r.event async for r in runs.Stream(stream_request(["updates"], **_durable(request_id)), timeout=TIMEOUT)]
    assert [e.sequence for e in again] == [e.sequence for e in first]
    assert again[0].metadata.run_id == first[0].metadata.run_id


async def test_a_repeated_create_returns_the_first_run(runs):
    request_id = str(uuid.uuid4())
    first = await runs.Create(pb.RunServiceCreateRequest(spec=spec(**_durable(request_id))), timeout=TIMEOUT)
    again = await runs.Create(pb.RunServiceCreateRequest(spec=spec(**_durable(request_id))), timeout=TIMEOUT)
    assert again.run.run_id == first.run.run_id


async def test_the_same_request_id_for_another_run_is_refused(runs):
    request_id = str(uuid.uuid4())
    await runs.Wait(wait_request(**_durable(request_id)), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await runs.Wait(wait_request(**_durable(request_id, metadata={"other": 1})), timeout=TIMEOUT)
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(reused.value)["reason"] == "REQUEST_ID_REUSED"


async def test_a_request_id_that_is_too_long_names_the_field(runs):
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await runs.Wait(wait_request(**_durable("x" * 129)), timeout=TIMEOUT)
    assert "spec.request_id" in details(bad.value)["violations"]


async def test_the_client_retries_a_wait_whose_connection_dropped_and_the_graph_runs_once(server, database_url):
    """The connection is reset while the run waits at a gate; the client sends the Wait again with
    its request id and gets the same run, which the server kept going (on_disconnect CONTINUE)."""
    proxy = TcpProxy("127.0.0.1", server.port)
    try:
        async with AsyncClient(f"127.0.0.1:{proxy.port}") as client:
            request_id = str(uuid.uuid4())
            waiting = asyncio.ensure_future(client.wait(
                "durable", {"tag": "retried", "gates": {"n2": "{run_id}-{attempt}"}}, request_id=request_id,
                on_disconnect="continue", deadline=TIMEOUT))
            run_id = str(uuid.uuid5(uuid.UUID("6d3f7a52-4a8e-4c61-9f1d-2f7c4b0c9a11"), f"\x00{request_id}"))
            await reached_gate(database_url, f"{run_id}-1")
            assert await asyncio.to_thread(proxy.reset) >= 1  # the call's connection is gone
            open_gate(database_url, f"{run_id}-1")
            result = await waiting
    finally:
        proxy.close()
    assert result.run_id == run_id and result.status == "success"
    assert side_effects(database_url, run_id) == ONCE
