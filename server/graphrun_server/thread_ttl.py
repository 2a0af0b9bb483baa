"""Thread time-to-live: a sweep that deletes (or prunes) threads idle past their TTL.

A thread's TTL is its own (given at `ThreadService.Create`) or the server's default
(`checkpointer.ttl` in `langgraph.json`), counted from its last activity (`updated_at`: its
creation, each run's start and end, each update). Every replica runs a sweeper; a sweep takes an
advisory lock first, so one replica sweeps at a time. Each expired thread is handled under
`thread_changing`, which refuses a thread with a run in flight, and only if it is still expired
then: a thread in use is never deleted.
"""

from __future__ import annotations

import logging

from .errors import ThreadBusy, ThreadNotFound
from .periodic import Periodic, one_replica
from .project import ThreadTtl

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x6772_7474_6C00  # "grttl": the advisory lock one replica's sweep holds
DEFAULT_SWEEP_MINUTES = 5.0


class ThreadSweeper(Periodic):
    name = "graphrun-thread-ttl-sweep"

    def __init__(self, threads, records, pool, ttl: ThreadTtl | None):
        self.threads, self.records, self.pool = threads, records, pool
        self.default = (ttl.minutes, ttl.strategy) if ttl and ttl.minutes else None
        self.interval = 60 * (ttl.sweep_minutes if ttl else DEFAULT_SWEEP_MINUTES)
        self.limit = ttl.sweep_limit if ttl else 1000

    async def tick(self) -> None:
        await self.sweep()

    async def sweep(self) -> int | None:
        """Apply the TTL of every expired thread (up to the limit) unless another replica is
        sweeping: how many threads were deleted or pruned, or None when it did not sweep."""
        try:
            async with one_replica(self.pool, SWEEP_LOCK) as locked:
                if not locked:
                    return None
                done = 0
                for thread_id, strategy in await self.records.expired_threads(self.default, self.limit):
                    done += await self._expire(thread_id, strategy)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("thread TTL sweep failed: %s", type(exc).__name__)
            return None
        if done:
            log.info("thread TTL sweep: %d threads expired", done)
        return done

    async def _expire(self, thread_id: str, strategy: str) -> int:
        try:
            async with self.records.thread_changing(thread_id):  # refuses a thread with a run in flight
                if not await self.records.still_expired(thread_id, self.default):
                    return 0
                if strategy == "delete":
                    await self.records.forget_thread(thread_id)  # thread, runs, events, checkpoints: one transaction
                else:
                    await self.threads.checkpointer.aprune([thread_id], strategy="keep_latest")
                    await self.records.touch_thread(thread_id)
                return 1
        except (ThreadBusy, ThreadNotFound):  # a run started, or it went, meanwhile
            return 0
        except NotImplementedError:  # LangGraph keeps threads with delta channels whole
            log.info("thread %s expired but cannot be pruned to its latest checkpoint", thread_id)
            await self.records.touch_thread(thread_id)
            return 0
