"""One attempt of a run on this replica, and the states it moves through.

Why a state machine: runs are stopped from many places (NOTIFY, the lease thread,
a fenced write, the watchdog, a caller going away, drain), at any moment of an
attempt, and what a stop may still do depends on where the attempt is. Each of
them asks `ActiveRun.stop`; the attempt's own code (its task, its checkpoint writes)
moves it on with `transition`.
Nothing else changes `state` or `reason`.

    STARTING ──▶ EXECUTING ──(stop)──▶ STOPPING ──▶ LEAVING ──▶ SETTLING ──▶ DONE

and the shortcuts in LEGAL: a stop before the task began (STARTING ──▶ STOPPING), an end that
rides on the last checkpoint write (EXECUTING ──▶ SETTLING), a run the database did not accept
(LEAVING ──▶ DONE).

A stop is a reason recorded on the attempt; the first wins. What the attempt finds
out itself (a write of it was refused: `LOST`; its end was stored: no reason at
all) is a fact and replaces whatever was asked.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langgraph.runtime import RunControl
from opentelemetry import trace

from .. import events as ev
from ..storage.checkpointer import Rider, RunCheckpoints
from ..storage.records import RunRecord
from ..stream_events import EventTranslator
from .request import RunRequest

# The runner's log lines keep the logger name they had before it was split into modules:
# operators filter on it.
log = logging.getLogger("graphrun_server.runner")

# A stopped run's task is cancelled again this often until it leaves the graph (see ActiveRun._cancel).
RECANCEL_SECONDS = 1.0


class RunState(enum.Enum):
    STARTING = "starting"  # its task is made but has not begun
    EXECUTING = "executing"  # its task is in the graph
    STOPPING = "stopping"  # a stop was asked: the task is cancelled until it leaves the graph
    LEAVING = "leaving"  # out of the graph: its writes and its acceptance are awaited
    SETTLING = "settling"  # its end is being recorded: too late to stop it
    DONE = "done"  # it left this replica


S = RunState
LEGAL: dict[RunState, frozenset[RunState]] = {
    S.STARTING: frozenset({S.EXECUTING, S.STOPPING, S.DONE}),  # DONE: never started (not registered)
    S.EXECUTING: frozenset({S.STOPPING, S.LEAVING, S.SETTLING}),
    S.STOPPING: frozenset({S.LEAVING}),
    S.LEAVING: frozenset({S.LEAVING, S.SETTLING, S.DONE}),  # DONE: the database did not accept it
    S.SETTLING: frozenset({S.SETTLING, S.DONE}),
    S.DONE: frozenset(),
}
# Where a stop is legal. Before the task began it is only recorded (a task cancelled before its first
# step never runs its coroutine, and nothing would record the run's end): the task stops as it begins.
# In the graph the task is cancelled. Out of it the reason still decides the outcome. Once the end is
# being recorded it is too late: the run ended as it did.
STOPPABLE = frozenset({S.STARTING, S.EXECUTING, S.LEAVING})


class StopReason(enum.StrEnum):
    INTERRUPT = "interrupt"  # Cancel, a newer INTERRUPT run, the caller gone, the thread deleted
    ROLLBACK = "rollback"  # the same, deleting what the run wrote
    TIMEOUT = "timeout"  # spec.timeout or the caller's deadline
    BLOCKED = "blocked"  # it held the event loop (watchdog)
    HANDOFF = "handoff"  # drain: back to the queue for another replica
    OUTAGE = "outage"  # the database went away: back to the queue once it is back
    LOST = "lost"  # another attempt owns the run: write nothing more


# Why a run stops early -> its final status (the others leave no status: the run moves on elsewhere).
STOP_STATUS = {
    StopReason.INTERRUPT: "cancelled",
    StopReason.ROLLBACK: "cancelled",
    StopReason.TIMEOUT: "timeout",
    StopReason.BLOCKED: "error",
}
STOP_ERROR_TYPE = {StopReason.TIMEOUT: "TimeoutError", StopReason.BLOCKED: "EventLoopBlocked"}  # others: CancelledError
MOVES = frozenset({StopReason.HANDOFF, StopReason.OUTAGE, StopReason.LOST})


class IllegalTransition(RuntimeError):
    """A bug: the runner moved an attempt in a way the life cycle does not have."""


# The longest a run started by a Stream waits, once accepted, for the call's first event to go out
# (runs/admission.py, `_begin_here`): far longer than a healthy send, short enough that a caller
# that is slow to take it costs the run little.
HOLD_LIMIT = 0.05


@dataclass(eq=False)
class ActiveRun:
    """A run executing on this replica (one attempt of it)."""

    record: RunRecord
    request: RunRequest
    log: ev.EventLog
    task: asyncio.Task | None = None
    control: RunControl = field(default_factory=RunControl)
    state: RunState = RunState.STARTING
    reason: StopReason | None = None  # why it stopped early (see `transition`)
    message: str = ""  # the stop's explanation, for the run's error
    translator: EventTranslator | None = None  # stream chunks -> events, for runs that stream
    current_node: str | None = None
    step: int | None = None
    checkpoint: dict | None = None  # the last checkpoint the graph announced: its ref, `next` and values
    checkpoints: RunCheckpoints = field(default_factory=RunCheckpoints)  # what its checkpoint writes stored
    admission: asyncio.Future | None = None  # the database's answer, for a run started ahead of it
    hold: asyncio.Future | None = None  # it goes on past its first read or write once this is done
    rider: Rider | None = None  # its acceptance, when it rides on its first checkpoint write or read
    finisher: Callable[[dict], tuple[str, tuple] | None] | None = None  # see `finish`
    span: trace.Span = trace.INVALID_SPAN  # the run's trace span (a no-op unless tracing is on)
    node_spans: dict[str, trace.Span] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    leased_at: float = field(default_factory=time.monotonic)  # its lease was asked for then: set no earlier
    stored: int = 0  # events up to this sequence are in the database
    context: Any = None  # the contextvars.Context its tasks run in
    ending: ev.RunEvent | None = None  # its end event, when recorded with its last checkpoint

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def thread_id(self) -> str:
        return self.record.thread_id

    @property
    def attempt(self) -> int:
        return self.record.attempt

    # -- what the checkpointer asks of it (storage.checkpointer.CheckpointedRun) -------------

    @property
    def fence(self) -> tuple[str, int]:
        return self.run_id, self.attempt

    async def admitted(self) -> None:
        if self.admission is not None:
            await asyncio.shield(self.admission)  # a cancelled write must not cancel the answer

    async def may_proceed(self) -> None:
        await self.admitted()
        if (hold := self.hold) is not None:
            try:
                async with asyncio.timeout(HOLD_LIMIT):  # not wait_for: 3.11's may lose a stop's cancel
                    await asyncio.shield(hold)
            except TimeoutError:
                pass  # its caller is slow to take the first event: the run does not wait for it
            self.hold = None

    def finish(self, checkpoint: dict) -> tuple[str, tuple] | None:
        return self.finisher(checkpoint) if self.finisher is not None else None

    def fenced_off(self) -> None:
        self.stop(StopReason.LOST, "another replica took the run over")

    # -- what the event writer asks of it (storage.event_writer.EventSource) -----------------

    def unstored(self) -> list[ev.RunEvent]:
        return self.log.since(self.stored)

    def events_stored(self, sequence: int) -> None:
        if sequence > self.stored:
            self.stored = sequence
            self.log.mark_durable(sequence)

    # -- its life cycle ---------------------------------------------------------------------

    def transition(
        self, to: RunState, reason: StopReason | None = None, message: str = "", *, fact: bool = False
    ) -> bool:
        """Move to `to` (raises IllegalTransition for a move the life cycle does not have) and
        record `reason`: a request's only if none is recorded yet (the first wins), a fact's
        (`fact=True`, even None) in place of any. Returns whether the reason was recorded."""
        if to not in LEGAL[self.state]:
            raise IllegalTransition(f"run {self.run_id} attempt {self.attempt}: {self.state.name} -> {to.name}")
        self.state = to
        if fact or (reason is not None and self.reason is None):
            self.reason, self.message = reason, message if reason is not None else ""
            return True
        return False

    def leave(self, reason: StopReason | None = None, message: str = "", *, fact: bool = False) -> None:
        """The task is out of the graph (or its end is being recorded already): LEAVING, with why."""
        in_graph = self.state in (RunState.EXECUTING, RunState.STOPPING)
        self.transition(RunState.LEAVING if in_graph else self.state, reason, message, fact=fact)

    def stop(self, reason: StopReason, message: str) -> bool:
        """Ask the attempt to stop: what every source of a stop calls. Legal in STOPPABLE states
        while no reason is recorded (the first wins); returns whether it was taken."""
        if self.state not in STOPPABLE or self.reason is not None:
            return False
        was = self.state
        self.transition(RunState.STOPPING if was in (RunState.STARTING, RunState.EXECUTING) else was, reason, message)
        if was is RunState.EXECUTING:
            self._cancel()
        return True

    def _cancel(self) -> None:
        """Cancel the task, again every RECANCEL_SECONDS while it is still in the graph: a
        cancellation can be swallowed on its way (Python 3.11's wait_for loses one that arrives as
        its inner await completes; a node may catch CancelledError), and the run would then go on,
        its lease renewed, with nothing left to stop it."""
        if self.state is not RunState.STOPPING or self.task is None or self.task.done():
            return
        self.task.cancel()
        asyncio.get_running_loop().call_later(RECANCEL_SECONDS, self._cancel)
