"""Group commit of run events: one statement and one commit for what every run executing here
appended since the last write.

Why: followers see an event only once it is stored (events.py), so a streaming run stores
its events as they come. Stored run by run, a token stream made one transaction (and one WAL
flush) per one or two events: 13,700 commits for 20,000 tokens, half of PostgreSQL's and a
quarter of the server's CPU. Here the runs' flushers hand their batches to one writer, which
stores whatever is waiting in one fenced statement (`Records.append_event_groups`).

`min_interval` is the least time between the starts of two writes. A write after a quiet
spell goes at once (the first token of an answer is not held back); while events keep
coming, each write waits out the rest of the interval and takes everything that came
meanwhile, so a busy replica makes at most 1/min_interval event commits a second, however many
runs stream.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..events import RunEvent
from .records import Records

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    attempt: int
    events: list[RunEvent]
    done: asyncio.Future[bool]


class EventWriter:
    def __init__(self, records: Records, min_interval: float):
        self.records, self.min_interval = records, min_interval
        self._pending: dict[str, _Pending] = {}
        self._queued = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def append(self, run_id: str, attempt: int, events: list[RunEvent]) -> bool:
        """Store a run's events with the next write. False if the run is no longer this attempt's
        (fenced, as `Records.append_events`); raises what the write raised.

        A run's flusher has one batch waiting at a time. Two attempts of one run may both have
        one here (this replica took its own run over): the newer attempt's is written, the older
        gets False, as the database would answer it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_forever(), name="event-writer")
        previous = self._pending.get(run_id)
        if previous is not None and not previous.done.done():
            if previous.attempt > attempt:
                return False
            previous.done.set_result(False)
        done = asyncio.get_running_loop().create_future()
        self._pending[run_id] = _Pending(attempt, events, done)
        self._queued.set()
        return await done

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for pending in self._pending.values():
            pending.done.cancel()
        self._pending.clear()

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        last_start = float("-inf")
        while True:
            await self._queued.wait()
            rest = self.min_interval - (loop.time() - last_start)
            if rest > 0:  # events keep coming: let more gather for this write
                await asyncio.sleep(rest)
            self._queued.clear()
            batch, self._pending = self._pending, {}
            batch = {run_id: p for run_id, p in batch.items() if not p.done.done()}  # callers gone
            if not batch:
                continue
            last_start = loop.time()
            try:
                owned = await self.records.append_event_groups(
                    {run_id: (p.attempt, p.events) for run_id, p in batch.items()}
                )
            except BaseException as exc:  # each run's flusher retries its own batch (a flusher
                for p in batch.values():  # left waiting would hold its run's end forever)
                    if p.done.done():
                        continue
                    if isinstance(exc, Exception):
                        p.done.set_exception(exc)
                    else:
                        p.done.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for run_id, p in batch.items():
                if not p.done.done():
                    p.done.set_result(run_id in owned)
