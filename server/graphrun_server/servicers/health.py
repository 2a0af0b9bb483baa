"""grpc.health.v1.Health that reports SERVING only while calls that need the database would succeed."""

from __future__ import annotations

import asyncio
import time

from grpc_health.v1 import health, health_pb2

from ..storage.availability import Availability
from ..storage.database import Pool, Prober

# Services whose health follows the database ("" is the server as a whole).
SERVICES = ("", "graphrun.v1.RunService", "graphrun.v1.ThreadService", "graphrun.v1.AssistantService")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DatabaseHealth(health.aio.HealthServicer):
    """Each Check asks the database (at most once per `min_interval` seconds; concurrent Checks
    share one question), and answers within `budget` seconds whatever the database does:

    - the database itself, on a connection of its own (see `Prober`: a pool whose connections
      are all busy is busy, not unhealthy);
    - and, while the pool has found the database gone (`Availability`), the pool too: one
      connection and a trivial query. That asks the pool to reconnect at once (psycopg_pool
      starts an attempt for a caller waiting for a connection), and SERVING comes back only
      once the pool itself was answered: never while calls would still fail.

    A call that finds the database gone turns health NOT_SERVING at once; a background loop
    keeps Watch subscribers current meanwhile (asking every `watch_interval` seconds, every
    `min_interval` while NOT_SERVING, so that SERVING comes back soon after the database).
    """

    def __init__(
        self,
        dsn: str,
        pool: Pool,
        availability: Availability,
        *,
        budget: float = 1.0,
        min_interval: float = 1.0,
        watch_interval: float = 2.0,
    ):
        super().__init__()
        self._prober = Prober(dsn, budget)
        self._pool, self._availability, self._budget = pool, availability, budget
        self._min_interval = min_interval
        self._watch_interval = watch_interval
        self._checked_at = 0.0
        self._serving = False
        self._draining = False
        self._task: asyncio.Task | None = None
        self._refreshing: asyncio.Future | None = None
        self._pushes: set[asyncio.Task] = set()
        availability.watch(self._on_availability)

    async def refresh(self) -> None:
        """Ask again (joining a question already on its way)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        began = time.monotonic()
        deadline = began + self._budget
        ok = not self._draining and await self._prober.ping()
        if ok and not self._availability.up:
            ok = await self._pool_answers(deadline - time.monotonic())
        elif not ok and not self._draining:
            self._availability.failed("health check: no answer", began)
        self._checked_at = time.monotonic()
        await self._publish(SERVING if ok else NOT_SERVING)

    async def _pool_answers(self, budget: float) -> bool:
        """Whether a pooled connection answers within `budget` (it reports to Availability itself)."""
        if budget <= 0:
            return False
        deadline = time.monotonic() + budget
        try:
            async with self._pool.connection(timeout=budget) as conn:
                conn.bound_next(max(deadline - time.monotonic(), 0.001))
                await conn.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - PoolTimeout, NoAnswer, a broken connection: not yet
            return False

    async def _publish(self, status) -> None:
        self._serving = status == SERVING
        for service in SERVICES:
            await self.set(service, status)

    def _on_availability(self, up: bool) -> None:
        """NOT_SERVING the moment a call finds the database gone; ask again when it is back."""
        if self._draining:
            return
        task = asyncio.get_running_loop().create_task(self.refresh() if up else self._publish(NOT_SERVING))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def Check(self, request, context):
        if time.monotonic() - self._checked_at >= self._min_interval:
            await self.refresh()
        return await super().Check(request, context)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self._watch_interval if self._serving else self._min_interval)
            await self.refresh()

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._watch_loop(), name="health-watch")

    async def drain(self) -> None:
        """Report NOT_SERVING from now on (shutdown)."""
        self._draining = True
        if self._task:
            self._task.cancel()
        await self.enter_graceful_shutdown()
        await self._prober.close()
