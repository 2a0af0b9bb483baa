"""The TypeScript stubs in clients/typescript: fresh, and able to call Wait and Stream.

A client generated from the protos with protoc-gen-es (buf.gen.yaml) and
@connectrpc/connect-node runs clients/typescript/src/smoke.ts against the test
server over gRPC. Needs node and `npm ci --prefix clients/typescript`: without
them these tests are skipped locally and fail in CI (CI=true).
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TS_DIR = REPO / "clients" / "typescript"
GEN_DIR = TS_DIR / "src" / "gen"
NODE_MODULES = TS_DIR / "node_modules"


def _node() -> str:
    """The node binary, or skip (fail in CI) when the toolchain is not installed."""
    node = shutil.which("node")
    if node is None:
        missing = "node is not installed"
    elif not (NODE_MODULES / ".bin" / "protoc-gen-es").exists() or not (NODE_MODULES / "typescript").is_dir():
        missing = f"{NODE_MODULES.relative_to(REPO)} is missing: run `npm ci --prefix clients/typescript`"
    else:
        return node
    if os.environ.get("CI") == "true":
        pytest.fail(f"TypeScript client toolchain required in CI: {missing}")
    pytest.skip(missing)


def _buf() -> str:
    buf = pathlib.Path(sys.executable).parent / "buf"
    return str(buf) if buf.exists() else (shutil.which("buf") or pytest.fail("buf is not installed"))


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generated_stubs_are_up_to_date(tmp_path):
    _node()
    generated = subprocess.run([_buf(), "generate", "--output", str(tmp_path)], cwd=REPO,
                               capture_output=True, text=True, timeout=60)
    assert generated.returncode == 0, generated.stderr
    fresh = _files(tmp_path / GEN_DIR.relative_to(REPO))
    committed = _files(GEN_DIR)
    assert fresh, "buf generate produced no files"
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"clients/typescript/src/gen is stale ({', '.join(stale)}): run `.venv/bin/buf generate`"


async def _run(*args: str, timeout: float) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*args, cwd=TS_DIR, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


async def test_typescript_client_calls_wait_and_stream(server):
    node = _node()
    # Type-checks the stubs and the program, and compiles them to dist/ (git-ignored).
    code, out, err = await _run(node, str(NODE_MODULES / "typescript" / "bin" / "tsc"), "-p", ".", timeout=60)
    assert code == 0, f"tsc failed:\n{out}{err}"

    code, out, err = await _run(node, "dist/smoke.js", str(server.port), timeout=60)
    assert code == 0, f"smoke.ts failed ({code}):\n{err}\n{out}"
    summary = json.loads(out.strip().splitlines()[-1])

    assert summary["ok"] is True
    wait = summary["wait"]
    assert wait["status"] == "SUCCESS" and wait["answer_contains_expected"] is True
    assert wait["run_id"] and wait["thread_id"] and wait["messages"] == 4  # user, tool call, tool result, answer
    stream = summary["stream"]
    assert (stream["first"], stream["last"], stream["status"]) == ("metadata", "end", "SUCCESS")
    assert stream["sequences_ok"] is True and stream["run_id"] != wait["run_id"]
    assert stream["counts"]["metadata"] == 1 and stream["counts"]["end"] == 1 and stream["counts"]["message"] > 3
    assert sum(stream["counts"].values()) == stream["events"]
    assert stream["answer_deltas"] > 3
