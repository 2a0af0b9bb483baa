"""What the clients return: plain dataclasses over JSON-shaped dicts.

Callers want `result.messages[-1]["content"]`, not protobuf accessors, so
responses are converted once into dicts keyed by the proto field names (the
same names the API reference documents).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Event", "EventKind", "RunResult", "status_name"]

EventKind = Literal["metadata", "values", "updates", "message", "custom", "task", "debug", "checkpoint",
                    "langchain_event", "end"]


def status_name(run: dict[str, Any]) -> str:
    """`RUN_STATUS_SUCCESS` -> `success`: the lowercase status callers compare against.

    Run dicts (from `wait`, `create_run`, `get_run`, `list_runs`, `cancel_run`
    and `end` events) keep the proto's enum name in `status`; this is the one
    conversion, the same `RunResult.status` applies.
    """
    return str(run.get("status", "")).removeprefix("RUN_STATUS_").lower()


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
