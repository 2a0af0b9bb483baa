"""Background work that repeats on every replica: the Store's and the threads' TTL sweeps, the
webhook sender, the cron scheduler. `Periodic` owns the task; `one_replica` lets a round run on
one replica at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Periodic:
    """Calls `tick()` every `interval` seconds, from `start()` until `stop()`; sooner when `tick`
    asks for it (it returns the seconds until the next round) or someone calls `wake()`."""

    name = "graphrun-periodic"
    interval: float = 60.0
    _task: asyncio.Task | None = None
    _woken: asyncio.Event | None = None

    def start(self):
        self._woken = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    def wake(self) -> None:
        """Run a round now instead of at its time (from the event loop's thread)."""
        if self._woken is not None:
            self._woken.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._woken is not None
        delay = self.interval
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancel (stop()) that
            # comes as the wait ends, and the task would go on forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._woken.wait()
            self._woken.clear()  # before the round: a wake-up during it brings another at once
            after = await self.tick()
            delay = self.interval if after is None else max(0.0, min(after, self.interval))

    async def tick(self) -> float | None:
        """One round; returns how soon the next one is wanted (None: after `interval`, which also caps it)."""
        raise NotImplementedError


@contextlib.asynccontextmanager
async def one_replica(pool, lock: int) -> AsyncIterator[bool]:
    """Hold advisory `lock` on a pooled connection for the block (True), or skip it (False) when
    another replica holds it: `pg_try_advisory_lock` never waits. A connection that cannot
    release it is closed (which releases it), so the pool keeps none holding it."""
    async with pool.connection() as conn:
        locked = (await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (lock,))).fetchone())["ok"]
        try:
            yield locked
        finally:
            if locked:
                try:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))
                except BaseException:
                    await conn.close()
                    raise
