"""grpc.health.v1.Health that reports SERVING only while the database answers."""

from __future__ import annotations

import asyncio
import time

from grpc_health.v1 import health, health_pb2

from ..storage.database import Prober

# Services whose health follows the database ("" is the server as a whole).
SERVICES = ("", "graphrun.v1.RunService", "graphrun.v1.ThreadService", "graphrun.v1.AssistantService")


class DatabaseHealth(health.aio.HealthServicer):
    """Each Check pings the database (at most once per `min_interval` seconds), on a connection
    of its own (see `Prober`); a background loop keeps Watch subscribers current."""

    def __init__(self, dsn: str, *, min_interval: float = 1.0, watch_interval: float = 5.0):
        super().__init__()
        self._prober = Prober(dsn, timeout=1.0)
        self._min_interval = min_interval
        self._watch_interval = watch_interval
        self._checked_at = 0.0
        self._draining = False
        self._task: asyncio.Task | None = None

    async def refresh(self) -> None:
        ok = not self._draining and await self._prober.ping()
        self._checked_at = time.monotonic()
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in SERVICES:
            await self.set(service, status)

    async def Check(self, request, context):
        if time.monotonic() - self._checked_at >= self._min_interval:
            await self.refresh()
        return await super().Check(request, context)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self._watch_interval)
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
