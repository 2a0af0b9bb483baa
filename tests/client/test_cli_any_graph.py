"""The `graphrun` command driving graphs that are not the example agent.

Graphs without `messages` (tests/graphs/steps.py, nested.py, asking.py) through every run
option, every stream mode, subgraphs, interrupts and resume on the thread's own assistant;
the turn `wait` and `stream` print; and the command under signals, closed pipes and bad
JSON, as real subprocesses where the process itself matters.

The server runs in-process on the session's event loop, so subprocesses are awaited
(asyncio), never waited on with blocking calls.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pathlib
import re
import signal
import sys
import uuid

import grpc
import pytest

from conftest import scratch_database
from graphrun import Client
from graphrun import cli as cli_module
from graphrun._errors import GraphrunError, RunCancelledError
from graphrun.cli import main
from graphrun_server.app import App, Settings

GRAPHRUN = pathlib.Path(sys.executable).parent / "graphrun"
REPO = pathlib.Path(__file__).parents[2]
FEATURES = pathlib.Path(__file__).parents[1] / "projects" / "features"
QUESTION = "Wann wurde die Heizungsanlage gewartet?"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="session")
def target(server) -> str:
    return f"127.0.0.1:{server.port}"


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`main(argv)` in a worker thread (the server answers on this loop meanwhile)."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail as a usage error (exit 2); its stderr."""
    with pytest.raises(SystemExit) as info:
        await asyncio.to_thread(main, list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def subprocess_env() -> dict[str, str]:
    """The test's environment, with this worktree's client and server first on the import path."""
    paths = [str(REPO / "client"), str(REPO / "server"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "GRAPHRUN_PROGRESS": "0"}


async def start(*argv: str, stdout=asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(str(GRAPHRUN), *argv, stdout=stdout, stderr=asyncio.subprocess.PIPE,
                                                env=subprocess_env())


def lines(out: str) -> list[str]:
    return out.strip().splitlines()


def footer(out: str) -> tuple[str, str, str]:
    """run id, thread id and status from the last line (`run … · thread … · status`)."""
    match = re.fullmatch(rf"run ({UUID}) · thread ({UUID}) · (\w+)", lines(out)[-1])
    assert match, lines(out)[-1]
    return match.group(1), match.group(2), match.group(3)


async def run_end(target: str, run_id: str) -> str:
    """Follow a run to its end; its final status."""
    def follow() -> str:
        with Client(target) as client:
            try:
                events = list(client.join(run_id))
            except RunCancelledError:
                return "cancelled"
            assert events[-1].result is not None
            return events[-1].result.status
    return await asyncio.to_thread(follow)


# -- input, config, metadata, context ---------------------------------------------------------


async def test_input_as_json_text_file_and_stdin(target: str, capsys, tmp_path, monkeypatch) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps",
                             "--input", '{"log": ["given"]}')
    assert code == 0
    assert lines(out)[0] == 'values: {"log": ["given", "first", "second", "third"]}'
    assert footer(out)[2] == "success"

    path = tmp_path / "input.json"
    path.write_text('{"log": ["from a file"]}')
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", f"@{path}")
    assert code == 0 and lines(out)[0] == 'values: {"log": ["from a file", "first", "second", "third"]}'

    monkeypatch.setattr(sys, "stdin", io.StringIO('{"log": ["from stdin"]}'))
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "-")
    assert code == 0 and lines(out)[0] == 'values: {"log": ["from stdin", "first", "second", "third"]}'


async def test_input_from_stdin_of_a_real_process(target: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(GRAPHRUN), "--target", target, "stream", "--assistant", "steps", "--input", "-",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=subprocess_env())
    out, err = await process.communicate(b'{"log": ["piped"]}')
    assert process.returncode == 0, err.decode()
    assert lines(out.decode())[0] == 'update first: {"log": ["first"]}'


async def test_a_question_joins_the_inputs_messages(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "ship it", "--assistant", "approval",
                             "--input", '{"proposal": "given"}')
    assert code == 0
    assert lines(out)[0] == "user: ship it"
    assert 'values: {"proposal": "proposal for: ship it"}' in out  # the graph's own draft replaced the input's


async def test_config_reaches_the_graph(target: str, capsys) -> None:
    # steps needs 3 steps; a recursion limit of 2 stops it: the config arrived.
    code, out, err = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "{}",
                               "--config", '{"recursion_limit": 2}')
    assert code == 1 and out == ""
    assert err.startswith("error: ABORTED RUN_FAILED: ") and "GraphRecursionError" in err
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "{}",
                             "--config", '{"recursion_limit": 3}')
    assert code == 0 and footer(out)[2] == "success"


async def test_run_metadata_is_recorded(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "runs", "create", "--assistant", "steps", "--input", "{}",
                             "--metadata", '{"source": "cli-test"}')
    assert code == 0
    run_id = lines(out)[0]
    assert await run_end(target, run_id) == "success"
    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert code == 0 and 'metadata: {"source": "cli-test"}' in lines(out)


@pytest.fixture(scope="module")
async def features(admin_dsn):
    """tests/projects/features (graphs with a context schema) on a server of its own."""
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn,
                                 config=str(FEATURES / "langgraph.json"))).start()
        try:
            yield f"127.0.0.1:{app.port}"
        finally:
            await app.stop(grace=1)


async def test_context_reaches_the_graph(features: str, capsys, tmp_path) -> None:
    code, out, _ = await cli(capsys, "--target", features, "wait", "--assistant", "typed_dict_context",
                             "--input", "{}", "--context", '{"tenant": "acme", "region": "eu"}')
    assert code == 0
    assert json.loads(lines(out)[0].removeprefix("values: ")) == {
        "seen": {"type": "dict", "tenant": "acme", "region": "eu"}}

    path = tmp_path / "context.json"
    path.write_text('{"temperature": 1.5}')
    code, out, _ = await cli(capsys, "--target", features, "stream", "--assistant", "pydantic_context",
                             "--input", "{}", "--context", f"@{path}")
    assert code == 0
    assert json.loads(lines(out)[0].removeprefix("update read: ")) == {
        "seen": {"type": "Strict", "temperature": 1.5, "retries": 2}}

    # A context the schema refuses: the server's INVALID_ARGUMENT, on one line.
    code, out, err = await cli(capsys, "--target", features, "wait", "--assistant", "pydantic_context",
                               "--input", "{}", "--context", '{"temperature": 5}')
    assert code == 1 and out == ""
    assert err.startswith("error: INVALID_ARGUMENT") and "spec.context.temperature" in err


# -- bad arguments ------------------------------------------------------------------------------


async def test_bad_json_arguments_are_usage_errors(capsys, tmp_path, monkeypatch) -> None:
    err = await usage_error(capsys, "threads", "create", "--metadata", '{"a":1')
    assert "--metadata must be JSON: Expecting ',' delimiter" in err
    err = await usage_error(capsys, "threads", "create", "--metadata", "[1]")
    assert "--metadata must be a JSON object, not an array" in err
    for option in ("--input", "--context", "--config", "--metadata"):
        err = await usage_error(capsys, "wait", "--assistant", "steps", "--input", "{}", option, '"text"')
        assert f"{option} must be a JSON object, not a string" in err
        err = await usage_error(capsys, "stream", "--assistant", "steps", "--input", "{}", option, "{")
        assert f"{option} must be JSON: " in err
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    err = await usage_error(capsys, "runs", "create", "--input", f"@{bad}")
    assert f"--input must be JSON (in {bad}): " in err
    err = await usage_error(capsys, "wait", "--input", f"@{tmp_path / 'missing.json'}")
    assert "--input: cannot read" in err and "missing.json" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("{}"))
    err = await usage_error(capsys, "wait", "--input", "-", "--context", "-")
    assert "--context -: standard input was already read for --input" in err
    err = await usage_error(capsys, "store", "put", "users", "--key", "k", "--value", "[]")
    assert "--value must be a JSON object, not an array" in err
    for timeout in ("0", "-1", "inf", "nan"):
        err = await usage_error(capsys, "wait", "--assistant", "steps", "--input", "{}", "--timeout", timeout)
        assert "--timeout must be a positive number of seconds" in err
    err = await usage_error(capsys, "runs", "create", "hi", "--delay", "inf")
    assert "--delay must be a number of seconds, not negative" in err
    err = await usage_error(capsys, "stream", "hi", "--stream-mode", "nope")
    assert "invalid choice: 'nope'" in err
    err = await usage_error(capsys, "wait", "--continue", "--thread", str(uuid.uuid4()), "--input", "{}")
    assert "--continue sends no input" in err


async def test_bad_json_in_a_real_process_prints_one_line_and_no_traceback() -> None:
    process = await start("threads", "create", "--metadata", '{"a":1')
    out, err = await process.communicate()
    assert process.returncode == 2 and out == b""
    assert err.decode().splitlines()[-1] == (
        "graphrun threads create: error: --metadata must be JSON: Expecting ',' delimiter: line 1 column 7 (char 6)")
    assert b"Traceback" not in err


async def test_unknown_run_prints_no_stray_run_line(target: str, capsys) -> None:
    run_id = "00000000-0000-0000-0000-000000000000"
    code, out, err = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert (code, out) == (1, "")
    assert lines(err) == [f"error: NOT_FOUND RUN_NOT_FOUND: run {run_id} not found"]


async def test_health_of_an_unknown_service_says_so(target: str, capsys) -> None:
    code, out, err = await cli(capsys, "--target", target, "health", "--service", "nope")
    assert (code, out) == (1, "")
    assert lines(err) == ["error: NOT_FOUND: the server reports no health for service 'nope'; ask for the whole "
                          "server (no --service) or a service it serves, such as graphrun.v1.RunService"]
    code, out, _ = await cli(capsys, "--target", target, "health", "--service", "graphrun.v1.RunService")
    assert (code, out.strip()) == (0, "SERVING")


# -- stream modes and subgraphs ---------------------------------------------------------------


async def test_stream_renders_a_graph_without_messages(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "steps", "--input", "{}")
    assert code == 0
    assert lines(out)[:-2] == [
        'update first: {"log": ["first"]}',
        'custom: {"progress": "halfway"}',
        'update second: {"log": ["second"]}',
        'update third: {"log": ["third"]}',
    ]
    assert lines(out)[-2] == "" and footer(out)[2] == "success"


@pytest.mark.parametrize(("modes", "expected"), [
    (["values"], ['values: {"log": ["first"]}', 'values: {"log": ["first", "second"]}',
                  'values: {"log": ["first", "second", "third"]}']),
    (["updates"], ['update first: {"log": ["first"]}', 'update second: {"log": ["second"]}',
                   'update third: {"log": ["third"]}']),
    (["custom"], ['custom: {"progress": "halfway"}']),
    (["tasks"], ["task first started · step 1", "task first finished · step 1", "task second started · step 2",
                 "task second finished · step 2", "task third started · step 3", "task third finished · step 3"]),
    (["checkpoints"], ["checkpoint {id} · step -1 · next: __start__", "checkpoint {id} · step 0 · next: first",
                       "checkpoint {id} · step 1 · next: second", "checkpoint {id} · step 2 · next: third",
                       "checkpoint {id} · step 3"]),
    (["debug"], ["debug step -1: checkpoint {id} · next: __start__", "debug step 0: checkpoint {id} · next: first",
                 "debug step 1: task first started", "debug step 1: task first finished",
                 "debug step 1: checkpoint {id} · next: second", "debug step 2: task second started",
                 "debug step 2: task second finished", "debug step 2: checkpoint {id} · next: third",
                 "debug step 3: task third started", "debug step 3: task third finished",
                 "debug step 3: checkpoint {id}"]),
    (["custom", "updates"], ['update first: {"log": ["first"]}', 'custom: {"progress": "halfway"}',
                             'update second: {"log": ["second"]}', 'update third: {"log": ["third"]}']),
])
async def test_each_stream_mode_is_rendered(target: str, capsys, modes: list[str], expected: list[str]) -> None:
    argv = [arg for mode in modes for arg in ("--stream-mode", mode)]
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "steps", "--input", "{}", *argv)
    assert code == 0
    shown = lines(out)[:-2]
    assert len(shown) == len(expected), shown
    for line, pattern in zip(shown, expected, strict=True):  # {id}: a checkpoint id
        assert re.fullmatch(re.escape(pattern).replace(re.escape("{id}"), r"\S+"), line), (line, pattern)


async def test_events_mode_and_json_carry_the_requested_kinds(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "steps", "--input", "{}",
                             "--stream-mode", "events")
    assert code == 0
    assert "event on_chain_start first" in lines(out) and "event on_chain_end third" in lines(out)

    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "steps", "--input", "{}",
                             "--stream-mode", "values", "--stream-mode", "custom", "--json")
    assert code == 0
    kinds = [json.loads(line)["kind"] for line in lines(out)]
    assert kinds == ["metadata", "values", "custom", "values", "values", "end"]


async def test_messages_tuple_is_the_messages_mode(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", QUESTION, "--stream-mode", "messages-tuple")
    assert code == 0
    assert f'ai: → search_archives({{"query": "{QUESTION}"}})' in out and "15. Januar 2025" in out


async def test_updates_show_the_conversation_when_messages_are_not_streamed(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", QUESTION, "--stream-mode", "updates")
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert blocks[0] == f"user: {QUESTION}"
    assert blocks[1] == f'ai: → search_archives({{"query": "{QUESTION}"}})'
    assert blocks[2].startswith("tool search_archives: [1] Archiv: Heizungsanlage gewartet")
    assert blocks[3].startswith("ai: ") and out.count("**15. Januar 2025**") == 1


async def test_subgraphs_show_events_from_inside_with_their_path(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "nested", "--input", "{}",
                             "--stream-mode", "updates", "--subgraphs")
    assert code == 0
    assert lines(out)[:-2] == [
        '[inner] update one: {"log": ["inner:one"]}',
        '[inner] update two: {"log": ["inner:two"]}',
        'update inner: {"log": ["inner:one", "inner:two"]}',
        'update outer: {"log": ["outer"]}',
    ]
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "nested", "--input", "{}",
                             "--stream-mode", "updates", "--subgraphs", "--json")
    namespaces = [json.loads(line)["namespace"] for line in lines(out) if json.loads(line)["kind"] == "updates"]
    assert [len(ns) for ns in namespaces] == [1, 1, 0, 0] and namespaces[0][0].startswith("inner:")

    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "nested", "--input", "{}",
                             "--stream-mode", "updates")  # without --subgraphs: the root graph only
    assert code == 0 and "[inner]" not in out and 'update inner: {"log": ["inner:one", "inner:two"]}' in out


async def test_runs_create_records_the_modes_and_subgraphs_join_shows(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "runs", "create", "--assistant", "nested", "--input", "{}",
                             "--stream-mode", "updates", "--subgraphs")
    assert code == 0
    run_id = lines(out)[0]
    code, out, _ = await cli(capsys, "--target", target, "runs", "join", run_id)
    assert code == 0
    # Only updates (no task or message events), the subgraph's own among them. Their [inner] path
    # shows only while the join follows the run live: see the next test.
    assert [re.sub(r"^\[inner\] ", "", line) for line in lines(out)[:-2]] == [
        'update one: {"log": ["inner:one"]}', 'update two: {"log": ["inner:two"]}',
        'update inner: {"log": ["inner:one", "inner:two"]}', 'update outer: {"log": ["outer"]}']
    assert footer(out)[0] == run_id


async def test_join_of_a_finished_run_shows_the_subgraph_path(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "runs", "create", "--assistant", "nested", "--input", "{}",
                             "--stream-mode", "updates", "--subgraphs")
    run_id = lines(out)[0]
    assert await run_end(target, run_id) == "success"
    code, out, _ = await cli(capsys, "--target", target, "runs", "join", run_id)
    assert code == 0 and lines(out)[0] == '[inner] update one: {"log": ["inner:one"]}'


# -- interrupts, resume, continue, timeout ------------------------------------------------------


async def test_interrupt_before_and_after_then_continue_on_the_threads_graph(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "{}",
                             "--interrupt-before", "second,third")
    assert code == 0
    assert lines(out)[:3] == ['values: {"log": ["first"]}', "", "next: second"]
    _, thread_id, status = footer(out)
    assert status == "interrupted"

    # No --assistant: the thread's own graph (steps), not the default agent.
    code, out, _ = await cli(capsys, "--target", target, "stream", "--continue", "--thread", thread_id,
                             "--interrupt-after", "second", "--interrupt-after", "third")
    assert code == 0
    assert lines(out)[:2] == ['custom: {"progress": "halfway"}', 'update second: {"log": ["second"]}']
    assert "next: third" in lines(out)
    assert footer(out)[1:] == (thread_id, "interrupted")

    code, out, _ = await cli(capsys, "--target", target, "wait", "--continue", "--thread", thread_id)
    assert code == 0
    assert lines(out)[0] == 'values: {"log": ["first", "second", "third"]}' and footer(out)[2] == "success"

    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "{}",
                             "--interrupt-after", "*")
    assert code == 0 and "next: second" in lines(out) and footer(out)[2] == "interrupted"


async def test_resume_answers_a_non_agent_graph_on_its_own_assistant(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "subgraph_asks", "--input", "{}")
    assert code == 0
    assert re.search(r'interrupt \w+: \{"question": "inner\?"\}', out) and "next: sub" in lines(out)
    _, thread_id, status = footer(out)
    assert status == "interrupted"
    code, out, _ = await cli(capsys, "--target", target, "threads", "get", thread_id)
    assert "assistant_id: subgraph_asks" in lines(out)

    code, out, err = await cli(capsys, "--target", target, "wait", "--thread", thread_id, "--resume", "yes")
    assert code == 0, err
    assert lines(out)[0] == 'values: {"answers": ["yes"]}' and footer(out)[1:] == (thread_id, "success")
    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id, "--json")
    assert [r["assistant_id"] for r in json.loads(out)] == ["subgraph_asks", "subgraph_asks"]

    # The same through stream, on a graph with messages that is not the agent either.
    code, out, _ = await cli(capsys, "--target", target, "stream", "ship it", "--assistant", "approval")
    _, thread_id, status = footer(out)
    assert status == "interrupted"
    code, out, err = await cli(capsys, "--target", target, "stream", "--thread", thread_id, "--resume", '"no"')
    assert code == 0, err
    assert "ai: decision: no" in out and footer(out)[1:] == (thread_id, "success")


async def test_an_explicit_assistant_still_wins(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "--assistant", "steps", "--input", "{}")
    thread_id = footer(out)[1]
    code, out, err = await cli(capsys, "--target", target, "wait", "--thread", thread_id, "--assistant", "nested",
                               "--input", "{}")
    assert code == 0, err
    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id, "--json")
    assert [r["assistant_id"] for r in json.loads(out)] == ["nested", "steps"]


async def test_timeout_stops_the_run(target: str, capsys) -> None:
    code, out, err = await cli(capsys, "--target", target, "stream", "--assistant", "steps",
                               "--input", '{"hang_at": "second"}', "--timeout", "0.5")
    assert code == 1
    assert lines(out)[0] == 'update first: {"log": ["first"]}' and footer(out)[2] == "timeout"
    assert err.startswith("error: DEADLINE_EXCEEDED RUN_TIMEOUT: ")

    code, out, err = await cli(capsys, "--target", target, "wait", "--assistant", "steps",
                               "--input", '{"hang_at": "second"}', "--timeout", "0.5")
    assert code == 1 and out == "" and err.startswith("error: DEADLINE_EXCEEDED RUN_TIMEOUT: ")
    run_id = re.search(rf"run ({UUID})", err).group(1)
    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert "status: timeout" in lines(out)


async def test_a_stream_the_server_ends_early_is_continued_with_join(target: str, capsys, monkeypatch) -> None:
    """RUN_STILL_RUNNING (the stream's deadline passed, the run goes on): the rest comes through Join."""
    real_stream = Client.stream

    def cut_short(self, *args, **kwargs):
        events = real_stream(self, *args, **kwargs)
        first = next(events)
        yield first
        events.close()
        raise GraphrunError(grpc.StatusCode.DEADLINE_EXCEEDED, "cut short", reason="RUN_STILL_RUNNING",
                            run_id=first.data["run_id"])

    monkeypatch.setattr(cli_module.Client, "stream", cut_short)
    code, out, _ = await cli(capsys, "--target", target, "stream", "--assistant", "steps", "--input", "{}")
    assert code == 0
    assert lines(out)[:4] == ['update first: {"log": ["first"]}', 'custom: {"progress": "halfway"}',
                              'update second: {"log": ["second"]}', 'update third: {"log": ["third"]}']
    assert footer(out)[2] == "success"


# -- the turn wait and stream print -------------------------------------------------------------


async def test_wait_and_stream_print_the_same_new_turn(target: str, capsys) -> None:
    threads = [str(uuid.uuid4()), str(uuid.uuid4())]
    for thread_id in threads:
        code, out, _ = await cli(capsys, "--target", target, "wait", QUESTION, "--thread", thread_id)
        assert code == 0 and lines(out)[0] == f"user: {QUESTION}"

    code, waited, _ = await cli(capsys, "--target", target, "wait", "Und die Lüftung?", "--thread", threads[0])
    assert code == 0
    code, streamed, _ = await cli(capsys, "--target", target, "stream", "Und die Lüftung?", "--thread", threads[1])
    assert code == 0
    assert QUESTION not in waited  # the earlier turn is not printed again
    assert lines(waited)[0] == "user: Und die Lüftung?" and "7. Mai 2024" in waited
    assert lines(waited)[:-1] == lines(streamed)[:-1]  # all but the footers (other runs, other threads)
    assert footer(waited)[1:] == (threads[0], "success") and footer(streamed)[1:] == (threads[1], "success")

    # The whole conversation is still one command away.
    code, out, _ = await cli(capsys, "--target", target, "threads", "state", threads[0])
    assert lines(out)[0] == f"user: {QUESTION}" and "user: Und die Lüftung?" in lines(out)


async def test_wait_after_resume_prints_only_what_the_run_added(target: str, capsys) -> None:
    code, out, _ = await cli(capsys, "--target", target, "wait", "ship it", "--assistant", "approval")
    thread_id = footer(out)[1]
    code, out, _ = await cli(capsys, "--target", target, "wait", "--thread", thread_id, "--resume", "yes")
    assert code == 0
    assert lines(out)[0] == "ai: decision: yes" and "user: ship it" not in out


# -- signals and pipes (real processes) ---------------------------------------------------------


async def _stream_until_first_event(target: str, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    """`graphrun stream` of a run that hangs in its second node, once it has printed its first event."""
    process = await start("--target", target, "stream", "--assistant", "steps", "--input", '{"hang_at": "second"}',
                          *extra)
    first = await process.stdout.readline()
    assert first, (await process.stderr.read()).decode()
    return process, first.decode()


async def test_ctrl_c_on_stream_says_how_to_join_or_cancel_the_run(target: str, capsys) -> None:
    process, first = await _stream_until_first_event(target)
    assert first == 'update first: {"log": ["first"]}\n'
    process.send_signal(signal.SIGINT)
    out, err = await process.communicate()
    assert process.returncode == 130 and out == b""
    text = err.decode()
    assert "Traceback" not in text
    match = re.match(rf"stopped following run ({UUID}) · thread ({UUID}); the run goes on in the background\n",
                     text)
    assert match, text
    run_id, thread_id = match.groups()
    assert lines(text)[1:] == [f"  follow it:  graphrun --target {target} runs join {run_id}",
                               f"  stop it:    graphrun --target {target} runs cancel {run_id}"]

    # The run exists and goes on; the printed commands work.
    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert code == 0
    assert f"thread_id: {thread_id}" in lines(out) and "assistant_id: steps" in lines(out)
    assert "status: running" in lines(out)
    code, out, _ = await cli(capsys, "--target", target, "runs", "cancel", run_id, "--wait")
    assert code == 0 and "status: cancelled" in lines(out)


async def test_ctrl_c_on_json_stream_and_on_join(target: str, capsys) -> None:
    process, first = await _stream_until_first_event(target, "--json")
    run_id = json.loads(first)["data"]["run_id"]
    process.send_signal(signal.SIGINT)
    _, err = await process.communicate()
    assert process.returncode == 130 and f"stopped following run {run_id}" in err.decode()

    # Joining it, then Ctrl-C: the join stops, the run does not; --after skips what was seen.
    join = await start("--target", target, "runs", "join", run_id)
    assert (await join.stdout.readline()).decode() == 'update first: {"log": ["first"]}\n'
    join.send_signal(signal.SIGINT)
    _, err = await join.communicate()
    assert join.returncode == 130
    text = err.decode()
    assert lines(text)[0].startswith(f"stopped following run {run_id} · thread ")
    assert "goes on" not in lines(text)[0]
    assert re.fullmatch(rf"  follow it:  graphrun --target {target} runs join {run_id} --after \d+", lines(text)[1])
    code, out, _ = await cli(capsys, "--target", target, "runs", "get", run_id)
    assert "status: running" in lines(out)
    assert (await cli(capsys, "--target", target, "runs", "cancel", run_id, "--wait"))[0] == 0


async def test_sigterm_on_stream_cancels_the_run(target: str, capsys) -> None:
    thread_id = str(uuid.uuid4())
    process, _ = await _stream_until_first_event(target, "--thread", thread_id)
    process.send_signal(signal.SIGTERM)
    _, err = await process.communicate()
    assert process.returncode == 128 + signal.SIGTERM
    run_id = re.fullmatch(rf"stopped: run ({UUID}) cancelled\n", err.decode()).group(1)
    assert await run_end(target, run_id) == "cancelled"


async def _closed_pipe_run(*argv: str) -> tuple[int, str]:
    """Run the command with stdout a pipe nobody reads (its reader already gone)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = await start(*argv, stdout=write_end)
    finally:
        os.close(write_end)
    _, err = await process.communicate()
    return process.returncode, err.decode()


async def test_closed_pipes_end_quietly(target: str, capsys) -> None:
    for argv in (["runs", "list", "--json"], ["assistants"], ["wait", "--assistant", "steps", "--input", "{}"],
                 ["stream", "--assistant", "steps", "--input", "{}", "--json"]):
        code, err = await _closed_pipe_run("--target", target, *argv)
        assert (code, err) == (141, ""), argv  # as a process killed by SIGPIPE, and no traceback

    # A stream whose reader went away cancels its run, as the server does for a caller that left.
    thread_id = str(uuid.uuid4())
    code, err = await _closed_pipe_run("--target", target, "stream", "--assistant", "steps", "--thread", thread_id,
                                       "--input", '{"hang_at": "second"}')
    assert (code, err) == (141, "")
    code, out, _ = await cli(capsys, "--target", target, "runs", "list", "--thread", thread_id, "--json")
    [run] = json.loads(out)
    assert await run_end(target, run["run_id"]) == "cancelled"



async def test_threads_list_shows_the_newest_first_with_filters(target: str, capsys) -> None:
    tag = str(uuid.uuid4())
    made = []
    for _ in range(3):
        code, out, _ = await cli(capsys, "--target", target, "threads", "create", "--metadata", f'{{"tag": "{tag}"}}')
        assert code == 0
        made.append(out.strip())
    code, out, _ = await cli(capsys, "--target", target, "threads", "list", "--metadata", f'{{"tag": "{tag}"}}',
                             "--status", "idle", "--limit", "2")
    assert code == 0
    assert [line.split()[0] for line in lines(out)] == [made[2], made[1]]
    code, out, _ = await cli(capsys, "--target", target, "threads", "list", "--json", "--metadata",
                             f'{{"tag": "{tag}"}}')
    assert [t["thread_id"] for t in json.loads(out)] == list(reversed(made))
    err = await usage_error(capsys, "--target", target, "threads", "list", "--metadata", "[1]")
    assert "--metadata" in err
