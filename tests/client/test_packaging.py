"""The client installs alone: a fresh venv with only the graphrun-client wheel gets grpcio,
protobuf and Google's common protos — none of the server's dependencies — and calls a running
server from Python and from the `graphrun` command, whose `serve` says how to get the server."""

from __future__ import annotations

import asyncio
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLIENT_NEEDS = {"graphrun-client", "grpcio", "grpcio-health-checking", "grpcio-status", "protobuf",
                "googleapis-common-protos"}
SERVER_ONLY = {"graphrun", "langgraph", "langchain-core", "psycopg", "psycopg-pool", "pgserver", "uvloop",
               "opentelemetry-sdk", "prometheus-client", "pyjwt", "python-dotenv"}


def _run(*argv: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> pathlib.Path:
    """A venv holding the client wheel, built from client/ and installed from the package index."""
    work = tmp_path_factory.mktemp("client-only")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "wheels"), str(ROOT / "client"))
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "wheels").glob("graphrun_client-*.whl")
    venv = work / "venv"
    assert _run(sys.executable, "-m", "venv", str(venv)).returncode == 0
    installed = _run(str(venv / "bin" / "pip"), "install", "-q", str(wheel))
    assert installed.returncode == 0, installed.stderr
    return venv


def test_the_client_brings_none_of_the_servers_dependencies(client_venv):
    listed = _run(str(client_venv / "bin" / "pip"), "list", "--format", "json")
    names = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert CLIENT_NEEDS <= names
    assert names & SERVER_ONLY == set()


async def test_the_client_alone_calls_a_running_server(client_venv, server):
    target = f"127.0.0.1:{server.port}"
    script = ("import sys; from graphrun import Client\n"
              "with Client(sys.argv[1]) as client:\n"
              "    result = client.wait('agent', {'messages': [{'role': 'user', 'content': 'Wie spät ist es?'}]})\n"
              "    print(result.status)\n")
    called = await asyncio.to_thread(_run, str(client_venv / "bin" / "python"), "-c", script, target,
                                     cwd=client_venv)  # not the checkout: nothing importable from it
    assert (called.returncode, called.stdout.strip()) == (0, "success"), called.stderr
    listed = await asyncio.to_thread(_run, str(client_venv / "bin" / "graphrun"), "--target", target, "assistants",
                                     "--json", "list", cwd=client_venv)
    assert listed.returncode == 0, listed.stderr
    assert "agent" in listed.stdout


def test_serve_without_the_server_says_how_to_install_it(client_venv):
    served = _run(str(client_venv / "bin" / "graphrun"), "serve", "--port", "0", cwd=client_venv)
    assert served.returncode == 2
    assert "pip install graphrun" in served.stderr
    assert "Traceback" not in served.stderr
