"""The `graphrun` command against a real server.

`main()` is blocking, so it runs in a worker thread while the session loop
keeps the server answering; one test runs the installed entry point as a real
subprocess.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import sys
import uuid

import grpc
import pytest

import graphrun_server.app
from graphrun import Client
from graphrun._errors import GraphrunError
from graphrun.cli import main, print_error

QUESTION = "Wann wurde die Heizungsanlage gewartet?"
GRAPHRUN = pathlib.Path(sys.executable).parent / "graphrun"


@pytest.fixture(scope="session")
def target(server) -> str:
    return f"127.0.0.1:{server.port}"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_conversation(out: str) -> None:
    blocks = out.strip().split("\n\n")
    assert blocks[0] == f"user: {QUESTION}"
    assert blocks[1] == f'ai: → search_archives({{"query": "{QUESTION}"}})'
    assert blocks[2].startswith("tool search_archives: [1] Archiv: Heizungsanlage gewartet (15. Januar 2025)")
    assert blocks[3].startswith("ai: ") and "15. Januar 2025" in blocks[3]


async def test_wait_prints_the_conversation_via_the_entry_point(target: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(GRAPHRUN), "--target", target, "wait", QUESTION,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    text = out.decode()
    check_conversation(text)
    footer = text.strip().splitlines()[-1]
    assert footer.startswith("run ") and "· thread " in footer and footer.endswith("· success")
    assert "\033[" not in text  # no colours when stdout is not a terminal


async def test_wait_continues_a_thread_and_prints_json(target: str, capsys) -> None:
    thread_id = str(uuid.uuid4())
    code, out, _ = await cli(capsys, "--target", target, "wait", QUESTION, "--thread", thread_id)
    assert code == 0
    check_conversation(out)
    assert f"thread {thread_id} · success" in out

    code, out, _ = await cli(capsys, "wait", "Und die Lüftung?", "--thread", thread_id, "--json", "--target", target)
    assert code == 0
    result = json.loads(out)
    assert result["run"]["thread_id"] == thread_id
    assert result["run"]["status"] == "success"
    messages = result["state"]["values"]["messages"]
    assert len(messages) == 8 and "7. Mai 2024" in messages[-1]["content"]


async def test_wait_shows_interrupts_and_resume_answers_them(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "ship it", "--assistant", "approval")
    assert code == 0
    assert 'interrupt ' in out and '"question": "approve?"' in out and "next: review" in out
    assert out.strip().endswith("· interrupted")
    thread_id = out.strip().splitlines()[-1].split("thread ")[1].split(" ·")[0]

    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "approval",
                             "--thread", thread_id, "--resume", "yes")
    assert code == 0
    assert "ai: decision: yes" in out and out.strip().endswith("· success")


async def test_wait_shows_progress_on_stderr_without_changing_stdout(target: str, capsys, monkeypatch) -> None:
    # Tests have no terminal: GRAPHRUN_PROGRESS=1 turns on what a TTY on stderr would.
    monkeypatch.setenv("GRAPHRUN_PROGRESS", "1")
    code, out, err = await cli(capsys, "--target", target, "wait", QUESTION)
    assert code == 0
    check_conversation(out)
    assert out.strip().endswith("· success") and "⏳" not in out
    frames = [frame for frame in err.split("\r\033[K") if frame]  # each redraw erases the line first
    assert frames[0].startswith("⏳ 0.") and frames[0].endswith(" s")  # drawn at once, before any node
    assert "· node agent" in err and "· node tools" in err
    assert all(re.fullmatch(r"⏳ \d+\.\d s( · nodes? [\w, ]+)?", frame) for frame in frames), frames
    assert err.endswith("\r\033[K")  # erased at the end: only the conversation stays on screen

    # The same result as without progress (which asks Wait), down to the JSON.
    code, out, err = await cli(capsys, "--target", target, "wait", QUESTION, "--json")
    assert code == 0 and "· node agent" in err
    with_progress = json.loads(out)
    monkeypatch.setenv("GRAPHRUN_PROGRESS", "0")
    code, out, err = await cli(capsys, "--target", target, "wait", QUESTION, "--json")
    assert code == 0 and err == ""
    plain = json.loads(out)
    assert with_progress["run"].keys() == plain["run"].keys() and with_progress["state"].keys() == plain["state"].keys()
    assert ([(m["role"], m["content"]) for m in with_progress["state"]["values"]["messages"]]
            == [(m["role"], m["content"]) for m in plain["state"]["values"]["messages"]])


async def test_wait_progress_then_error(target: str, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHRUN_PROGRESS", "1")
    code, out, err = await cli(capsys, "--target", target, "wait", "x", "--assistant", "tool_error")
    assert code == 1 and out == ""
    progress, _, message = err.rpartition("\r\033[K")  # the line is erased before the error is printed
    assert "· node " in progress
    assert message.startswith("error: ABORTED RUN_FAILED: run ")


class _FlushRecorder:
    """A stdout that remembers what had been written at each flush."""

    def __init__(self) -> None:
        self.pending = ""
        self.flushed: list[str] = []

    def write(self, text: str) -> int:
        self.pending += text
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.flushed.append(self.pending)
            self.pending = ""

    def isatty(self) -> bool:
        return False


async def test_stream_prints_tokens_as_they_arrive(target: str, monkeypatch) -> None:
    recorder = _FlushRecorder()
    monkeypatch.setattr(sys, "stdout", recorder)
    code = await asyncio.to_thread(main, ["--target", target, "stream", QUESTION])
    recorder.flush()
    assert code == 0
    out = "".join(recorder.flushed)
    assert out.startswith(f"user: {QUESTION}\n\nai: → ")  # the question first, as `wait` shows it
    assert f'ai: → search_archives({{"query": "{QUESTION}"}})' in out
    assert "tool search_archives: [1] Archiv: Heizungsanlage gewartet" in out
    assert out.strip().endswith("· success")
    # The answer went out word by word, each flushed on its own.
    answer_chunks = out.split("\nai: ")[-1].split("\n")[0]
    assert "15. Januar 2025" in answer_chunks
    assert " **15." in recorder.flushed and " Januar" in recorder.flushed
    assert out.count("**15. Januar 2025**") == 1  # the complete message does not repeat the streamed text


async def test_stream_json_prints_one_event_per_line(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", QUESTION, "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "metadata" and events[-1]["kind"] == "end"
    kinds = {e["kind"] for e in events}
    assert kinds == {"metadata", "message", "updates", "task", "end"}  # the default modes (no custom data here)
    tokens = "".join(e["data"]["message"]["content"] for e in events
                     if e["kind"] == "message" and e["data"]["delta"])
    assert "15. Januar 2025" in tokens


async def test_stream_failure_prints_error_after_the_events(target: str, capsys) -> None:
    code, out, err = await cli(capsys, "--target", target, "stream", "x", "--assistant", "tool_error")
    assert code == 1
    assert "ai: → search_archives" in out and out.strip().endswith("· error")
    assert err.startswith("error: ABORTED RUN_FAILED: run ")
    assert "  run " in err  # the run and thread to look at


async def test_threads_commands(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "threads", "create", "--metadata", '{"user": "ada"}')
    assert code == 0
    thread_id = out.strip()
    assert str(uuid.UUID(thread_id)) == thread_id

    code, out, _ = await cli(capsys, "--target", target, "threads", "get", thread_id)
    assert code == 0
    assert f"thread_id: {thread_id}" in out and "status: idle" in out and '"user": "ada"' in out

    assert (await cli(capsys, "--target", target, "wait", QUESTION, "--thread", thread_id))[0] == 0

    code, out, _ = await cli(capsys, "--target", target, "threads", "state", thread_id)
    assert code == 0
    check_conversation(out)
    assert f"thread {thread_id} · checkpoint " in out and "· step 3" in out

    code, out, _ = await cli(capsys, "--target", target, "threads", "state", thread_id, "--json")
    assert code == 0
    assert len(json.loads(out)["values"]["messages"]) == 4

    code, out, _ = await cli(capsys, "--target", target, "threads", "history", thread_id)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 5 and "step   3" in lines[0] and "step  -1" in lines[-1]
    assert "   4 messages  " in lines[0] and "    1 message  " in lines[-2]  # counted, aligned
    code, out, _ = await cli(capsys, "--target", target, "threads", "history", thread_id, "--json", "--limit", "2")
    assert len(json.loads(out)) == 2

    code, out, _ = await cli(capsys, "--target", target, "threads", "delete", thread_id)
    assert (code, out.strip()) == (0, f"deleted {thread_id}")

    code, out, err = await cli(capsys, "--target", target, "threads", "state", thread_id)
    assert code == 1 and out == ""
    assert err.strip() == f"error: NOT_FOUND THREAD_NOT_FOUND: thread {thread_id} not found"


async def test_runs_commands(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "runs", "create", QUESTION, "--json")
    assert code == 0
    run = json.loads(out)
    run_id, thread_id = run["run_id"], run["thread_id"]
    assert run["assistant_id"] == "agent" and run["status"] in ("pending", "running")

    # Follow it to its end: rendered like `stream` (tool calls, tokens, final status).
    code, out, _ = await cli(capsys, "--target", target, "runs", "join", run_id)
    assert code == 0
    assert f'ai: → search_archives({{"query": "{QUESTION}"}})' in out
    assert "tool search_archives: [1] Archiv: Heizungsanlage gewartet" in out
    assert out.count("**15. Januar 2025**") == 1  # streamed once, not repeated by the complete message
    assert out.strip().splitlines()[-1] == f"run {run_id} · thread {thread_id} · success"

    # Joining the finished run again replays it, down to the final status; --after skips events.
    code, out, _ = await cli(capsys, "--target", target, "runs", "join", run_id, "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["kind"] == "end" and events[-1]["data"]["run"]["status"] == "success"
    code, out, _ = await cli(capsys, "--target", target, "runs", "join", run_id, "--after", str(len(events) - 1))
    assert code == 0 and out.strip().endswith(f"thread {thread_id} · success")
    assert "search_archives" not in out

    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert code == 0
    lines = out.splitlines()
    assert f"run_id: {run_id}" in lines and f"thread_id: {thread_id}" in lines
    assert "status: success" in lines and "assistant_id: agent" in lines and "attempt: 1" in lines
    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id, "--json")
    assert json.loads(out)["status"] == "success"

    # A delayed run on the same thread: listed as pending, then cancelled.
    code, out, _ = await cli(capsys, "--target", target, "runs", "create", "Und die Lüftung?", "--thread", thread_id,
                             "--delay", "3600")
    assert code == 0
    delayed_id, footer = out.strip().splitlines()
    assert str(uuid.UUID(delayed_id)) == delayed_id and footer == f"thread {thread_id} · pending"

    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id, "--json")
    assert code == 0
    assert [(r["run_id"], r["status"]) for r in json.loads(out)] == [
        (delayed_id, "pending"), (run_id, "success")]
    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id)
    assert [line.split()[:2] for line in out.splitlines()] == [[delayed_id, "pending"], [run_id, "success"]]

    code, out, _ = await cli(capsys, "--target", target, "runs", "cancel", delayed_id, "--wait")
    assert code == 0 and "status: cancelled" in out.splitlines()
    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id,
                             "--status", "cancelled", "error", "--json")
    assert [r["run_id"] for r in json.loads(out)] == [delayed_id]

    # Joining a cancelled run prints its end, then the error, and exits 1.
    code, out, err = await cli(capsys, "--target", target, "runs", "join", delayed_id)
    assert code == 1 and out.strip().endswith(f"thread {thread_id} · cancelled")
    assert err.startswith("error: CANCELLED RUN_CANCELLED: run ")

    code, out, err = await cli(capsys, "--target", target, "runs", "get", str(uuid.uuid4()))
    assert code == 1 and out == "" and err.startswith("error: NOT_FOUND RUN_NOT_FOUND: run ")
    code, out, err = await cli(capsys, "--target", target, "runs", "cancel", "nope")
    assert code == 1 and err.startswith("error: INVALID_ARGUMENT: invalid request: run_id: ")


async def test_invalid_request_prints_field_violations(target: str, capsys) -> None:
    code, out, err = await cli(capsys, "--target", target, "wait", "hi", "--thread", "not-a-uuid")
    assert code == 1 and out == ""
    # Said once: the reason repeats the code and the message already names the field.
    [line] = err.strip().splitlines()
    assert line.startswith("error: INVALID_ARGUMENT: invalid request: spec.thread_id: must be a UUID")


def test_print_error_lists_only_violations_the_message_lacks(capsys) -> None:
    exc = GraphrunError(grpc.StatusCode.INVALID_ARGUMENT, "invalid request: a: bad", reason="BAD_SPEC",
                        field_violations=[("a", "bad"), ("b", "worse")])
    print_error(exc)
    assert capsys.readouterr().err.splitlines() == [
        "error: INVALID_ARGUMENT BAD_SPEC: invalid request: a: bad", "  b: worse"]


async def test_continue_runs_on_from_a_paused_thread(target: str, capsys) -> None:
    with Client(target) as client:
        paused = await asyncio.to_thread(client.wait, "steps", {}, interrupt_before=["second"])
    thread_id = paused.thread_id
    assert paused.status == "interrupted"

    # New input is refused while the thread waits; the error says how to go on.
    code, out, err = await cli(capsys, "--target", target, "wait", "x", "--thread", thread_id, "--assistant", "steps")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: FAILED_PRECONDITION THREAD_INTERRUPTED: thread {thread_id} is waiting on an interrupt; "
        "answer it with command.resume, continue without input, or move on explicitly with command.goto "
        "/ ThreadService.UpdateState",
        "hint: answer with --resume VALUE, or continue with --continue"]

    code, out, _ = await cli(capsys, "--target", target, "stream", "--continue", "--thread", thread_id,
                             "--assistant", "steps")
    assert code == 0 and out.strip().endswith(f"thread {thread_id} · success")
    code, out, _ = await cli(capsys, "--target", target, "threads", "state", thread_id, "--json")
    assert json.loads(out)["values"]["log"] == ["first", "second", "third"]


async def test_thread_help_says_resume_needs_an_existing_thread(capsys) -> None:
    with pytest.raises(SystemExit):
        await asyncio.to_thread(main, ["wait", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "created if missing" not in help_text
    assert "--resume and --continue need an existing thread" in help_text


async def test_assistants_and_health(target: str, capsys, monkeypatch) -> None:
    code, out, _ = await cli(capsys, "--target", target, "assistants", "list")
    assert code == 0
    ids = [line.split()[0] for line in out.splitlines()]
    graphs = ids[: len([i for i in ids if not _is_uuid(i)])]  # each graph's own first, then created ones
    assert graphs == sorted(graphs) and {"agent", "approval", "steps", "tool_error"} <= set(graphs)
    code, bare, _ = await cli(capsys, "--target", target, "assistants")  # no subcommand: list
    assert (code, bare) == (0, out)
    code, out, _ = await cli(capsys, "--target", target, "assistants", "--json")
    assert code == 0 and [a["assistant_id"] for a in json.loads(out)] == ids
    code, out, _ = await cli(capsys, "--target", target, "assistants", "get", "agent")
    assert json.loads(out)["nodes"] == ["agent", "tools"]

    monkeypatch.setenv("GRAPHRUN_TARGET", target)  # the environment names the server too
    monkeypatch.setenv("GRAPHRUN_TOKEN", "t0ken")
    code, out, _ = await cli(capsys, "health")
    assert (code, out.strip()) == (0, "SERVING")


def _is_uuid(text: str) -> bool:
    try:
        return bool(uuid.UUID(text))
    except ValueError:
        return False


async def test_assistants_commands(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "assistants", "create", "--graph", "configured",
                             "--name", "Terse", "--context", '{"user": "ada", "model": "one"}',
                             "--metadata", '{"suite": "cli"}')
    assert code == 0
    assistant_id, _, version = out.split()
    assert _is_uuid(assistant_id) and version == "1"
    code, out, _ = await cli(capsys, "--target", target, "assistants", "update", assistant_id,
                             "--context", '{"user": "ada", "model": "two"}', "--json")
    assert code == 0 and json.loads(out)["version"] == 2 and json.loads(out)["name"] == "Terse"
    code, out, _ = await cli(capsys, "--target", target, "assistants", "versions", assistant_id)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["v2", "v1"]
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", assistant_id,
                             "--assistant-version", "1", "--input", "{}", "--json")
    assert code == 0 and json.loads(out)["state"]["values"]["seen"]["context"]["model"] == "one"
    code, out, _ = await cli(capsys, "--target", target, "assistants", "set-latest", assistant_id, "1")
    assert (code, out.split()) == (0, [assistant_id, "version", "1"])
    code, out, _ = await cli(capsys, "--target", target, "assistants", "list", "--metadata", '{"suite": "cli"}')
    assert code == 0 and out.split()[:3] == [assistant_id, "configured", "v1"]
    code, out, _ = await cli(capsys, "--target", target, "assistants", "delete", assistant_id)
    assert (code, out.strip()) == (0, f"deleted {assistant_id}")
    code, _, err = await cli(capsys, "--target", target, "assistants", "get", assistant_id)
    assert code == 1 and "ASSISTANT_NOT_FOUND" in err


async def test_unreachable_server(capsys) -> None:
    code, _, err = await cli(capsys, "--target", "127.0.0.1:1", "health")
    assert code == 1 and err.startswith("error: UNAVAILABLE")


async def test_usage_errors_exit_2(capsys) -> None:
    code, _, err = await cli(capsys)  # no command: help on stderr
    assert code == 2 and "usage: graphrun" in err
    with pytest.raises(SystemExit) as info:
        await asyncio.to_thread(main, ["wait"])  # neither a question nor --resume
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        await asyncio.to_thread(main, ["threads"])
    assert info.value.code == 2
    for argv in (["wait", "--continue"], ["stream", "hi", "--continue", "--thread", str(uuid.uuid4())],
                 ["wait", "--continue", "--resume", "y", "--thread", str(uuid.uuid4())],
                 ["runs"], ["runs", "list", "--status", "bogus"], ["runs", "join"], ["runs", "list", "--limit", "0"]):
        with pytest.raises(SystemExit) as info:
            await asyncio.to_thread(main, argv)
        assert info.value.code == 2
    assert "usage: graphrun" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # found while the command runs: still that command's usage
        await asyncio.to_thread(main, ["wait", "--input", "{bad"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: graphrun wait " in err and "graphrun wait: error: --input must be JSON" in err


def test_serve_passes_only_given_options(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(graphrun_server.app, "serve", seen.append)
    monkeypatch.setenv("GRAPHRUN_PORT", "6000")
    assert main(["serve", "--host", "0.0.0.0", "--config", "graphs.json", "--data-dir", "/tmp/pg"]) == 0
    [settings] = seen
    assert (settings.host, settings.port, settings.config, settings.data_dir) == ("0.0.0.0", 6000, "graphs.json", "/tmp/pg")
    assert main(["serve", "--port", "7000", "--database-url", "postgresql://db/x"]) == 0
    assert (seen[1].port, seen[1].database_url) == (7000, "postgresql://db/x")
