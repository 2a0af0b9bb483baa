"""Shared fixtures: a scratch PostgreSQL database and a real graphrun server.

The database is created fresh for the test session on the PostgreSQL at
GRAPHRUN_TEST_ADMIN_DSN (default: the local server on 127.0.0.1:5432) and
dropped afterwards. Where no PostgreSQL answers, an embedded one (pgserver) is
started instead, so `make test` works on a bare machine too.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
import uuid

import grpc
import psycopg
import pytest
from psycopg import sql

from graphrun.v1 import (assistant_service_pb2_grpc, run_service_pb2_grpc, thread_service_pb2_grpc)
from graphrun_server.app import App, Settings

HERE = pathlib.Path(__file__).parent
GRAPHS_CONFIG = str(HERE / "graphs" / "langgraph.json")
ADMIN_DSN = os.environ.get("GRAPHRUN_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_dsn() -> str:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            return ADMIN_DSN
    except psycopg.OperationalError:
        from graphrun_server.storage.database import start_embedded

        return start_embedded(pathlib.Path(tempfile.mkdtemp(prefix="graphrun-test-pg-")) / "pgdata").get_uri()


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    return _admin_dsn()


@contextlib.contextmanager
def scratch_database(admin_dsn: str):
    """A new database (with the test graphs' gate, gate-waiter and side-effect tables), dropped afterwards."""
    name = f"graphrun_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**info)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE test_gate (name text PRIMARY KEY)")
        conn.execute("CREATE TABLE test_gate_waiter"
                     " (name text, task_key text, at timestamptz DEFAULT clock_timestamp())")
        conn.execute("CREATE TABLE test_side_effect"
                     " (run_id text, node text, attempt int, at timestamptz DEFAULT clock_timestamp())")
    try:
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_url(admin_dsn):
    """The scratch database of the in-process test server."""
    with scratch_database(admin_dsn) as dsn:
        os.environ["GRAPHRUN_TEST_DSN"] = dsn  # where tests/graphs/durable.py finds its gates
        yield dsn


@pytest.fixture(scope="session")
async def server(database_url):
    """A graphrun server on 127.0.0.1:<free port> serving the test graphs."""
    app = await App(Settings(host="127.0.0.1", port=0, database_url=database_url, config=GRAPHS_CONFIG)).start()
    yield app
    await app.stop(grace=1)


@pytest.fixture(scope="session")
async def channel(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture(scope="session")
def runs(channel):
    return run_service_pb2_grpc.RunServiceStub(channel)


@pytest.fixture(scope="session")
def threads(channel):
    return thread_service_pb2_grpc.ThreadServiceStub(channel)


@pytest.fixture(scope="session")
def assistants(channel):
    return assistant_service_pb2_grpc.AssistantServiceStub(channel)


@pytest.fixture
def db(database_url):
    """A direct connection to the test database, to check what was stored."""
    with psycopg.connect(database_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        yield conn
