"""`graphrun`: serve graphs, or talk to a graphrun server from the terminal.

    graphrun serve --config langgraph.json
    graphrun wait "Wann wurde die Heizungsanlage gewartet?"
    graphrun stream "…" --thread 7f0c…
    graphrun threads state 7f0c…
    graphrun runs create "…" --delay 60      # in the background; follow with `runs join`
    graphrun runs join 3b9e…
    graphrun store put users alice --key prefs --value '{"theme": "dark"}'   # namespace ("users", "alice")

Human-readable output by default, `--json` for scripts. Errors go to stderr as
`error: <CODE> [<reason>]: <message>` and exit 1 (2 for usage errors).
While `wait` waits, a terminal on stderr shows the elapsed time and the node
running (`⏳ 3.2 s · node agent`), erased when the answer is printed;
GRAPHRUN_PROGRESS=0 turns it off, =1 forces it without a terminal.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TextIO

from ._errors import GraphrunError
from ._sync import Client
from ._types import Event, RunResult, status_name

DEFAULT_TARGET = "127.0.0.1:50051"

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


def print_state(state: dict[str, Any]) -> None:
    """A thread state for humans: the conversation if there is one, else the values as JSON."""
    values = state.get("values") or {}
    messages = values.get("messages")
    blocks = [format_message(m) for m in messages] if isinstance(messages, list) else []
    rest = {k: v for k, v in values.items() if k != "messages"} if isinstance(messages, list) else values
    if rest or not blocks:
        blocks.append(f"values: {_json(rest)}")
    if lines := _interrupt_lines(state):
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))


_HINTS = {"THREAD_INTERRUPTED": "answer with --resume VALUE, or continue with --continue"}


def _error_head(exc: GraphrunError) -> str:
    """The code, then the reason unless it just repeats the code (INVALID_ARGUMENT INVALID_ARGUMENT)."""
    return f"{exc.code.name} {exc.reason}" if exc.reason and exc.reason != exc.code.name else exc.code.name


def print_error(exc: GraphrunError) -> None:
    print(f"error: {_error_head(exc)}: {exc.message}", file=sys.stderr)
    for field, description in exc.field_violations:
        if f"{field}: {description}" not in exc.message:  # the server's message often lists them already
            print(f"  {field}: {description}", file=sys.stderr)
    if hint := _HINTS.get(exc.reason):
        print(f"hint: {hint}", file=sys.stderr)
    if exc.run_id:
        print(_dim(f"  run {exc.run_id} · thread {exc.thread_id or '?'}", sys.stderr), file=sys.stderr)
    if exc.last_sequence is not None and exc.run_id:
        print(_dim(f"  continue with: graphrun runs join {exc.run_id} --after {exc.last_sequence}", sys.stderr),
              file=sys.stderr)


class _StreamPrinter:
    """Renders a messages+tasks stream: tokens as they arrive, tool calls once complete."""

    def __init__(self) -> None:
        self.open_id: str | None = None  # message whose tokens are being written on the current line
        self.blocks = 0

    def _start_block(self) -> None:
        self._close_line()
        if self.blocks:
            print()
        self.blocks += 1

    def _close_line(self) -> None:
        if self.open_id is not None:
            print(flush=True)
            self.open_id = None

    def block(self, text: str) -> None:
        if text:
            self._start_block()
            print(text, flush=True)

    def on_event(self, event: Event) -> None:
        if event.kind == "message":
            self._on_message(event.data)
        elif event.kind == "task" and event.data.get("error"):
            self._close_line()
            print(_dim(f"task {event.data.get('name')} failed: {event.data['error']}"), flush=True)
        elif event.kind == "end":
            self._close_line()
            result = event.result
            assert result is not None
            self.block("\n".join(_interrupt_lines(result.state)))
            self.block(_footer(result.run_id, result.thread_id, result.status))

    def _on_message(self, data: dict[str, Any]) -> None:
        message, message_id = data.get("message") or {}, data.get("message_id", "")
        if data.get("delta"):
            text = _text(message.get("content"))
            if not text:
                return
            if self.open_id != message_id:
                self._start_block()
                sys.stdout.write(f"{message.get('role') or 'ai'}: ")
                self.open_id = message_id
            sys.stdout.write(text.replace("\n", "\n  "))
            sys.stdout.flush()
        elif self.open_id == message_id:  # the complete form of the message just streamed
            self._close_line()
            for line in _tool_call_lines(message):
                print(line, flush=True)
        else:
            self.block(format_message(message))


# -- commands -----------------------------------------------------------------------


def _setting(args: argparse.Namespace, name: str, env: str) -> str | None:
    return getattr(args, name, None) or os.environ.get(env) or None


def _read(path: str | None) -> bytes | None:
    return pathlib.Path(path).read_bytes() if path else None


def _client(args: argparse.Namespace) -> Client:
    target = _setting(args, "target", "GRAPHRUN_TARGET") or DEFAULT_TARGET
    ca, cert, key = (_setting(args, n, e) for n, e in (("tls_ca", "GRAPHRUN_TLS_CA"), ("tls_cert", "GRAPHRUN_TLS_CLIENT_CERT"),
                                                     ("tls_key", "GRAPHRUN_TLS_CLIENT_KEY")))
    secure = bool(getattr(args, "tls", False) or os.environ.get("GRAPHRUN_TLS") == "1" or ca or cert)
    return Client(target, token=_setting(args, "token", "GRAPHRUN_TOKEN"), secure=secure, root_certificates=_read(ca),
                  certificate_chain=_read(cert), private_key=_read(key))


def _parse_json_arg(value: str) -> Any:
    """JSON if it parses, else the plain string: `--resume yes` and `--resume '{"ok": true}'` both work."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _check_run_args(args: argparse.Namespace) -> None:
    if args.continue_:
        if not args.thread:
            raise _UsageError("--continue needs --thread ID")
        if args.question is not None or args.resume is not None:
            raise _UsageError("--continue sends no input: drop the question and --resume")
    elif args.question is None and args.resume is None:
        raise _UsageError("give a question, --resume VALUE to answer an interrupt, or --continue")


def _run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Neither input nor command for --continue: the run goes on from the thread's checkpoint."""
    _check_run_args(args)
    kwargs: dict[str, Any] = {"thread_id": args.thread}
    if args.thread and args.question is not None:
        kwargs["if_not_exists"] = "create"
    if args.question is not None:
        kwargs["input"] = {"messages": [{"role": "user", "content": args.question}]}
    if args.resume is not None:
        kwargs["command"] = {"resume": _parse_json_arg(args.resume)}
    if args.context is not None:
        try:
            context = json.loads(args.context)
        except json.JSONDecodeError as exc:
            raise _UsageError(f"--context must be a JSON object: {exc}") from None
        if not isinstance(context, dict):
            raise _UsageError("--context must be a JSON object, e.g. '{\"model\": \"openai/gpt-4o\"}'")
        kwargs["context"] = context
    return kwargs


def _add_server_commands(commands: argparse._SubParsersAction) -> None:
    """The server's commands (`serve`), from the `graphrun.commands` entry points of the
    installed server; without a server, `serve` says how to install one."""
    added = False
    for entry_point in importlib.metadata.entry_points(group="graphrun.commands"):
        entry_point.load()(commands)
        added = True
    if not added:
        serve = commands.add_parser("serve", help="run a graphrun server (needs the server: pip install graphrun)",
                                    add_help=False)
        serve.set_defaults(handler=_no_server)  # whatever its options (see `main`)


def _no_server(args: argparse.Namespace) -> int:
    print("error: graphrun serve needs the server, which is not installed here; "
          "install it with: pip install graphrun", file=sys.stderr)
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
        if event.data.get("phase") == "TASK_PHASE_STARTED":
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
        if _progress_wanted(sys.stderr):
            result = _wait_with_progress(client, args.assistant, kwargs)
        else:
            result = client.wait(args.assistant, **kwargs)
    if args.json:
        _print_json(asdict(result))
        return 0
    _print_result(result)
    return 0


def _print_result(result: RunResult) -> None:
    print_state(result.state)
    print()
    print(_footer(result.run_id, result.thread_id, result.status))


def cmd_stream(args: argparse.Namespace) -> int:
    kwargs = _run_kwargs(args)
    printer = _StreamPrinter()
    if args.question is not None and not args.json:
        printer.block(format_message({"role": "user", "content": args.question}))  # as `wait` shows it
    with _client(args) as client:
        for event in client.stream(args.assistant, stream_mode=("messages", "tasks"), **kwargs):
            if args.json:
                print(_json(asdict(event)), flush=True)
            else:
                printer.on_event(event)
    return 0


def cmd_runs_create(args: argparse.Namespace) -> int:
    kwargs = _run_kwargs(args)
    if args.delay is not None and args.delay < 0:
        raise _UsageError("--delay must not be negative")
    with _client(args) as client:
        # The modes `stream` shows, so `runs join` renders the run the same way.
        run = client.create_run(args.assistant, stream_mode=("messages", "tasks"), start_delay=args.delay, **kwargs)
    if args.json:
        _print_json(run)
    else:
        print(run["run_id"])
        print(_dim(f"thread {run.get('thread_id', '')} · {status_name(run)}"))
    return 0


_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted", "cancelled")
_RUN_FIELDS = ("run_id", "thread_id", "assistant_id", "status", "attempt", "current_node", "step",
               "created_at", "started_at", "ended_at")


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
        print(f"{run['run_id']}  {status_name(run):<11}  {run.get('assistant_id', ''):<12}"
              f"  thread {run.get('thread_id', '')}  {_dim(run.get('created_at', ''))}")
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
    with _client(args) as client:
        for event in client.join(args.run_id, after_sequence=args.after):
            if args.json:
                print(_json(asdict(event)), flush=True)
            else:
                printer.on_event(event)
    return 0


def cmd_threads_create(args: argparse.Namespace) -> int:
    metadata = json.loads(args.metadata) if args.metadata else None
    with _client(args) as client:
        thread = client.create_thread(args.thread_id, metadata)
    if args.json:
        _print_json(thread)
    else:
        print(thread["thread_id"])
    return 0


def _print_thread(thread: dict[str, Any]) -> None:
    for key in ("thread_id", "status", "assistant_id", "created_at", "updated_at"):
        value = thread.get(key, "")
        if key == "status":
            value = str(value).removeprefix("THREAD_STATUS_").lower()
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
    print(_dim(f"thread {args.thread_id} · checkpoint {checkpoint or 'none'}"
               + (f" · step {step}" if step is not None else "")))
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
        print(f"{checkpoint}  step {meta.get('step', '?'):>3}  {meta.get('source', ''):<6}  next {nxt:<12}"
              f"  {count} messages  {_dim(state.get('created_at', ''))}")
    return 0


def cmd_threads_delete(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.delete_thread(args.thread_id)
    print(f"deleted {args.thread_id}")
    return 0


def cmd_assistants_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        assistants = client.list_assistants()
    if args.json:
        _print_json(assistants)
        return 0
    width = max((len(a["assistant_id"]) for a in assistants), default=0)
    for a in assistants:
        print(f"{a['assistant_id']:<{width}}  {a.get('description', '')}  {_dim('nodes: ' + ', '.join(a.get('nodes', [])))}")
    return 0


def cmd_assistants_get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        _print_json(client.get_assistant(args.assistant_id))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        status = client.health(args.service)
    print(status)
    return 0 if status == "SERVING" else 1


# -- the Store ------------------------------------------------------------------------------
#
# A namespace is written as its labels, one argument each (`users alice` is ("users", "alice"));
# text output shows it joined with "/", --json exactly.


def _namespace_text(labels: Sequence[str]) -> str:
    return "/".join(labels)


def _json_object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _UsageError(f"{option} must be JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _UsageError(f"{option} must be a JSON object, not {type(value).__name__}")
    return value


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
        items = client.search_items(args.namespace, query=args.query, filter=filter_, limit=args.limit,
                                    offset=args.offset)
    if args.json:
        _print_json(items)
    else:
        for item in items:
            print(_item_line(item))
    return 0


def cmd_store_namespaces(args: argparse.Namespace) -> int:
    with _client(args) as client:
        namespaces = client.list_namespaces(prefix=args.prefix, suffix=args.suffix, max_depth=args.max_depth,
                                            limit=args.limit, offset=args.offset)
    if args.json:
        _print_json([list(namespace) for namespace in namespaces])
    else:
        for namespace in namespaces:
            print(_namespace_text(namespace))
    return 0


# -- parser ---------------------------------------------------------------------------


class _UsageError(Exception):
    """A combination of arguments argparse cannot express; reported like argparse's own."""


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    """What starts a run: a question, an answer to an interrupt, or neither (--continue)."""
    run.add_argument("question", nargs="?", help="the user message")
    run.add_argument("--thread", metavar="ID",
                     help="thread to continue; with a question, a new ID creates it "
                          "(--resume and --continue need an existing thread)")
    run.add_argument("--assistant", metavar="ID", default="agent", help="assistant (graph) id (default: agent)")
    run.add_argument("--resume", metavar="VALUE", help="answer the thread's interrupt (JSON or text)")
    run.add_argument("--continue", dest="continue_", action="store_true",
                     help="run on from the thread's checkpoint without input (e.g. after interrupt_before/after)")
    run.add_argument("--context", metavar="JSON",
                     help="the run's runtime context, a JSON object (read by nodes as runtime.context)")


def build_parser() -> argparse.ArgumentParser:
    # --target/--token are accepted before or after the subcommand; SUPPRESS keeps a
    # subcommand's absent flag from overwriting one given before it.
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--target", default=argparse.SUPPRESS,
                            help=f"server address (env GRAPHRUN_TARGET, default {DEFAULT_TARGET})")
    connection.add_argument("--token", default=argparse.SUPPRESS,
                            help="bearer token sent with every call (env GRAPHRUN_TOKEN)")
    connection.add_argument("--tls", action="store_true", default=argparse.SUPPRESS,
                            help="connect with TLS, trusting the system's CAs (env GRAPHRUN_TLS=1)")
    connection.add_argument("--tls-ca", metavar="PEM", default=argparse.SUPPRESS,
                            help="CA certificate(s) to trust instead; implies --tls (env GRAPHRUN_TLS_CA)")
    connection.add_argument("--tls-cert", metavar="PEM", default=argparse.SUPPRESS,
                            help="this client's certificate, for mutual TLS (env GRAPHRUN_TLS_CLIENT_CERT)")
    connection.add_argument("--tls-key", metavar="PEM", default=argparse.SUPPRESS,
                            help="this client's private key, for mutual TLS (env GRAPHRUN_TLS_CLIENT_KEY)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text")
    client_parents = [connection, as_json]

    parser = argparse.ArgumentParser(prog="graphrun", description="Run LangGraph graphs over gRPC.",
                                     parents=[connection])
    parser.set_defaults(json=False)  # --json too may come before the subcommand (`assistants --json list`)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _add_server_commands(commands)

    for name, handler, text in (("wait", cmd_wait, "ask a question and print the conversation when the run ends"),
                                ("stream", cmd_stream, "ask a question and print the answer as it is generated")):
        run = commands.add_parser(name, help=text, parents=client_parents)
        _add_run_arguments(run)
        run.set_defaults(handler=handler)

    runs = commands.add_parser("runs", help="start runs in the background, follow, list and cancel them")
    run_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    create_run = run_commands.add_parser("create", help="start a run in the background; prints its id",
                                         parents=client_parents)
    _add_run_arguments(create_run)
    create_run.add_argument("--delay", metavar="SECONDS", type=float, help="start the run this much later")
    create_run.set_defaults(handler=cmd_runs_create)
    for name, handler, text in (("get", cmd_runs_get, "show a run's record"),
                                ("cancel", cmd_runs_cancel, "stop a pending or running run"),
                                ("join", cmd_runs_join, "follow a run's events (replayed, then live) to its end")):
        sub = run_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("run_id", metavar="RUN_ID")
        sub.set_defaults(handler=handler)
        if name == "cancel":
            sub.add_argument("--rollback", action="store_true",
                             help="also delete the checkpoints and events the run wrote")
            sub.add_argument("--wait", action="store_true", help="return only once the run has stopped")
        if name == "join":
            sub.add_argument("--after", metavar="N", type=int, default=0,
                             help="only events after sequence number N (default: from the first)")
    list_runs = run_commands.add_parser("list", help="list runs, newest first", parents=client_parents)
    list_runs.add_argument("--thread", metavar="ID", help="only runs of this thread")
    list_runs.add_argument("--status", metavar="S", nargs="+", action="extend", type=str.lower, choices=_STATUSES,
                           help=f"only runs in these statuses ({', '.join(_STATUSES)})")
    list_runs.add_argument("--limit", type=int, default=20, help="show at most this many runs (default 20)")
    list_runs.set_defaults(handler=cmd_runs_list)

    threads = commands.add_parser("threads", help="create, inspect and delete threads")
    thread_commands = threads.add_subparsers(dest="threads_command", metavar="COMMAND", required=True)
    create = thread_commands.add_parser("create", help="create a thread; prints its id", parents=client_parents)
    create.add_argument("--thread-id", help="the id to use (default: the server picks one)")
    create.add_argument("--metadata", help="metadata as a JSON object")
    create.set_defaults(handler=cmd_threads_create)
    for name, handler, text in (("get", cmd_threads_get, "show a thread's record"),
                                ("state", cmd_threads_state, "show a thread's state (its conversation)"),
                                ("history", cmd_threads_history, "list a thread's checkpoints, newest first"),
                                ("delete", cmd_threads_delete, "delete a thread and everything it stored")):
        sub = thread_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("thread_id", metavar="ID")
        sub.set_defaults(handler=handler)
        if name == "state":
            sub.add_argument("--checkpoint", help="a checkpoint id (default: the latest)")
        if name == "history":
            sub.add_argument("--limit", type=int, help="show at most this many states")
            sub.add_argument("--page-size", type=int, default=100, help="states fetched per call (default 100)")

    assistants = commands.add_parser("assistants", help="list the graphs the server serves (default: list)",
                                     parents=client_parents)
    assistants.set_defaults(handler=cmd_assistants_list)
    assistant_commands = assistants.add_subparsers(dest="assistants_command", metavar="COMMAND")
    assistant_commands.add_parser("list", help="list assistants", parents=client_parents).set_defaults(
        handler=cmd_assistants_list)
    get = assistant_commands.add_parser("get", help="show one assistant as JSON", parents=client_parents)
    get.add_argument("assistant_id", metavar="ID")
    get.set_defaults(handler=cmd_assistants_get)

    health = commands.add_parser("health", help="check the server's health; exit 1 unless SERVING",
                                 parents=[connection])
    health.add_argument("--service", default="", help="a service name (default: the whole server)")
    health.set_defaults(handler=cmd_health)

    store = commands.add_parser(
        "store", help="the long-term Store graphs share: put, get, delete, search items, list namespaces",
        description="A namespace is given as its labels, one argument each: `store get users alice --key prefs` "
                    "reads key prefs in namespace (\"users\", \"alice\"). With authentication on, a caller's "
                    "namespaces start with its identity.")
    store_commands = store.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    labels = {"nargs": "+", "metavar": "LABEL", "help": "the namespace, one label per argument"}
    put = store_commands.add_parser("put", help="store a JSON object under a namespace and key",
                                    parents=client_parents)
    put.add_argument("namespace", **labels)
    put.add_argument("--key", required=True, help="the item's key")
    put.add_argument("--value", required=True, metavar="JSON", help="the value, a JSON object")
    put.add_argument("--ttl", type=int, metavar="MIN",
                     help="expire this many minutes after the last access (default: the store's default_ttl; "
                          "0: never)")
    put.add_argument("--index", action="append", metavar="PATH",
                     help="embed this JSON path for semantic search instead of store.index.fields (repeatable)")
    put.add_argument("--no-index", action="store_true", help="do not embed this item")
    put.set_defaults(handler=cmd_store_put)
    for name, handler, text in (("get", cmd_store_get, "show an item's value"),
                                ("delete", cmd_store_delete, "delete an item")):
        sub = store_commands.add_parser(name, help=text, parents=client_parents)
        sub.add_argument("namespace", **labels)
        sub.add_argument("--key", required=True, help="the item's key")
        sub.set_defaults(handler=handler)
    search = store_commands.add_parser("search", help="search items under a namespace prefix",
                                       parents=client_parents)
    search.add_argument("namespace", nargs="*", metavar="LABEL",
                        help="the namespace prefix, one label per argument (default: the whole store)")
    search.add_argument("--query", help="natural-language query (ranks by similarity with store.index)")
    search.add_argument("--filter", metavar="JSON",
                        help='match on the value\'s keys, e.g. \'{"kind": "note", "stars": {"$gte": 3}}\'')
    search.add_argument("--limit", type=int, help="at most this many items, 1-1000 (default 10)")
    search.add_argument("--offset", type=int, help="skip this many items")
    search.set_defaults(handler=cmd_store_search)
    namespaces = store_commands.add_parser("namespaces", help="list the namespaces holding items",
                                           parents=client_parents)
    namespaces.add_argument("--prefix", nargs="+", metavar="LABEL",
                            help="only namespaces starting with these labels (* matches any one)")
    namespaces.add_argument("--suffix", nargs="+", metavar="LABEL",
                            help="only namespaces ending with these labels (* matches any one)")
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
    try:
        return handler(args)
    except _UsageError as exc:
        parser.error(str(exc))  # exits 2
    except GraphrunError as exc:
        sys.stdout.flush()
        print_error(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 1  # unreachable: parser.error exits


if __name__ == "__main__":
    sys.exit(main())
