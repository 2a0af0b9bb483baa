"""`graphrun`: serve graphs, or talk to a graphrun server from the terminal.

    graphrun serve --config langgraph.json
    graphrun wait "Wann wurde die Heizungsanlage gewartet?"
    graphrun stream "…" --thread 7f0c…
    graphrun stream --assistant steps --input '{"topic": "roofs"}' --stream-mode updates --subgraphs
    graphrun wait --thread 7f0c… --resume yes            # on the thread's own assistant
    graphrun threads state 7f0c…
    graphrun runs create "…" --delay 60      # in the background; follow with `runs join`
    graphrun runs join 3b9e…
    graphrun store put users alice --key prefs --value '{"theme": "dark"}'   # namespace ("users", "alice")

Human-readable output by default, `--json` for scripts. Errors go to stderr as
`error: <CODE> [<reason>]: <message>` and exit 1 (2 for usage errors, such as an option
that is not the JSON it should be; 141 when stdout is closed early, as in `… | head`).
`wait` and `stream` print the turn a run adds (`threads state` the whole conversation).
Ctrl-C on `stream` leaves the run going and prints how to join or cancel it.
While `wait` waits, a terminal on stderr shows the elapsed time and the node
running (`⏳ 3.2 s · node agent`), erased when the answer is printed;
GRAPHRUN_PROGRESS=0 turns it off, =1 forces it without a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import pathlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any, TextIO, get_args

import grpc

from ._errors import GraphrunError, InvalidArgumentError, NotFoundError
from ._sync import Client
from ._types import Event, RunResult, RunStatus, StreamMode, ThreadStatus, status_name

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_ASSISTANT = "agent"

# -- output -----------------------------------------------------------------------


def _styled(text: str, code: str, stream: TextIO) -> str:
    """ANSI style only for terminals, so pipes and tests get plain text (NO_COLOR honoured)."""
    if os.environ.get("NO_COLOR") or not stream.isatty():
        return text
    return f"\033[{code}m{text}\033[0m"


def _dim(text: str, stream: TextIO | None = None) -> str:
    return _styled(text, "2", stream or sys.stdout)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content-block list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text", "") for p in content if isinstance(p, (str, dict))]
        return "".join(parts)
    return "" if content is None else _json(content)


def _indent(text: str) -> str:
    """Continuation lines indented, so a multi-line message still reads as one block."""
    return text.replace("\n", "\n  ")


def _tool_call_lines(message: dict[str, Any]) -> list[str]:
    return [f"ai: → {tc.get('name', '?')}({_json(tc.get('args', {}))})" for tc in message.get("tool_calls") or []]


def format_message(message: dict[str, Any]) -> str:
    """One message as a block: `user: …`, `ai: → tool({...})`, `tool name: …`, `ai: …`."""
    role = message.get("role") or message.get("type") or "?"
    text = _indent(_text(message.get("content")))
    if role == "tool":
        return f"tool {message.get('name') or message.get('tool_call_id', '')}: {text}"
    lines = [f"{role}: {text}"] if text or not message.get("tool_calls") else []
    lines += _tool_call_lines(message)
    return "\n".join(lines)


def _footer(run_id: str, thread_id: str, status: str) -> str:
    return _dim(f"run {run_id} · thread {thread_id} · {status}")


def _interrupt_lines(state: dict[str, Any]) -> list[str]:
    lines = [f"interrupt {i.get('id', '')}: {_json(i.get('value'))}" for i in state.get("interrupts") or []]
    if state.get("next"):
        lines.append(_dim(f"next: {', '.join(state['next'])}"))
    return lines


def _new_messages(messages: list[Any], before: list[Any] | None) -> list[Any]:
    """The messages a run added: those whose ids were not on the thread before (or, for messages
    without ids, those past the old count)."""
    if not before:
        return messages
    ids = [m.get("id") if isinstance(m, dict) else None for m in before]
    if all(ids):
        seen = set(ids)
        return [m for m in messages if not (isinstance(m, dict) and m.get("id") in seen)]
    return messages[len(before) :]


def print_state(state: dict[str, Any], before: list[Any] | None = None) -> None:
    """A thread state for humans: the conversation if there is one, else the values as JSON.

    With `before` (the thread's messages before a run), only the messages the run added: the
    turn, as `stream` shows it.
    """
    values = state.get("values") or {}
    messages = values.get("messages")
    shown = _new_messages(messages, before) if isinstance(messages, list) else []
    blocks = [format_message(m) if isinstance(m, dict) else f"?: {_json(m)}" for m in shown]
    rest = {k: v for k, v in values.items() if k != "messages"} if isinstance(messages, list) else values
    if rest or not isinstance(messages, list):
        blocks.append(f"values: {_json(rest)}")
    if lines := _interrupt_lines(state):
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))


_HINTS = {"THREAD_INTERRUPTED": "answer with --resume VALUE, or continue with --continue"}


def _error_head(exc: GraphrunError) -> str:
    """The code, then the reason unless it just repeats the code (INVALID_ARGUMENT INVALID_ARGUMENT)."""
    return f"{exc.code.name} {exc.reason}" if exc.reason and exc.reason != exc.code.name else exc.code.name


def print_error(exc: GraphrunError) -> None:
    message = exc.message or f"the server sent no message with {exc.code.name}"
    print(f"error: {_error_head(exc)}: {message}", file=sys.stderr)
    for field, description in exc.field_violations:
        if f"{field}: {description}" not in exc.message:  # the server's message often lists them already
            print(f"  {field}: {description}", file=sys.stderr)
    if hint := _HINTS.get(exc.reason):
        print(f"hint: {hint}", file=sys.stderr)
    # The run the error is about, unless there is none (RUN_NOT_FOUND names the id it was asked for).
    if exc.run_id and exc.code != grpc.StatusCode.NOT_FOUND:
        thread = f" · thread {exc.thread_id}" if exc.thread_id else ""
        print(_dim(f"  run {exc.run_id}{thread}", sys.stderr), file=sys.stderr)
    if exc.last_sequence is not None and exc.run_id:
        print(
            _dim(f"  continue with: graphrun runs join {exc.run_id} --after {exc.last_sequence}", sys.stderr),
            file=sys.stderr,
        )


STREAM_MODES = ("values", "updates", "messages", "messages-tuple", "custom", "tasks", "checkpoints", "debug", "events")
# What `stream` and `runs create` ask for without --stream-mode: the conversation as it is
# generated (messages), what each node wrote (updates, less the messages already shown), what
# nodes sent with the stream writer (custom), and node starts and ends (tasks: failures shown).
DEFAULT_STREAM_MODES: tuple[StreamMode, ...] = ("messages", "updates", "custom", "tasks")


def _namespace_prefix(namespace: Sequence[str]) -> str:
    """`("inner:1f0…", "deep:9c2…")` -> `[inner/deep] `: where in the graph, by node names."""
    return f"[{'/'.join(part.split(':', 1)[0] for part in namespace)}] " if namespace else ""


def _prefixed(prefix: str, text: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n")) if prefix else text


def _values_text(values: dict[str, Any]) -> str:
    """A state's channels as JSON, its conversation as a count (the messages show it as such)."""
    messages = values.get("messages")
    if not isinstance(messages, list):
        return _json(values)
    rest = {k: v for k, v in values.items() if k != "messages"}
    return f"{_json(rest)} {_dim(f'· {_messages(len(messages))}')}"


def _messages(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"


def _state_line(state: dict[str, Any], with_step: bool = True) -> str:
    checkpoint = (state.get("checkpoint") or {}).get("checkpoint_id", "")
    step = (state.get("metadata") or {}).get("step") if with_step else None
    line = f"checkpoint {checkpoint}" + (f" · step {step}" if step is not None else "")
    return line + (f" · next: {', '.join(state['next'])}" if state.get("next") else "")


def _task_line(task: dict[str, Any]) -> str:
    head = f"task {task.get('name', '?')}"
    if task.get("phase") == "started":
        return f"{head} started · step {task.get('step', '?')}"
    if task.get("error"):
        return f"{head} failed: {task['error']}"
    return f"{head} {'interrupted' if task.get('interrupts') else 'finished'} · step {task.get('step', '?')}"


class _StreamPrinter:
    """Renders a run's events for people, whatever the stream modes.

    Messages (mode `messages`) as a conversation: tokens as they arrive, tool calls once complete.
    Every other kind as a line: `update <node>: {...}` (the messages in it as conversation
    blocks, unless the messages mode already showed them), `custom: …`, `values: …`,
    `checkpoint …`, `debug step N: …`, `event <name> …`, and node starts and ends with
    `show_tasks` (without it, only failed nodes). Events from inside a subgraph start with
    its path, `[inner] `. The end event prints the interrupts and a footer with the run's
    status. `run_id`, `thread_id` and `last_sequence` follow the events, for whoever stops
    the stream midway.
    """

    def __init__(self, show_tasks: bool = False) -> None:
        self.show_tasks = show_tasks
        self.open_id: str | None = None  # message whose tokens are being written on the current line
        self.last: str | None = None  # "block" (blank lines around it) or "line" (consecutive lines stay together)
        self.saw_messages = False  # the messages mode is on: updates need not show messages again
        self.run_id: str | None = None
        self.thread_id: str | None = None
        self.last_sequence = 0

    def _start(self, kind: str) -> None:
        self._close_line()
        if self.last is not None and "block" in (kind, self.last):
            print()
        self.last = kind

    def _close_line(self) -> None:
        if self.open_id is not None:
            print(flush=True)
            self.open_id = None

    def block(self, text: str) -> None:
        if text:
            self._start("block")
            print(text, flush=True)

    def line(self, text: str) -> None:
        self._start("line")
        print(text, flush=True)

    def finish(self) -> None:
        """End a line of tokens left open (the stream was stopped midway)."""
        self._close_line()

    def track(self, event: Event) -> None:
        """Note the run and the position of the stream (with or without rendering the event)."""
        self.last_sequence = event.sequence
        if event.kind == "metadata":
            self.run_id = event.data.get("run_id") or self.run_id
            self.thread_id = event.data.get("thread_id") or self.thread_id
        elif event.kind == "end" and event.result is not None:
            self.thread_id = event.result.thread_id or self.thread_id

    def on_event(self, event: Event) -> None:
        prefix = _namespace_prefix(event.namespace)
        data = event.data
        if event.kind == "message":
            self.saw_messages = True
            self._on_message(data, prefix)
        elif event.kind == "updates":
            self._on_update(data.get("node", ""), data.get("update"), prefix)
        elif event.kind == "values":
            self.line(f"{prefix}values: {_values_text(data.get('values') or {})}")
        elif event.kind == "custom":
            self.line(f"{prefix}custom: {_json(data.get('data'))}")
        elif event.kind == "task":
            if self.show_tasks or data.get("error"):
                self.line(prefix + _dim(_task_line(data)))
        elif event.kind == "checkpoint":
            self.line(prefix + _dim(_state_line(data.get("state") or {})))
        elif event.kind == "debug":
            task = data.get("task") or {}
            what = (
                _state_line(data["checkpoint"], with_step=False)
                if data.get("checkpoint")
                else _task_line(task).replace(f" · step {task.get('step', '?')}", "")
            )
            self.line(prefix + _dim(f"debug step {data.get('step', '?')}: {what}"))
        elif event.kind == "langchain_event":
            self.line(prefix + _dim(f"event {data.get('event', '')} {data.get('name', '')}"))
        elif event.kind == "end":
            self._close_line()
            result = event.result
            assert result is not None
            self.block("\n".join(_interrupt_lines(result.state)))
            self.block(_footer(result.run_id, result.thread_id, result.status))

    def _on_update(self, node: str, update: Any, prefix: str) -> None:
        if node == "__interrupt__":
            return  # the end event lists the interrupts
        if isinstance(update, dict) and isinstance(update.get("messages"), list):
            if not self.saw_messages:
                for message in update["messages"]:
                    if isinstance(message, dict):
                        self.block(_prefixed(prefix, format_message(message)))
            update = {k: v for k, v in update.items() if k != "messages"}
            if not update:
                return
        self.line(f"{prefix}update {node}: {_json(update)}")

    def _on_message(self, data: dict[str, Any], prefix: str) -> None:
        message, message_id = data.get("message") or {}, data.get("message_id", "")
        if data.get("delta"):
            text = _text(message.get("content"))
            if not text:
                return
            if self.open_id != message_id:
                self._start("block")
                sys.stdout.write(f"{prefix}{message.get('role') or 'ai'}: ")
                self.open_id = message_id
            sys.stdout.write(text.replace("\n", "\n  "))
            sys.stdout.flush()
        elif self.open_id == message_id:  # the complete form of the message just streamed
            self._close_line()
            for line in _tool_call_lines(message):
                print(prefix + line, flush=True)
        else:
            self.block(_prefixed(prefix, format_message(message)))


# -- commands -----------------------------------------------------------------------


def _setting(args: argparse.Namespace, name: str, env: str) -> str | None:
    return getattr(args, name, None) or os.environ.get(env) or None


def _read(path: str | None) -> bytes | None:
    return pathlib.Path(path).read_bytes() if path else None


def _client(args: argparse.Namespace) -> Client:
    target = _setting(args, "target", "GRAPHRUN_TARGET") or DEFAULT_TARGET
    ca, cert, key = (
        _setting(args, n, e)
        for n, e in (
            ("tls_ca", "GRAPHRUN_TLS_CA"),
            ("tls_cert", "GRAPHRUN_TLS_CLIENT_CERT"),
            ("tls_key", "GRAPHRUN_TLS_CLIENT_KEY"),
        )
    )
    secure = bool(getattr(args, "tls", False) or os.environ.get("GRAPHRUN_TLS") == "1" or ca or cert)
    return Client(
        target,
        token=_setting(args, "token", "GRAPHRUN_TOKEN"),
        secure=secure,
        root_certificates=_read(ca),
        certificate_chain=_read(cert),
        private_key=_read(key),
    )


def _parse_json_arg(value: str) -> Any:
    """JSON if it parses, else the plain string: `--resume yes` and `--resume '{"ok": true}'` both work."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


_STDIN_TAKEN: list[str] = []  # the option that read standard input (it can be read once)


def _json_source(option: str, text: str) -> tuple[str, str]:
    """The JSON text an option names (`JSON`, `@file` or `-` for standard input) and where it came from."""
    if text == "-":
        if _STDIN_TAKEN:
            raise _UsageError(f"{option} -: standard input was already read for {_STDIN_TAKEN[0]}")
        _STDIN_TAKEN.append(option)
        return sys.stdin.read(), "standard input"
    if text.startswith("@"):
        try:
            return pathlib.Path(text[1:]).read_text(encoding="utf-8"), text[1:]
        except (OSError, UnicodeDecodeError) as exc:
            raise _UsageError(f"{option}: cannot read {text[1:]}: {getattr(exc, 'strerror', None) or exc}") from None
    return text, ""


def _json_object(option: str, text: str | None) -> dict[str, Any] | None:
    """A JSON object option (`JSON`, `@file` or `-`); a usage error, not a traceback, when it is not one."""
    if text is None:
        return None
    source_text, source = _json_source(option, text)
    where = f" (in {source})" if source else ""
    try:
        value = json.loads(source_text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"{option} must be JSON{where}: {exc}") from None
    if not isinstance(value, dict):
        kind = {
            list: "an array",
            str: "a string",
            bool: "a boolean",
            int: "a number",
            float: "a number",
            type(None): "null",
        }.get(type(value), type(value).__name__)
        raise _UsageError(f'{option} must be a JSON object{where}, not {kind}, e.g. \'{{"key": "value"}}\'')
    return value


def _node_names(option: str, values: list[str] | None) -> list[str] | None:
    """`--interrupt-before a --interrupt-before b` or `--interrupt-before a,b`; `*` for every node."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise _UsageError(f"{option} needs a node name (or * for every node)")
    return names


def _check_run_args(args: argparse.Namespace) -> None:
    if args.continue_:
        if not args.thread:
            raise _UsageError("--continue needs --thread ID")
        if args.question is not None or args.input is not None or args.resume is not None:
            raise _UsageError("--continue sends no input: drop the question, --input and --resume")
    elif args.question is None and args.input is None and args.resume is None:
        raise _UsageError("give a question, --input JSON, --resume VALUE to answer an interrupt, or --continue")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise _UsageError("--timeout must be a positive number of seconds")


def _run_input(args: argparse.Namespace) -> dict[str, Any] | None:
    """--input as given, with the question (if any) appended to its messages as a user message."""
    run_input = _json_object("--input", args.input)
    if args.question is None:
        return run_input
    run_input = dict(run_input or {})
    messages = run_input.get("messages") or []
    if not isinstance(messages, list):
        raise _UsageError("--input's messages must be a list when a question is given too")
    run_input["messages"] = [*messages, {"role": "user", "content": args.question}]
    return run_input


def _run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The run's options from the command line (the assistant is chosen by `_assistant`).

    Neither input nor command for --continue: the run goes on from the thread's checkpoint.
    """
    _check_run_args(args)
    kwargs: dict[str, Any] = {"thread_id": args.thread}
    run_input = _run_input(args)
    if run_input is not None:
        kwargs["input"] = run_input
        if args.thread:
            kwargs["if_not_exists"] = "create"
    if args.resume is not None:
        kwargs["command"] = {"resume": _parse_json_arg(args.resume)}
    for option, key in (("--context", "context"), ("--config", "config"), ("--metadata", "metadata")):
        value = _json_object(option, getattr(args, key))
        if value is not None:
            kwargs[key] = value
    kwargs["interrupt_before"] = _node_names("--interrupt-before", args.interrupt_before)
    kwargs["interrupt_after"] = _node_names("--interrupt-after", args.interrupt_after)
    kwargs["timeout"] = args.timeout
    if args.assistant_version is not None:
        kwargs["assistant_version"] = args.assistant_version
    return kwargs


def _assistant(client: Client, args: argparse.Namespace) -> str:
    """--assistant if given; else, on an existing thread, the assistant of its latest run (so
    that --resume and --continue go to the graph that asked); else `agent`."""
    if args.assistant:
        return str(args.assistant)
    if args.thread:
        try:
            return client.get_thread(args.thread).get("assistant_id") or DEFAULT_ASSISTANT
        except (NotFoundError, InvalidArgumentError):
            pass  # a new thread (the run creates it), or a bad id the run itself reports (as spec.thread_id)
    return DEFAULT_ASSISTANT


def _add_server_commands(commands: argparse._SubParsersAction) -> None:
    """The server's commands (`serve`), from the `graphrun.commands` entry points of the
    installed server; without a server, `serve` says how to install one."""
    added = False
    for entry_point in importlib.metadata.entry_points(group="graphrun.commands"):
        entry_point.load()(commands)
        added = True
    if not added:
        serve = commands.add_parser(
            "serve", help="run a graphrun server (needs the server: pip install graphrun)", add_help=False
        )
        serve.set_defaults(handler=_no_server)  # whatever its options (see `main`)


def _no_server(args: argparse.Namespace) -> int:
    print(
        "error: graphrun serve needs the server, which is not installed here; install it with: pip install graphrun",
        file=sys.stderr,
    )
    return 2


def _progress_wanted(stream: TextIO) -> bool:
    """A progress line on terminals; GRAPHRUN_PROGRESS=1 forces it (tests), =0 turns it off."""
    forced = os.environ.get("GRAPHRUN_PROGRESS", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return stream.isatty()


class _Progress:
    """`⏳ 3.2 s · node agent` on one line of stderr, redrawn in place while a run goes on.

    Redrawn when a node starts or finishes and every `interval` seconds in
    between (from a daemon thread), and erased when the run ends, so what
    remains on the terminal is just the command's normal output.
    """

    def __init__(self, stream: TextIO, interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self.running: dict[str, str] = {}  # task id -> node, in start order
        self.last_node: str | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="graphrun-progress", daemon=True)
        try:
            "⏳·".encode(getattr(stream, "encoding", None) or "utf-8")
            self._icon, self._dot = "⏳", "·"
        except (UnicodeEncodeError, LookupError):
            self._icon, self._dot = "...", "-"

    def __enter__(self) -> _Progress:
        self._draw()
        self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._ticker.join()
        with self._lock:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self) -> str:
        text = f"{self._icon} {time.monotonic() - self.started:.1f} s"
        nodes = list(dict.fromkeys(self.running.values())) or ([self.last_node] if self.last_node else [])
        if nodes:
            text += f" {self._dot} {'node' if len(nodes) == 1 else 'nodes'} {', '.join(nodes)}"
        return text

    def on_event(self, event: Event) -> None:
        if event.kind != "task":
            return
        task_id, name = event.data.get("id", ""), event.data.get("name", "")
        if event.data.get("phase") == "started":
            self.running[task_id] = name
        else:
            self.running.pop(task_id, None)
        self.last_node = name or self.last_node
        self._draw()

    def _draw(self) -> None:
        with self._lock:
            if not self._stopped.is_set():
                self.stream.write(f"\r\033[K{self.line()}")
                self.stream.flush()

    def _tick(self) -> None:
        while not self._stopped.wait(self.interval):
            self._draw()


def _messages_of(state: dict[str, Any]) -> list[Any] | None:
    messages = (state.get("values") or {}).get("messages")
    return messages if isinstance(messages, list) else None


def _thread_messages(client: Client, thread_id: str | None) -> list[Any] | None:
    """The conversation on the thread before a run, so that `wait` prints only the new turn."""
    if not thread_id:
        return None
    try:
        return _messages_of(client.get_state(thread_id))
    except (NotFoundError, InvalidArgumentError):
        return None


def _wait_with_progress(client: Client, assistant: str, kwargs: dict[str, Any]) -> RunResult:
    """`wait`, made through Stream (node starts and ends only) to show progress; the end event's state is the result."""
    result: RunResult | None = None
    with _Progress(sys.stderr) as progress:
        for event in client.stream(assistant, stream_mode=("tasks",), **kwargs):
            progress.on_event(event)
            if event.kind == "end":
                result = event.result
    if result is None:
        raise RuntimeError("the run's stream ended without its end event")
    return result


def cmd_wait(args: argparse.Namespace) -> int:
    kwargs = _run_kwargs(args)
    with _client(args) as client:
        assistant = _assistant(client, args)
        before = None if args.json else _thread_messages(client, args.thread)
        try:
            if _progress_wanted(sys.stderr):
                result = _wait_with_progress(client, assistant, kwargs)
            else:
                result = client.wait(assistant, **kwargs)
        except KeyboardInterrupt:  # the call goes away, and the server cancels its run (on_disconnect CANCEL)
            print(
                "stopped: the run is cancelled (`graphrun runs create` starts one that outlives the command)",
                file=sys.stderr,
            )
            return 130
    if args.json:
        _print_json(asdict(result))
        return 0
    print_state(result.state, before=before)
    print()
    print(_footer(result.run_id, result.thread_id, result.status))
    return 0


def _input_blocks(run_input: dict[str, Any] | None) -> list[str]:
    """The input's messages as `stream` shows them before the run's own (as `wait` prints the turn)."""
    blocks = []
    for message in (run_input or {}).get("messages") or []:
        if isinstance(message, dict):
            blocks.append(format_message(message))
        elif isinstance(message, str):
            blocks.append(format_message({"role": "user", "content": message}))
        elif isinstance(message, list) and len(message) == 2:
            blocks.append(format_message({"role": message[0], "content": message[1]}))
    return blocks


class _Terminated(Exception):
    """SIGTERM or SIGHUP while `stream` follows its run: the run is cancelled, as a call that goes away would be."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signum)


@contextlib.contextmanager
def _termination_raises() -> Iterator[None]:
    """SIGTERM/SIGHUP raise `_Terminated` (only the main thread can handle signals; tests call `main`
    from other threads)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        if (signum := getattr(signal, name, None)) is not None:
            previous[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _command_prefix(args: argparse.Namespace) -> str:
    """`graphrun`, with the --target given, for commands printed as hints."""
    target = getattr(args, "target", None)
    return f"graphrun --target {target}" if target else "graphrun"


def _print_stopped(args: argparse.Namespace, printer: _StreamPrinter, *, started_here: bool) -> None:
    """After Ctrl-C: which run was being followed, and how to follow it again or stop it."""
    printer.finish()
    graphrun = _command_prefix(args)
    if printer.run_id is None:
        where = f" --thread {args.thread}" if getattr(args, "thread", None) else ""
        print(
            f"stopped before the run's first event; if it started, `{graphrun} runs list{where}` shows it",
            file=sys.stderr,
        )
        return
    after = f" --after {printer.last_sequence}" if not started_here else ""
    goes_on = "; the run goes on in the background" if started_here else ""
    print(f"stopped following run {printer.run_id} · thread {printer.thread_id or '?'}{goes_on}", file=sys.stderr)
    print(f"  follow it:  {graphrun} runs join {printer.run_id}{after}", file=sys.stderr)
    print(f"  stop it:    {graphrun} runs cancel {printer.run_id}", file=sys.stderr)


def _cancel_quietly(client: Client, run_id: str | None) -> None:
    if run_id:
        with contextlib.suppress(GraphrunError):
            client.cancel_run(run_id)


def _follow(
    args: argparse.Namespace, client: Client, events: Iterator[Event], printer: _StreamPrinter, *, started_here: bool
) -> int:
    """Print a run's events (rendered, or one JSON line each) to its end.

    For a run this command started (`stream`, made with on_disconnect CONTINUE): Ctrl-C stops
    following and says how to join or cancel the run; SIGTERM/SIGHUP or a closed stdout (`| head`)
    cancel it, as the server would for a caller that went away. A stream the server ends at its
    deadline while the run goes on (RUN_STILL_RUNNING) is continued with Join.
    """
    opened = [events]

    def show(event: Event) -> None:
        printer.track(event)
        if args.json:
            print(_json(asdict(event)), flush=True)
        else:
            printer.on_event(event)

    try:
        with _termination_raises() if started_here else contextlib.nullcontext():
            try:
                for event in events:
                    show(event)
            except GraphrunError as exc:
                if exc.reason != "RUN_STILL_RUNNING" or printer.run_id is None:
                    raise
                opened.append(client.join(printer.run_id, after_sequence=printer.last_sequence))
                for event in opened[-1]:
                    show(event)
    except KeyboardInterrupt:
        for generator in opened:
            generator.close()  # type: ignore[attr-defined]
        _print_stopped(args, printer, started_here=started_here)
        return 130
    except _Terminated as exc:
        for generator in opened:
            generator.close()  # type: ignore[attr-defined]
        printer.finish()
        _cancel_quietly(client, printer.run_id)
        if printer.run_id:
            print(f"stopped: run {printer.run_id} cancelled", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        for generator in opened:
            generator.close()  # type: ignore[attr-defined]
        if started_here:
            _cancel_quietly(client, printer.run_id)
        raise
    return 0


def _stream_modes(args: argparse.Namespace) -> tuple[StreamMode, ...]:
    return tuple(dict.fromkeys(args.stream_mode)) if args.stream_mode else DEFAULT_STREAM_MODES


def cmd_stream(args: argparse.Namespace) -> int:
    kwargs = _run_kwargs(args)
    printer = _StreamPrinter(show_tasks="tasks" in (args.stream_mode or ()))
    with _client(args) as client:
        assistant = _assistant(client, args)
        if not args.json:
            for block in _input_blocks(kwargs.get("input")):  # as `wait` shows the turn
                printer.block(block)
        # CONTINUE: Ctrl-C leaves the run going (the user is told how to join or cancel it);
        # _follow cancels it when the command is killed or its output is closed.
        events = client.stream(
            assistant, stream_mode=_stream_modes(args), subgraphs=args.subgraphs, on_disconnect="continue", **kwargs
        )
        return _follow(args, client, events, printer, started_here=True)


def cmd_runs_create(args: argparse.Namespace) -> int:
    kwargs = _run_kwargs(args)
    if args.delay is not None and not (math.isfinite(args.delay) and args.delay >= 0):
        raise _UsageError("--delay must be a number of seconds, not negative")
    with _client(args) as client:
        assistant = _assistant(client, args)
        # The modes `stream` shows by default, so `runs join` renders the run the same way.
        run = client.create_run(
            assistant, stream_mode=_stream_modes(args), subgraphs=args.subgraphs, start_delay=args.delay, **kwargs
        )
    if args.json:
        _print_json(run)
    else:
        print(run["run_id"])
        print(_dim(f"thread {run.get('thread_id', '')} · {status_name(run)}"))
    return 0


_STATUSES: tuple[str, ...] = get_args(RunStatus)
_RUN_FIELDS = (
    "run_id",
    "thread_id",
    "assistant_id",
    "status",
    "attempt",
    "current_node",
    "step",
    "created_at",
    "started_at",
    "ended_at",
)


def _print_run(run: dict[str, Any]) -> None:
    """A run's record for humans: `key: value` lines, status lowercase, unset times left out."""
    for key in _RUN_FIELDS:
        value = status_name(run) if key == "status" else run.get(key)
        if value not in (None, ""):
            print(f"{key}: {value}")
    if run.get("metadata"):
        print(f"metadata: {_json(run['metadata'])}")
    error = run.get("error") or {}
    if error.get("type") or error.get("message"):
        print(f"error: {error.get('type', '')}: {error.get('message', '')}")


def cmd_runs_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        run = client.get_run(args.run_id)
    if args.json:
        _print_json(run)
    else:
        _print_run(run)
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise _UsageError("--limit must be at least 1")
    runs: list[dict[str, Any]] = []
    with _client(args) as client:
        for run in client.iter_runs(args.thread, args.status or None, page_size=min(args.limit, 1000)):
            runs.append(run)
            if len(runs) >= args.limit:
                break
    if args.json:
        _print_json(runs)
        return 0
    for run in runs:
        print(
            f"{run['run_id']}  {status_name(run):<11}  {run.get('assistant_id', ''):<12}"
            f"  thread {run.get('thread_id', '')}  {_dim(run.get('created_at', ''))}"
        )
    return 0


def cmd_runs_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        run = client.cancel_run(args.run_id, "rollback" if args.rollback else "interrupt", wait=args.wait)
    if args.json:
        _print_json(run)
    else:
        _print_run(run)
    return 0


def cmd_runs_join(args: argparse.Namespace) -> int:
    if args.after < 0:
        raise _UsageError("--after must not be negative")
    printer = _StreamPrinter()
    printer.run_id, printer.last_sequence = args.run_id, args.after  # --after skips the metadata event
    with _client(args) as client:
        return _follow(args, client, client.join(args.run_id, after_sequence=args.after), printer, started_here=False)


def cmd_threads_create(args: argparse.Namespace) -> int:
    metadata = _json_object("--metadata", args.metadata)
    with _client(args) as client:
        thread = client.create_thread(args.thread_id, metadata)
    if args.json:
        _print_json(thread)
    else:
        print(thread["thread_id"])
    return 0


_THREAD_STATUSES: tuple[str, ...] = get_args(ThreadStatus)


def cmd_threads_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise _UsageError("--limit must be at least 1")
    metadata = _json_object("--metadata", args.metadata)
    threads: list[dict[str, Any]] = []
    with _client(args) as client:
        for thread in client.iter_threads(
            args.status or None, metadata, args.assistant, page_size=min(args.limit, 1000)
        ):
            threads.append(thread)
            if len(threads) >= args.limit:
                break
    if args.json:
        _print_json(threads)
        return 0
    for thread in threads:
        print(
            f"{thread['thread_id']}  {status_name(thread):<11}  {thread.get('assistant_id', '') or '-':<12}"
            f"  {_dim(thread.get('created_at', ''))}"
        )
    return 0


def _print_thread(thread: dict[str, Any]) -> None:
    for key in ("thread_id", "status", "assistant_id", "created_at", "updated_at"):
        value = status_name(thread) if key == "status" else thread.get(key, "")
        print(f"{key}: {value}")
    print(f"metadata: {_json(thread.get('metadata') or {})}")


def cmd_threads_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        thread = client.get_thread(args.thread_id)
    if args.json:
        _print_json(thread)
    else:
        _print_thread(thread)
    return 0


def cmd_threads_state(args: argparse.Namespace) -> int:
    with _client(args) as client:
        state = client.get_state(args.thread_id, args.checkpoint)
    if args.json:
        _print_json(state)
        return 0
    print_state(state)
    checkpoint = (state.get("checkpoint") or {}).get("checkpoint_id")
    step = (state.get("metadata") or {}).get("step")
    print()
    print(
        _dim(
            f"thread {args.thread_id} · checkpoint {checkpoint or 'none'}"
            + (f" · step {step}" if step is not None else "")
        )
    )
    return 0


def cmd_threads_history(args: argparse.Namespace) -> int:
    states: list[dict[str, Any]] = []
    with _client(args) as client:
        for state in client.iter_history(args.thread_id, page_size=args.page_size):
            states.append(state)
            if args.limit and len(states) >= args.limit:
                break
    if args.json:
        _print_json(states)
        return 0
    for state in states:
        meta = state.get("metadata") or {}
        checkpoint = (state.get("checkpoint") or {}).get("checkpoint_id", "")
        nxt = ",".join(state.get("next") or []) or "-"
        count = len((state.get("values") or {}).get("messages") or [])
        print(
            f"{checkpoint}  step {meta.get('step', '?'):>3}  {meta.get('source', ''):<6}  next {nxt:<12}"
            f"  {_messages(count):>12}  {_dim(state.get('created_at', ''))}"
        )
    return 0


def cmd_threads_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_thread(args.thread_id)
    print(f"deleted {args.thread_id}")
    return 0


def cmd_assistants_list(args: argparse.Namespace) -> int:
    limit = getattr(args, "limit", 100)
    if limit < 1:
        raise _UsageError("--limit must be at least 1")
    metadata = _json_object("--metadata", getattr(args, "metadata", None))
    assistants: list[dict[str, Any]] = []
    with _client(args) as client:
        for assistant in client.iter_assistants(getattr(args, "graph", None), metadata, page_size=min(limit, 1000)):
            assistants.append(assistant)
            if len(assistants) >= limit:
                break
    if args.json:
        _print_json(assistants)
        return 0
    width = max((len(a["assistant_id"]) for a in assistants), default=0)
    for a in assistants:
        nodes = _dim("nodes: " + ", ".join(a.get("nodes", [])))
        if a["assistant_id"] == a.get("graph_id"):  # a graph's own
            print(f"{a['assistant_id']:<{width}}  {a.get('description', '')}  {nodes}")
        else:
            about = " ".join(x for x in (a.get("name", ""), _dim(a.get("description", ""))) if x)
            print(f"{a['assistant_id']:<{width}}  {a.get('graph_id', '')} v{a.get('version', 1)}  {about}")
    return 0


def cmd_assistants_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_json(client.get_assistant(args.assistant_id))
    return 0


def _assistant_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": args.name,
        "description": args.description,
        "webhook": args.webhook,
    }
    for option, key in (("--config", "config"), ("--context", "context"), ("--metadata", "metadata")):
        fields[key] = _json_object(option, getattr(args, key))
    return fields


def _print_assistant(args: argparse.Namespace, assistant: dict[str, Any]) -> None:
    if args.json:
        _print_json(assistant)
    else:
        print(f"{assistant['assistant_id']}  version {assistant.get('version', 1)}")


def cmd_assistants_create(args: argparse.Namespace) -> int:
    fields = _assistant_fields(args)
    with _client(args) as client:
        assistant = client.create_assistant(args.graph, assistant_id=args.assistant_id, **fields)
    _print_assistant(args, assistant)
    return 0


def cmd_assistants_update(args: argparse.Namespace) -> int:
    fields = _assistant_fields(args)
    with _client(args) as client:
        assistant = client.update_assistant(args.assistant_id, graph_id=args.graph, **fields)
    _print_assistant(args, assistant)
    return 0


def cmd_assistants_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_assistant(args.assistant_id)
    print(f"deleted {args.assistant_id}")
    return 0


def cmd_assistants_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        versions, _ = client.list_assistant_versions(args.assistant_id, page_size=min(args.limit, 1000))
    if args.json:
        _print_json(versions)
        return 0
    for v in versions:
        print(f"v{v['version']:<4} {v.get('graph_id', '')}  {v.get('name', '')}  {_dim(v.get('created_at', ''))}")
    return 0


def cmd_assistants_set_latest(args: argparse.Namespace) -> int:
    with _client(args) as client:
        assistant = client.set_latest_assistant_version(args.assistant_id, args.version)
    _print_assistant(args, assistant)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            status = client.health(args.service)
        except NotFoundError as exc:  # grpc.health.v1 says only NOT_FOUND, with no message
            if exc.message or not args.service:
                raise
            raise GraphrunError(
                exc.code,
                f"the server reports no health for service {args.service!r}; "
                "ask for the whole server (no --service) or a service it serves, such as "
                "graphrun.v1.RunService",
            ) from exc
    print(status)
    return 0 if status == "SERVING" else 1


# -- the Store ------------------------------------------------------------------------------
#
# A namespace is written as its labels, one argument each (`users alice` is ("users", "alice"));
# text output shows it joined with "/", --json exactly.


def _namespace_text(labels: Sequence[str]) -> str:
    return "/".join(labels)


def _item_line(item: dict[str, Any]) -> str:
    score = item.get("score")
    line = f"{_namespace_text(item['namespace'])}  {item['key']}  {_json(item.get('value', {}))}"
    return line + (f"  {_dim(f'score {score:.4f}')}" if score is not None else "")


def cmd_store_put(args: argparse.Namespace) -> int:
    value = _json_object("--value", args.value)
    if args.ttl is not None and args.ttl < 0:
        raise _UsageError("--ttl must not be negative (0: never expires)")
    index: bool | list[str] | None = False if args.no_index else (args.index or None)
    with _client(args) as client:
        client.put_item(args.namespace, args.key, value or {}, index=index, ttl=args.ttl)
    if args.json:
        _print_json({"namespace": args.namespace, "key": args.key})
    else:
        print(f"stored {_namespace_text(args.namespace)} {args.key}")
    return 0


def cmd_store_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        item = client.get_item(args.namespace, args.key)
    if args.json:
        _print_json(item)
    else:
        _print_json(item.get("value", {}))
        print(_dim(f"{_namespace_text(item['namespace'])} · {item['key']} · updated {item.get('updated_at', '')}"))
    return 0


def cmd_store_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_item(args.namespace, args.key)
    if args.json:
        _print_json({"namespace": args.namespace, "key": args.key})
    else:
        print(f"deleted {_namespace_text(args.namespace)} {args.key}")
    return 0


def cmd_store_search(args: argparse.Namespace) -> int:
    filter_ = _json_object("--filter", args.filter)
    with _client(args) as client:
        items = client.search_items(
            args.namespace, query=args.query, filter=filter_, limit=args.limit, offset=args.offset
        )
    if args.json:
        _print_json(items)
    else:
        for item in items:
            print(_item_line(item))
    return 0


def cmd_store_namespaces(args: argparse.Namespace) -> int:
    with _client(args) as client:
        namespaces = client.list_namespaces(
            prefix=args.prefix, suffix=args.suffix, max_depth=args.max_depth, limit=args.limit, offset=args.offset
        )
    if args.json:
        _print_json([list(namespace) for namespace in namespaces])
    else:
        for namespace in namespaces:
            print(_namespace_text(namespace))
    return 0


# -- parser ---------------------------------------------------------------------------


class _UsageError(Exception):
    """A combination of arguments argparse cannot express; reported like argparse's own."""


def _add_run_arguments(run: argparse.ArgumentParser, *, streams: bool) -> None:
    """What starts a run: a question and/or --input, an answer to an interrupt, or neither
    (--continue); how it runs; with `streams`, which events it records or sends."""
    run.add_argument("question", nargs="?", help="the user message (added to the input's messages)")
    run.add_argument(
        "--input",
        metavar="JSON",
        help="the run's input, a JSON object, for any graph: JSON text, @FILE, or - for standard "
        'input (e.g. \'{"topic": "roofs"}\')',
    )
    run.add_argument(
        "--thread",
        metavar="ID",
        help="thread to continue; with a question or --input, a new ID creates it "
        "(--resume and --continue need an existing thread)",
    )
    run.add_argument(
        "--assistant",
        metavar="ID",
        help=f"assistant: a graph id or a created assistant's id (default: with --thread, the assistant of "
        f"the thread's latest run; else {DEFAULT_ASSISTANT})",
    )
    run.add_argument(
        "--assistant-version",
        metavar="N",
        type=int,
        help="run this version of the assistant (default: its current one)",
    )
    run.add_argument("--resume", metavar="VALUE", help="answer the thread's interrupt (JSON or text)")
    run.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="run on from the thread's checkpoint without input (e.g. after --interrupt-before/after)",
    )
    run.add_argument(
        "--context",
        metavar="JSON",
        help="the run's runtime context, a JSON object (read by nodes as runtime.context); JSON, @FILE or -",
    )
    run.add_argument(
        "--config",
        metavar="JSON",
        help="the run's config, a JSON object: configurable, tags, recursion_limit; JSON, @FILE or -",
    )
    run.add_argument("--metadata", metavar="JSON", help="metadata to attach to the run, a JSON object")
    run.add_argument(
        "--interrupt-before",
        metavar="NODE",
        action="append",
        help="pause before these nodes (repeatable, or comma-separated; * for every node)",
    )
    run.add_argument(
        "--interrupt-after",
        metavar="NODE",
        action="append",
        help="pause after these nodes (repeatable, or comma-separated; * for every node)",
    )
    run.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        help="stop the run after this long (status timeout; completed steps are kept)",
    )
    if streams:
        run.add_argument(
            "--stream-mode",
            metavar="MODE",
            action="append",
            choices=STREAM_MODES,
            help=f"events to {'show' if run.prog.endswith('stream') else 'record for runs join'} "
            f"(repeatable): {', '.join(STREAM_MODES)} "
            f"(default: {' '.join(DEFAULT_STREAM_MODES)})",
        )
        run.add_argument(
            "--subgraphs",
            action="store_true",
            help="also the events from inside subgraphs (shown after their path, e.g. [inner])",
        )


class _Parser(argparse.ArgumentParser):
    """The command line's parser. Each command's parser (argparse makes them of their parent's
    class) records itself in the arguments it parses, so that a usage error found while the
    command runs (bad JSON in `--input`) shows that command's usage, as argparse's own errors do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(usage_parser=self)


def build_parser() -> argparse.ArgumentParser:
    # --target/--token are accepted before or after the subcommand; SUPPRESS keeps a
    # subcommand's absent flag from overwriting one given before it.
    connection = _Parser(add_help=False)
    connection.add_argument(
        "--target", default=argparse.SUPPRESS, help=f"server address (env GRAPHRUN_TARGET, default {DEFAULT_TARGET})"
    )
    connection.add_argument(
        "--token", default=argparse.SUPPRESS, help="bearer token sent with every call (env GRAPHRUN_TOKEN)"
    )
    connection.add_argument(
        "--tls",
        action="store_true",
        default=argparse.SUPPRESS,
        help="connect with TLS, trusting the system's CAs (env GRAPHRUN_TLS=1)",
    )
    connection.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=argparse.SUPPRESS,
        help="CA certificate(s) to trust instead; implies --tls (env GRAPHRUN_TLS_CA)",
    )
    connection.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=argparse.SUPPRESS,
        help="this client's certificate, for mutual TLS (env GRAPHRUN_TLS_CLIENT_CERT)",
    )
    connection.add_argument(
        "--tls-key",
        metavar="PEM",
        default=argparse.SUPPRESS,
        help="this client's private key, for mutual TLS (env GRAPHRUN_TLS_CLIENT_KEY)",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text")
    client_parents = [connection, as_json]

    parser = _Parser(prog="graphrun", description="Run LangGraph graphs over gRPC.", parents=[connection])
    parser.set_defaults(json=False)  # --json too may come before the subcommand (`assistants --json list`)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_server_commands(commands)

    for name, handler, text in (
        ("wait", cmd_wait, "run a graph (a question, or --input) and print the turn when the run ends"),
        ("stream", cmd_stream, "run a graph and print its events (the answer, updates, custom data, …) as they happen"),
    ):
        run = commands.add_parser(name, help=text, parents=client_parents)
        _add_run_arguments(run, streams=name == "stream")
        run.set_defaults(handler=handler)

    runs = commands.add_parser("runs", help="start runs in the background, follow, list and cancel them")
    run_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    create_run = run_commands.add_parser(
        "create", help="start a run in the background; prints its id", parents=client_parents
    )
    _add_run_arguments(create_run, streams=True)
    create_run.add_argument("--delay", metavar="SECONDS", type=float, help="start the run this much later")
    create_run.set_defaults(handler=cmd_runs_create)
    for name, handler, text in (
        ("get", cmd_runs_get, "show a run's record"),
        ("cancel", cmd_runs_cancel, "stop a pending or running run"),
        ("join", cmd_runs_join, "follow a run's events (replayed, then live) to its end"),
    ):
        sub = run_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("run_id", metavar="RUN_ID")
        sub.set_defaults(handler=handler)
        if name == "cancel":
            sub.add_argument(
                "--rollback", action="store_true", help="also delete the checkpoints and events the run wrote"
            )
            sub.add_argument("--wait", action="store_true", help="return only once the run has stopped")
        if name == "join":
            sub.add_argument(
                "--after",
                metavar="N",
                type=int,
                default=0,
                help="only events after sequence number N (default: from the first)",
            )
    list_runs = run_commands.add_parser("list", help="list runs, newest first", parents=client_parents)
    list_runs.add_argument("--thread", metavar="ID", help="only runs of this thread")
    list_runs.add_argument(
        "--status",
        metavar="S",
        nargs="+",
        action="extend",
        type=str.lower,
        choices=_STATUSES,
        help=f"only runs in these statuses ({', '.join(_STATUSES)})",
    )
    list_runs.add_argument("--limit", type=int, default=20, help="show at most this many runs (default 20)")
    list_runs.set_defaults(handler=cmd_runs_list)

    threads = commands.add_parser("threads", help="create, inspect and delete threads")
    thread_commands = threads.add_subparsers(dest="threads_command", metavar="COMMAND", required=True)
    create = thread_commands.add_parser("create", help="create a thread; prints its id", parents=client_parents)
    create.add_argument("--thread-id", help="the id to use (default: the server picks one)")
    create.add_argument("--metadata", help="metadata as a JSON object")
    create.set_defaults(handler=cmd_threads_create)
    list_threads = thread_commands.add_parser("list", help="list your threads, newest first", parents=client_parents)
    list_threads.add_argument(
        "--status",
        metavar="S",
        nargs="+",
        action="extend",
        type=str.lower,
        choices=_THREAD_STATUSES,
        help=f"only threads in these statuses ({', '.join(_THREAD_STATUSES)})",
    )
    list_threads.add_argument(
        "--metadata", metavar="JSON", help="only threads whose metadata contains this JSON object"
    )
    list_threads.add_argument("--assistant", metavar="ID", help="only threads whose latest run ran this assistant")
    list_threads.add_argument("--limit", type=int, default=20, help="show at most this many threads (default 20)")
    list_threads.set_defaults(handler=cmd_threads_list)
    for name, handler, text in (
        ("get", cmd_threads_get, "show a thread's record"),
        ("state", cmd_threads_state, "show a thread's state (its conversation)"),
        ("history", cmd_threads_history, "list a thread's checkpoints, newest first"),
        ("delete", cmd_threads_delete, "delete a thread and everything it stored"),
    ):
        sub = thread_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("thread_id", metavar="ID")
        sub.set_defaults(handler=handler)
        if name == "state":
            sub.add_argument("--checkpoint", help="a checkpoint id (default: the latest)")
        if name == "history":
            sub.add_argument("--limit", type=int, help="show at most this many states")
            sub.add_argument("--page-size", type=int, default=100, help="states fetched per call (default 100)")

    assistants = commands.add_parser(
        "assistants",
        help="the graphs the server serves, and assistants: a graph with its own config (default: list)",
        parents=client_parents,
    )
    assistants.set_defaults(handler=cmd_assistants_list)
    assistant_commands = assistants.add_subparsers(dest="assistants_command", metavar="COMMAND")
    list_assistants = assistant_commands.add_parser(
        "list", help="list assistants: each graph's own, then yours, newest first", parents=client_parents
    )
    list_assistants.add_argument("--graph", metavar="ID", help="only assistants of this graph")
    list_assistants.add_argument(
        "--metadata", metavar="JSON", help="only assistants whose metadata contains this JSON object"
    )
    list_assistants.add_argument("--limit", type=int, default=100, help="show at most this many (default 100)")
    list_assistants.set_defaults(handler=cmd_assistants_list)
    get = assistant_commands.add_parser("get", help="show one assistant as JSON", parents=client_parents)
    get.add_argument("assistant_id", metavar="ID")
    get.set_defaults(handler=cmd_assistants_get)
    for name, handler, text in (
        ("create", cmd_assistants_create, "create an assistant of a graph; prints its id"),
        ("update", cmd_assistants_update, "write an assistant's next version (options given replace, others stay)"),
    ):
        sub = assistant_commands.add_parser(name, help=text, parents=client_parents)
        if name == "create":
            sub.add_argument("--graph", required=True, metavar="ID", help="the graph it runs")
            sub.add_argument("--assistant-id", metavar="ID", help="the id to use (default: the server picks one)")
        else:
            sub.add_argument("assistant_id", metavar="ID")
            sub.add_argument("--graph", metavar="ID", help="run another graph")
        sub.add_argument("--name", help="a human-readable name")
        sub.add_argument("--description", help="what it does")
        sub.add_argument("--config", metavar="JSON", help="its config: configurable, tags, recursion_limit")
        sub.add_argument("--context", metavar="JSON", help="its runtime context defaults, a JSON object")
        sub.add_argument("--metadata", metavar="JSON", help="metadata, a JSON object")
        sub.add_argument("--webhook", metavar="URL", help="the completion webhook of its runs that name none")
        sub.set_defaults(handler=handler)
    delete = assistant_commands.add_parser(
        "delete", help="delete an assistant and its versions", parents=client_parents
    )
    delete.add_argument("assistant_id", metavar="ID")
    delete.set_defaults(handler=cmd_assistants_delete)
    versions = assistant_commands.add_parser(
        "versions", help="list an assistant's versions, newest first", parents=client_parents
    )
    versions.add_argument("assistant_id", metavar="ID")
    versions.add_argument("--limit", type=int, default=20, help="show at most this many (default 20)")
    versions.set_defaults(handler=cmd_assistants_versions)
    set_latest = assistant_commands.add_parser(
        "set-latest", help="make a version of an assistant its current one", parents=client_parents
    )
    set_latest.add_argument("assistant_id", metavar="ID")
    set_latest.add_argument("version", type=int)
    set_latest.set_defaults(handler=cmd_assistants_set_latest)

    health = commands.add_parser(
        "health", help="check the server's health; exit 1 unless SERVING", parents=[connection]
    )
    health.add_argument("--service", default="", help="a service name (default: the whole server)")
    health.set_defaults(handler=cmd_health)

    store = commands.add_parser(
        "store",
        help="the long-term Store graphs share: put, get, delete, search items, list namespaces",
        description="A namespace is given as its labels, one argument each: `store get users alice --key prefs` "
        'reads key prefs in namespace ("users", "alice"). With authentication on, a caller\'s '
        "namespaces start with its identity.",
    )
    store_commands = store.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    labels: dict[str, Any] = {"nargs": "+", "metavar": "LABEL", "help": "the namespace, one label per argument"}
    put = store_commands.add_parser("put", help="store a JSON object under a namespace and key", parents=client_parents)
    put.add_argument("namespace", **labels)
    put.add_argument("--key", required=True, help="the item's key")
    put.add_argument("--value", required=True, metavar="JSON", help="the value, a JSON object")
    put.add_argument(
        "--ttl",
        type=int,
        metavar="MIN",
        help="expire this many minutes after the last access (default: the store's default_ttl; 0: never)",
    )
    put.add_argument(
        "--index",
        action="append",
        metavar="PATH",
        help="embed this JSON path for semantic search instead of store.index.fields (repeatable)",
    )
    put.add_argument("--no-index", action="store_true", help="do not embed this item")
    put.set_defaults(handler=cmd_store_put)
    for name, handler, text in (
        ("get", cmd_store_get, "show an item's value"),
        ("delete", cmd_store_delete, "delete an item"),
    ):
        sub = store_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("namespace", **labels)
        sub.add_argument("--key", required=True, help="the item's key")
        sub.set_defaults(handler=handler)
    search = store_commands.add_parser("search", help="search items under a namespace prefix", parents=client_parents)
    search.add_argument(
        "namespace",
        nargs="*",
        metavar="LABEL",
        help="the namespace prefix, one label per argument (default: the whole store)",
    )
    search.add_argument("--query", help="natural-language query (ranks by similarity with store.index)")
    search.add_argument(
        "--filter", metavar="JSON", help='match on the value\'s keys, e.g. \'{"kind": "note", "stars": {"$gte": 3}}\''
    )
    search.add_argument("--limit", type=int, help="at most this many items, 1-1000 (default 10)")
    search.add_argument("--offset", type=int, help="skip this many items")
    search.set_defaults(handler=cmd_store_search)
    namespaces = store_commands.add_parser(
        "namespaces", help="list the namespaces holding items", parents=client_parents
    )
    namespaces.add_argument(
        "--prefix", nargs="+", metavar="LABEL", help="only namespaces starting with these labels (* matches any one)"
    )
    namespaces.add_argument(
        "--suffix", nargs="+", metavar="LABEL", help="only namespaces ending with these labels (* matches any one)"
    )
    namespaces.add_argument("--max-depth", type=int, metavar="N", help="cut namespaces to their first N labels")
    namespaces.add_argument("--limit", type=int, help="at most this many namespaces, 1-1000 (default 100)")
    namespaces.add_argument("--offset", type=int, help="skip this many namespaces")
    namespaces.set_defaults(handler=cmd_store_namespaces)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graphrun` command; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if unknown and handler is not _no_server:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    _STDIN_TAKEN.clear()
    try:
        code = handler(args)
        sys.stdout.flush()  # here, so that a closed pipe is reported as such, not at interpreter exit
        return code
    except _UsageError as exc:
        getattr(args, "usage_parser", parser).error(str(exc))  # exits 2
    except GraphrunError as exc:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
        print_error(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `graphrun … | head`: the reader has what it wanted
        _discard_stdout()
        return 128 + 13  # as if killed by SIGPIPE, like other tools in a pipeline
    return 1  # unreachable: parser.error exits


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
