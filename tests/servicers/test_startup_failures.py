"""Every start-up failure of `graphrun serve` is one line on stderr naming the setting to change,
with a non-zero exit and no traceback (and no password)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import pytest

GRAPHRUN = str(pathlib.Path(sys.executable).parent / "graphrun")


def _serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([GRAPHRUN, "serve", "--port", "0", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _one_line(failed: subprocess.CompletedProcess) -> str:
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr, failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    return lines[-1] if failed.returncode == 2 else "\n".join(lines)  # 2: argparse's usage, then its one line


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("args, expected", [
    (["--database-url", "postgresql://postgres@127.0.0.1:5432/graphrun_no_such_database"],
     'database "graphrun_no_such_database" does not exist; check --database-url / GRAPHRUN_DATABASE_URL'),
    (["--database-url", "notadsn"], "'notadsn' is not a PostgreSQL DSN"),
    (["--database-url", "postgresql://app:pa55word@127.0.0.1:1/x"],
     "cannot connect to the database postgresql://app:***@127.0.0.1:1/x"),
    (["--port", "99999"], "argument --port: must be an integer from 0 to 65535, not 99999"),
    (["--pool-size", "1"], "argument --pool-size: must be an integer from 2 to 10000, not 1"),
    (["--tls-cert", "/no/such/cert.pem", "--tls-key", "/no/such/key.pem"],
     "cannot read /no/such/key.pem: No such file or directory; check --tls-key / GRAPHRUN_TLS_KEY"),
])
def test_a_bad_setting_stops_the_server_with_one_line_naming_it(args, expected):
    line = _one_line(_serve(*args))
    assert expected in line
    assert "\n" not in line and "pa55word" not in line


def test_a_busy_metrics_port_is_one_line(busy_port, database_url):
    line = _one_line(_serve("--database-url", database_url, "--metrics-port", str(busy_port)))
    assert f"cannot listen on 0.0.0.0:{busy_port}" in line or f":{busy_port}: Address already in use" in line
    assert "--metrics-port / GRAPHRUN_METRICS_PORT" in line


def test_a_variable_that_is_out_of_range_is_one_line_too():
    line = _one_line(_serve(env={"GRAPHRUN_METRICS_PORT": "70000"}))
    assert line == "GRAPHRUN_METRICS_PORT must be an integer from 0 to 65535, not 70000"


def test_a_chat_model_that_cannot_be_made_stops_the_server_at_start(database_url):
    line = _one_line(_serve("--database-url", database_url, "--chat-model", "no-such-provider:model"))
    assert "graph 'agent'" in line and "GRAPHRUN_CHAT_MODEL='no-such-provider:model'" in line
