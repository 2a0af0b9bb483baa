"""What the clients take and return: typed run options, and plain dataclasses over JSON-shaped dicts.

Callers want `result.messages[-1]["content"]`, not protobuf accessors, so
responses are converted once into dicts keyed by the proto field names (the
same names the API reference documents).

Enum values have one spelling in everything the client returns and takes: the
lowercase name without the enum's prefix (`RUN_STATUS_SUCCESS` -> `"success"`,
`THREAD_STATUS_IDLE` -> `"idle"`, `TASK_PHASE_STARTED` -> `"started"`), in
`RunResult.status`, in the run, thread and event dicts, and in the `graphrun`
command's text and `--json` output. (Options still accept the full enum names
and numbers too.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "CancelAction",
    "Durability",
    "Event",
    "EventKind",
    "Granularity",
    "IfNotExists",
    "MultitaskStrategy",
    "OnDisconnect",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "StreamMode",
    "ThreadStatus",
    "status_name",
]

EventKind = Literal[
    "metadata", "values", "updates", "message", "custom", "task", "debug", "checkpoint", "langchain_event", "end"
]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted", "cancelled"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
IfNotExists = Literal["reject", "create"]
Granularity = Literal["low", "partial", "full"]
Durability = Literal["sync", "async", "exit"]
OnDisconnect = Literal["cancel", "continue"]
OnCompletion = Literal["keep", "delete"]
CancelAction = Literal["interrupt", "rollback"]
StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "custom", "tasks", "checkpoints", "debug", "events"
]


class RunOptions(TypedDict, total=False):
    """How to run a graph: the keyword options `wait`, `stream` and `create_run` share (`RunSpec` in run.proto).

    Pass them as keywords (`client.wait("agent", input, thread_id=t, durability="exit")`) or
    keep a set of them and spread it (`client.wait("agent", input, **options)`). Enum options
    take the lowercase names shown (the full enum names and numbers work too).
    """

    thread_id: str | None
    """The thread to run on; none: a new thread."""
    command: Mapping[str, Any] | None
    """`{"resume": ...}`, `{"update": {...}}`, `{"goto": "node" | [...]}`: continue an interrupted thread."""
    config: Mapping[str, Any] | None
    """LangGraph's RunnableConfig (`configurable`, `tags`, `recursion_limit`, …)."""
    context: Mapping[str, Any] | None
    """The run's context (LangGraph's `context_schema`)."""
    metadata: Mapping[str, Any] | None
    """Metadata stored with the run and the checkpoints it writes."""
    interrupt_before: Iterable[str] | None
    """Nodes to pause before (`"*"`: every node)."""
    interrupt_after: Iterable[str] | None
    """Nodes to pause after (`"*"`: every node)."""
    multitask_strategy: MultitaskStrategy | int | None
    """What to do when the thread already has a run in flight (default `reject`)."""
    if_not_exists: IfNotExists | int | None
    """`create` a missing `thread_id` instead of failing NOT_FOUND (default `reject`)."""
    checkpoint_id: str | None
    """Start from this checkpoint of the thread (time travel, a fork) instead of its latest."""
    granularity: Granularity | int | None
    """How much of the thread's state the result (and the `end` event) carries (default `full`)."""
    timeout: float | None
    """Seconds the run may execute before it is stopped (status `timeout`, completed steps kept)."""
    durability: Durability | int | None
    """When checkpoints are written (LangGraph's durability; default `sync`)."""
    webhook: str | None
    """A URL POSTed to, signed, when the run ends (the server must allow its host)."""
    on_completion: OnCompletion | int | None
    """`delete`: a stateless run, whose new thread is deleted with the run once it ended (default `keep`)."""
    request_id: str | None
    """Makes the request idempotent: the same id again gets the run the first request started. The
    client sets one when none is given, and retries the call with it when the server is unavailable."""
    assistant_version: int | None
    """Run this version of the assistant (`list_assistant_versions`) instead of its current one."""


def status_name(run: Mapping[str, Any] | str) -> str:
    """A status in the client's spelling, from a run (or thread) dict or a status string: `"success"`.

    The dicts the client returns already spell statuses this way; this also accepts the proto's
    enum names of runs and threads (from the stubs, or dicts an older client returned).
    """
    value = str(run if isinstance(run, str) else run.get("status", ""))
    return value.removeprefix("RUN_STATUS_").removeprefix("THREAD_STATUS_").lower()


@dataclass
class RunResult:
    """The outcome of `wait` (or of a stream's `end` event): the run and the thread's state."""

    run: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run.get("run_id", "")

    @property
    def thread_id(self) -> str:
        return self.run.get("thread_id", "")

    @property
    def status(self) -> str:
        """Lowercase run status: `success`, `interrupted`, `error`, `timeout`, `cancelled`…"""
        return status_name(self.run)

    @property
    def values(self) -> dict[str, Any]:
        """The graph's state channels."""
        return self.state.get("values") or {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation (`values.messages`), empty for graphs without one."""
        return list(self.values.get("messages") or [])

    @property
    def interrupts(self) -> list[dict[str, Any]]:
        """Interrupts waiting for a `command={"resume": ...}`."""
        return list(self.state.get("interrupts") or [])

    @property
    def next(self) -> list[str]:
        """Nodes that run next if the thread is continued; empty when the graph finished."""
        return list(self.state.get("next") or [])


@dataclass
class Event:
    """One event of a streamed run.

    `data` is the content of the event's kind (e.g. for `message`:
    `message_id`, `delta`, `message`, `node`, `step`; for `end`: `run`,
    `state`), keyed by proto field names.
    """

    sequence: int
    kind: EventKind
    data: dict[str, Any]
    namespace: tuple[str, ...] = ()
    event_time: str | None = None

    @property
    def result(self) -> RunResult | None:
        """For the `end` event, the run's outcome in the shape `wait` returns; otherwise None."""
        if self.kind != "end":
            return None
        return RunResult(run=self.data.get("run") or {}, state=self.data.get("state") or {})
