"""Group commit of run events: one statement and one commit for what every run executing here
appended since the last write.

Why: followers see an event only once it is stored (events.py), so a streaming run stores
its events as they come. Stored run by run, a token stream made one transaction (and one WAL
flush) per one or two events: 13,700 commits for 20,000 tokens, half of PostgreSQL's and a
quarter of the server's CPU. Here one writer stores what every run appended since its last
write in one fenced statement (`Records.append_event_groups`).

The writer takes the events itself: a run's log tells it that events came (`mark`), and each
write reads what every marked run has not stored yet. A task per run handing batches over cost
a wake-up of that task per run and write, a tenth of a replica streaming for a hundred runs.

`min_interval` is the least time between the starts of two writes. A write after a quiet
spell goes at once (the first token of an answer is not held back); while events keep
coming, each write waits out the rest of the interval and takes everything that came
meanwhile, so a busy replica makes at most 1/min_interval event commits a second, however many
runs stream. While the database fails the writes, they are retried with a growing pause (up to
2 s), each with whatever the runs appended meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Protocol

from ..events import RunEvent
from .records import Records

log = logging.getLogger(__name__)

_RETRY_FIRST, _RETRY_MOST = 0.05, 2.0


class EventSource(Protocol):
    """One execution attempt of a run whose events the writer stores (runs/state.py's ActiveRun)."""

    @property
    def run_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    def unstored(self) -> list[RunEvent]:
        """Its events not stored yet, in order."""

    def events_stored(self, sequence: int) -> None:
        """Its events up to `sequence` are stored."""

    def fenced_off(self) -> None:
        """The write found the run owned by another attempt: nothing of it was stored."""


class EventWriter:
    def __init__(self, records: Records, min_interval: float):
        self.records, self.min_interval = records, min_interval
        self._sources: dict[str, EventSource] = {}  # attached, by run id: one attempt each
        self._marked: dict[str, EventSource] = {}  # those with events to store
        self._writing: dict[str, EventSource] = {}  # those in the write in flight
        self._written: asyncio.Future[None] | None = None  # done when the write in flight is
        self._queued = asyncio.Event()
        self._task: asyncio.Task | None = None

    def attach(self, source: EventSource) -> None:
        """Store `source`'s events from now on (the events it has already included). A newer
        attempt of the same run takes the older one's place."""
        if self._task is None or self._task.done():  # in a context of its own, not the first run's
            self._task = asyncio.create_task(self._write_forever(), name="event-writer", context=contextvars.Context())
        self._sources[source.run_id] = source
        self._marked.pop(source.run_id, None)
        if source.unstored():
            self.mark(source)

    def mark(self, source: EventSource) -> None:
        """`source` has new events: they go with the next write (nothing if it is not attached)."""
        if self._sources.get(source.run_id) is source:
            self._marked[source.run_id] = source
            self._queued.set()

    async def detach(self, run_id: str, attempt: int) -> None:
        """Store nothing more of this attempt's events; return once no write of them is in flight
        (what that write stored, the attempt has learnt by then)."""
        source = self._sources.get(run_id)
        if source is not None and source.attempt == attempt:
            del self._sources[run_id]
            self._marked.pop(run_id, None)
        # Even an attempt a newer one replaced here may still have a write out.
        while (writing := self._writing.get(run_id)) is not None and writing.attempt == attempt and self._written:
            await asyncio.shield(self._written)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._sources.clear()
        self._marked.clear()

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        last_start, pause = float("-inf"), 0.0
        while True:
            await self._queued.wait()
            rest = max(self.min_interval, pause) - (loop.time() - last_start)
            if rest > 0:  # events keep coming (or the database failed the last write): let more gather
                await asyncio.sleep(rest)
            self._queued.clear()
            marked, self._marked = self._marked, {}
            groups = {run_id: (s, events) for run_id, s in marked.items() if (events := s.unstored())}
            if not groups:
                continue
            last_start = loop.time()
            self._writing = {run_id: s for run_id, (s, _) in groups.items()}
            self._written = loop.create_future()
            try:
                owned = await self.records.append_event_groups(
                    {run_id: (s.attempt, events) for run_id, (s, events) in groups.items()}
                )
            except Exception as exc:  # noqa: BLE001 - the runs' events stay in their logs: retried
                if not pause:
                    log.warning("storing events of %d runs failed (%s); will retry", len(groups), type(exc).__name__)
                pause = min(pause * 2, _RETRY_MOST) if pause else _RETRY_FIRST
                for run_id, (s, _) in groups.items():
                    if self._sources.get(run_id) is s:
                        self._marked.setdefault(run_id, s)
                self._queued.set()
            else:
                pause = 0.0
                for run_id, (s, events) in groups.items():
                    if run_id in owned:
                        s.events_stored(events[-1].sequence)
                        continue
                    if self._sources.get(run_id) is s:  # nothing more of it is written: it stops
                        del self._sources[run_id]
                        self._marked.pop(run_id, None)
                    s.fenced_off()
            finally:
                self._writing = {}
                self._written.set_result(None)
