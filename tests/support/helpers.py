"""Small helpers for the tests: building requests and reading rich error details."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from graphrun.v1 import run_pb2, run_service_pb2

QUESTION = "Wann wurde die Heizungsanlage gewartet?"

# Every RPC of a test gets a deadline: a behaviour that breaks makes the test fail, instead of
# hanging until pytest's own timeout. Generous, so that a loaded machine never trips it.
TIMEOUT = 30


def spec(**fields: Any) -> run_pb2.RunSpec:
    """A RunSpec from JSON-style fields, as a grpcurl user would write them."""
    return json_format.ParseDict(fields, run_pb2.RunSpec())


def wait_request(**fields: Any) -> run_service_pb2.RunServiceWaitRequest:
    return run_service_pb2.RunServiceWaitRequest(spec=spec(**fields))


def stream_request(modes: list[str], **fields: Any) -> run_service_pb2.RunServiceStreamRequest:
    return run_service_pb2.RunServiceStreamRequest(spec=spec(**fields), stream_mode=modes)


def question(text: str = QUESTION) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The google.rpc details of a failed call: reason, metadata, field violations."""
    status = rpc_status.from_call(error)
    out: dict[str, Any] = {"reason": None, "domain": None, "metadata": {}, "violations": {}, "retry": None}
    assert status is not None, f"no rich status on {error.code()}: {error.details()}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out.update(reason=info.reason, domain=info.domain, metadata=dict(info.metadata))
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["violations"] = {v.field: v.description for v in bad.field_violations}
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            out["retry"] = retry.retry_delay.ToTimedelta().total_seconds()
    return out


def to_dict(message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def messages(state) -> list[dict]:
    return to_dict(state.values).get("messages", [])


def open_gate(dsn: str, name: str) -> None:
    """Open a gate a test graph node waits on (tests/graphs/durable.py)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO test_gate (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))
        conn.execute("SELECT pg_notify('test_gate', %s)", (name,))


async def reached_gate(dsn: str, name: str) -> None:
    """Wait until a node of tests/graphs/durable.py waits at gate `name` (it tells by NOTIFY)."""
    import asyncio

    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("LISTEN test_gate_waiter")
        cur = await conn.execute("SELECT 1 FROM test_gate_waiter WHERE name = %s", (name,))
        if await cur.fetchone():
            return
        async with asyncio.timeout(TIMEOUT):
            async for note in conn.notifies():
                if note.payload == name:
                    return


def side_effects(dsn: str, run_id: str) -> dict[str, list[int]]:
    """node -> the attempts in which it completed, for one run of tests/graphs/durable.py."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT node, attempt FROM test_side_effect WHERE run_id = %s ORDER BY at",
                            (run_id,)).fetchall()
    out: dict[str, list[int]] = {}
    for node, attempt in rows:
        out.setdefault(node, []).append(attempt)
    return out
