"""A run's events: numbered 1, 2, 3 … and readable by any number of followers.

The runner appends; RPC handlers follow. Appending never waits for a reader, so
a slow client cannot stall a run, and each follower keeps its own position, so
one that attaches late still sees every event from the first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# Event kinds, as the `RunEvent.attributes` oneof names them.
METADATA, VALUES, UPDATES, MESSAGE, CUSTOM, TASK, END = "metadata", "values", "updates", "message", "custom", "task", "end"


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event: `data` is JSON-safe and shaped like the kind's proto message."""

    sequence: int
    kind: str
    data: dict[str, Any]
    time: float = field(default_factory=time.time)
    namespace: tuple[str, ...] = ()


class EventLog:
    """The events of one run, in order, with a wake-up for followers."""

    def __init__(self) -> None:
        self._events: list[RunEvent] = []
        self._changed = asyncio.Event()
        self.ended = asyncio.get_running_loop().create_future()

    def append(self, kind: str, data: dict[str, Any], namespace: tuple[str, ...] = ()) -> RunEvent:
        if self.ended.done():
            raise RuntimeError("the run has already ended")
        event = RunEvent(len(self._events) + 1, kind, data, namespace=namespace)
        self._events.append(event)
        if kind == END:
            self.ended.set_result(event)
        self._changed.set()
        self._changed = asyncio.Event()
        return event

    async def follow(self, after: int = 0, deadline: float | None = None) -> AsyncIterator[RunEvent]:
        """Yield the events numbered after `after`, then new ones, up to the end event.

        With a deadline (event-loop time), raise TimeoutError when it passes while
        waiting for the next event. The wait never spans a `yield`, so a caller
        may follow again from the last event it got.
        """
        loop = asyncio.get_running_loop()
        position = after
        while True:
            changed = self._changed
            while position < len(self._events):
                event = self._events[position]
                position += 1
                yield event
                if event.kind == END:
                    return
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                raise TimeoutError
            await asyncio.wait_for(changed.wait(), timeout)
