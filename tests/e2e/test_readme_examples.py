"""The README's `buf curl` and grpcurl examples, run against a real server so they never rot.

The commands are read from README.md when the tests are collected (no copies
here): every line group in a fenced `sh` block that starts with `buf curl` or
`grpcurl`, backslash-continued lines joined. Each `buf curl` example runs as
written with `.venv/bin/buf`, the README's port replaced by the test
server's and `<thread-id>` by a thread that has run the agent. grpcurl is not
installed, so each grpcurl example is checked by sending its JSON body to the
same method through `buf curl` ("grpcurl takes the same JSON"), and by
comparing the body's shape with the `buf curl` example for that method.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shlex
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from graphrun import AsyncClient
from graphrun.v1 import run_service_pb2, thread_service_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BUF = pathlib.Path(sys.executable).parent / "buf"
README_ADDRESS = "127.0.0.1:50051"
THREAD_PLACEHOLDER = "<thread-id>"
QUESTION = "Wann wurde die Heizungsanlage gewartet?"

# The request message of each method an example calls, to check grpcurl bodies against.
REQUESTS: dict[str, type[Message]] = {
    "graphrun.v1.RunService/Wait": run_service_pb2.RunServiceWaitRequest,
    "graphrun.v1.RunService/Stream": run_service_pb2.RunServiceStreamRequest,
    "graphrun.v1.ThreadService/GetState": thread_service_pb2.ThreadServiceGetStateRequest,
}


@dataclass(frozen=True)
class Example:
    """One command of the README: its words (shell-split) and where it starts."""

    line: int
    argv: tuple[str, ...]

    @property
    def tool(self) -> str:
        return "buf curl" if self.argv[:2] == ("buf", "curl") else self.argv[0]

    def option(self, *names: str) -> str | None:
        """The value of the first of `names` given (`-d X` or `--data=X`)."""
        for i, word in enumerate(self.argv):
            for name in names:
                if word == name and i + 1 < len(self.argv):
                    return self.argv[i + 1]
                if word.startswith(name + "="):
                    return word.split("=", 1)[1]
        return None

    @property
    def body(self) -> str | None:
        return self.option("-d", "--data")

    @property
    def method(self) -> str | None:
        """`graphrun.v1.RunService/Wait`, or None for a command that calls none (--list-methods)."""
        if self.tool == "buf curl":
            url = self.argv[-1]
            match = re.fullmatch(r"https?://[^/]+/(.+/.+)", url)
            return match.group(1) if match else None
        return self.argv[-1] if "/" in self.argv[-1] else None

    def __str__(self) -> str:
        return f"README.md:{self.line}: {shlex.join(self.argv)}"


def _complete(command: str) -> bool:
    """Whether `command` is a whole shell command: no trailing backslash, no quote left open."""
    if command.endswith("\\"):
        return False
    try:
        shlex.split(command, comments=True)
    except ValueError:  # "No closing quotation": a quoted JSON body goes on on the next line
        return False
    return True


def readme_examples(text: str) -> list[Example]:
    """Every `buf curl` / `grpcurl` command in the README's fenced sh blocks.

    A command goes on over lines ending in a backslash (joined, as the shell
    does) and over newlines inside quotes (kept: they are part of the JSON).
    """
    examples = []
    for block in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
        first_line = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        i = 0
        while i < len(lines):
            start, command = i, lines[i]
            while not _complete(command) and i + 1 < len(lines):
                i += 1
                command = command[:-1] + lines[i] if command.endswith("\\") else command + "\n" + lines[i]
            i += 1
            words = command.strip()
            if words.startswith("buf curl ") or words.startswith("grpcurl "):
                examples.append(Example(first_line + start, tuple(shlex.split(words, comments=True))))
    return examples


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))
BUF_CURL = [e for e in EXAMPLES if e.tool == "buf curl"]
GRPCURL = [e for e in EXAMPLES if e.tool == "grpcurl"]


def example_id(example: Example) -> str:
    name = "list-methods" if "--list-methods" in example.argv else (example.method or "").split(".")[-1]
    return f"{example.tool.replace(' ', '-')}-line{example.line}-{name}"


def test_the_readme_has_the_examples_these_tests_expect() -> None:
    methods = {e.method for e in BUF_CURL}
    assert {"graphrun.v1.RunService/Wait", "graphrun.v1.RunService/Stream",
            "graphrun.v1.ThreadService/GetState"} <= methods, methods
    assert any("--list-methods" in e.argv for e in BUF_CURL)
    assert GRPCURL, "no grpcurl examples found"
    for example in BUF_CURL:
        assert README_ADDRESS in " ".join(example.argv), f"{example}: expected the default address {README_ADDRESS}"
        assert "--protocol" in example.argv and example.option("--protocol") == "grpc", str(example)


# -- running them ------------------------------------------------------------------


def json_documents(text: str) -> list[Any]:
    """The JSON documents `buf curl` printed, one per response message (pretty-printed, back to back)."""
    decoder, documents, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        document, i = decoder.raw_decode(text, i)
        documents.append(document)
    return documents


async def run(argv: list[str], timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def localize(argv: tuple[str, ...], port: int, thread_id: str) -> list[str]:
    """The README's command for the test server: its port, a real thread, and the venv's buf."""
    words = [word.replace(README_ADDRESS, f"127.0.0.1:{port}").replace(THREAD_PLACEHOLDER, thread_id)
             for word in argv]
    assert words[:2] == ["buf", "curl"]
    return [str(BUF), *words[1:]]


@pytest.fixture(scope="module")
async def thread_id(server) -> str:
    """A thread the agent has answered on, for the examples that name `<thread-id>`."""
    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        result = await client.wait("agent", {"messages": [{"role": "user", "content": QUESTION}]})
    assert result.status == "success"
    return result.thread_id


def field(message: dict[str, Any], name: str) -> Any:
    """A field of buf curl's JSON output, which spells names in lowerCamelCase."""
    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
    return message.get(camel, message.get(name))


def check_wait(documents: list[Any]) -> None:
    [response] = documents
    run_record, state = field(response, "run"), field(response, "state")
    assert field(run_record, "status") == "RUN_STATUS_SUCCESS"
    messages = state["values"]["messages"]
    assert messages[0]["content"] == QUESTION
    assert "15. Januar 2025" in messages[-1]["content"]


def check_stream(documents: list[Any]) -> None:
    events = [response["event"] for response in documents]
    assert [int(e["sequence"]) for e in events] == list(range(1, len(events) + 1))  # int64 as JSON strings
    assert "metadata" in events[0] and "end" in events[-1]
    assert all("metadata" not in e and "end" not in e for e in events[1:-1])
    assert field(field(events[-1]["end"], "run"), "status") == "RUN_STATUS_SUCCESS"
    tokens = "".join(e["message"]["message"].get("content", "") for e in events
                     if "message" in e and e["message"].get("delta"))
    assert "15. Januar 2025" in tokens


def check_get_state(documents: list[Any]) -> None:
    [response] = documents
    values = response["state"]["values"]
    assert [m["role"] for m in values["messages"]] == ["user", "ai", "tool", "ai"]
    assert "15. Januar 2025" in values["messages"][-1]["content"]


@pytest.mark.parametrize("example", BUF_CURL, ids=example_id)
async def test_buf_curl_example(example: Example, server, thread_id: str) -> None:
    argv = localize(example.argv, server.port, thread_id)
    code, out, err = await run(argv)
    assert code == 0, f"{example}\nexit {code}\n{err}{out}"
    if "--list-methods" in example.argv:
        methods = out.split()
        assert {"graphrun.v1.RunService/Wait", "graphrun.v1.RunService/Stream",
                "graphrun.v1.ThreadService/GetState", "grpc.health.v1.Health/Check"} <= set(methods), out
        return
    documents = json_documents(out)
    if example.method == "graphrun.v1.RunService/Wait":
        check_wait(documents)
    elif example.method == "graphrun.v1.RunService/Stream":
        check_stream(documents)
    elif example.method == "graphrun.v1.ThreadService/GetState":
        check_get_state(documents)
    else:
        assert documents, f"{example}: no response"


# -- grpcurl: the same JSON -----------------------------------------------------------


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what must agree between two bodies for one method."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def check_same_shape(body: Any, reference: Any, where: str = "") -> None:
    """Every field both bodies set has the same shape (options only one of them sets may differ)."""
    if isinstance(body, dict) and isinstance(reference, dict):
        for key in body.keys() & reference.keys():
            check_same_shape(body[key], reference[key], f"{where}.{key}")
    elif isinstance(body, list) and isinstance(reference, list):
        for item in body:  # lists of one kind: each item shaped like the reference's first
            if reference:
                check_same_shape(item, reference[0], f"{where}[]")
    else:
        assert shape(body) == shape(reference), f"{where or 'body'}: {shape(body)} vs {shape(reference)}"


@pytest.mark.parametrize("example", GRPCURL, ids=example_id)
async def test_grpcurl_example_sends_json_the_server_accepts(example: Example, server) -> None:
    assert example.argv[1] == "-plaintext", str(example)
    address = example.argv[-2]
    assert address == README_ADDRESS, str(example)
    method = example.method
    assert method in REQUESTS, f"{example}: no request type known for {method}"
    assert example.body is not None, str(example)
    body = json.loads(example.body)
    json_format.ParseDict(body, REQUESTS[method]())  # names real fields, in proto JSON

    references = [e for e in BUF_CURL if e.method == method and e.body is not None]
    assert references, f"{example}: no buf curl example of {method} to compare with"
    reference = json.loads(references[0].body or "")
    check_same_shape(body, reference)
    # The same top-level structure: the same request, only options differ.
    assert body.keys() == reference.keys(), f"{example}: {sorted(body)} vs {sorted(reference)}"
    if isinstance(body.get("spec"), dict):
        assert body["spec"]["assistant_id"] == reference["spec"]["assistant_id"]
        assert body["spec"]["input"] == reference["spec"]["input"]

    # And the server takes it, sent as grpcurl would (buf curl speaks the same gRPC).
    code, out, err = await run([str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d",
                                example.body, f"http://127.0.0.1:{server.port}/{method}"])
    assert code == 0, f"{example}\nexit {code}\n{err}{out}"
    documents = json_documents(out)
    if method == "graphrun.v1.RunService/Wait":
        check_wait(documents)
    elif method == "graphrun.v1.RunService/Stream":
        check_stream(documents)


def python_examples(text: str) -> list[tuple[int, str]]:
    """The README's fenced python blocks that use the client library: (line, code)."""
    return [(text.count("\n", 0, block.start(1)) + 1, block.group(1))
            for block in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M) if "from graphrun" in block.group(1)]


PYTHON = python_examples(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("line, code", PYTHON, ids=[f"python-line{line}" for line, _ in PYTHON])
async def test_the_readme_python_example_runs(server, line, code):
    """Run as written (in a process of its own), against the test server instead of the README's."""
    assert README_ADDRESS in code, f"README.md:{line}: expected the default address {README_ADDRESS}"
    status, out, err = await run([sys.executable, "-c", code.replace(README_ADDRESS, f"127.0.0.1:{server.port}")])
    assert status == 0, f"README.md:{line}:\n{err[-3000:]}"
    assert out.startswith("success ") and "15. Januar 2025" in out, out
