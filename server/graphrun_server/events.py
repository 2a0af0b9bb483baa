"""A run's events: numbered 1, 2, 3 … and readable by any number of followers.

The runner appends; RPC handlers follow. Appending never waits for a reader, so
a slow client cannot stall a run, and each follower keeps its own position, so
one that attaches late still sees every event. A log covers one execution
attempt on this replica: it starts after the events earlier attempts stored.

Followers only see events once they are stored (`mark_durable`): if this
replica dies or loses the run, the attempt that takes over numbers its events
after the last stored one, so no follower anywhere has seen a number twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

# Event kinds, as the `RunEvent.attributes` oneof names them.
METADATA, VALUES, UPDATES, MESSAGE, CUSTOM, TASK, END = (
    "metadata",
    "values",
    "updates",
    "message",
    "custom",
    "task",
    "end",
)
DEBUG, CHECKPOINT, LANGCHAIN_EVENT = "debug", "checkpoint", "langchain_event"


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event: `data` is JSON-safe and shaped like the kind's proto message."""

    sequence: int
    kind: str
    data: dict[str, Any]
    time: float = field(default_factory=time.time)
    namespace: tuple[str, ...] = ()


class RunMoved(Exception):
    """The run stopped executing here without ending: handed to another replica
    (`reason` "handoff") or taken over by one ("lost"). Follow it from the database."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class EventLog:
    """The events of one execution attempt of a run, in order, with a wake-up for followers."""

    def __init__(self, after: int = 0) -> None:
        self.base = after  # events up to this sequence belong to earlier attempts
        self.durable = after  # events up to this sequence are stored: followers may see them
        self._events: list[RunEvent] = []
        self._changed = asyncio.Event()
        self.closed: BaseException | None = None  # RunMoved, once the attempt left this replica
        self.ended = asyncio.get_running_loop().create_future()
        self.on_publish: Callable[[], None] | None = None  # told of each event (the event writer's mark)

    @property
    def last_sequence(self) -> int:
        return self.base + len(self._events)

    def next_event(self, kind: str, data: dict[str, Any], namespace: tuple[str, ...] = ()) -> RunEvent:
        """The event `append` would add next (to store it before publishing it)."""
        return RunEvent(self.last_sequence + 1, kind, data, namespace=namespace)

    def append(self, kind: str, data: dict[str, Any], namespace: tuple[str, ...] = ()) -> RunEvent:
        return self.publish(self.next_event(kind, data, namespace))

    def publish(self, event: RunEvent) -> RunEvent:
        if self.ended.done() or self.closed is not None:
            raise RuntimeError("the run's log is closed")
        assert event.sequence == self.last_sequence + 1
        self._events.append(event)
        if event.kind == END:
            self.ended.set_result(event)
        if self.on_publish is not None:
            self.on_publish()
        self._wake()
        return event

    def close(self, reason: str) -> None:
        """The attempt stopped here without an end event; followers continue elsewhere."""
        if self.closed is None and not self.ended.done():
            self.closed = RunMoved(reason)
            self._wake()

    def mark_durable(self, sequence: int) -> None:
        """Events up to `sequence` are stored: release them to followers."""
        if sequence > self.durable:
            self.durable = sequence
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, sequence: int, durable_only: bool = False) -> list[RunEvent]:
        end = self.durable - self.base if durable_only else len(self._events)
        return self._events[max(sequence - self.base, 0) : end]

    async def follow(self, after: int, deadline: float | None = None) -> AsyncIterator[list[RunEvent]]:
        """Yield the stored events numbered after `after` (>= base), then new ones, up to the end
        event: each time, every event released since the last (in order, never empty), so a
        reader that fell behind takes up what waits in one go.

        Raises RunMoved if the attempt leaves this replica, and TimeoutError once the
        deadline (event-loop time) has passed, while waiting or between batches. The wait
        never spans a `yield`, so a caller may follow again from the last event it got.
        """
        loop = asyncio.get_running_loop()
        position = after
        while True:
            changed = self._changed
            if batch := self.since(position, durable_only=True):
                position = batch[-1].sequence
                yield batch
                if batch[-1].kind == END:
                    return
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError  # a reader that never catches up still stops at its deadline
                continue
            if self.closed is not None:
                raise self.closed
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError
            # Not wait_for: on Python 3.11 that wraps the wait in a task of its own, one more
            # turn of the event loop (and a task) before each batch reaches a call with a deadline.
            async with asyncio.timeout_at(deadline):
                await changed.wait()
