"""Background work that repeats on every replica: the Store's and the threads' TTL sweeps, the
webhook sender. `Periodic` owns the task; `one_replica` lets a round run on one replica at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Periodic:
    """Calls `tick()` every `interval` seconds, from `start()` until `stop()`."""

    name = "graphrun-periodic"
    interval: float = 60.0
    _task: asyncio.Task | None = None

    def start(self):
        self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()

    async def tick(self) -> None:
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
