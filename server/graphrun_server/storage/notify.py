"""LISTEN/NOTIFY: how replicas wake each other without polling.

Channels (payload: a run id, or empty):
- `graphrun_run`: a run became runnable (queued, released, or its thread freed).
- `graphrun_event`: a run stored new events (followers on other replicas fetch them).
- `graphrun_cancel`: a running run was asked to stop.

One dedicated connection per replica listens; after a reconnect every
subscriber is called with payload None, since notifications may have been missed.
A connection that only listens sends nothing, so a silent partition would leave
it waiting forever: every `budget` seconds it asks the server a trivial
question, bounded like every call (storage/bounded.py), and reconnects when
there is no answer. Reconnecting retries at least once a second
(after a failover the listener is back as soon as the new primary takes
connections); losing and regaining the connection are logged once each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from .bounded import BoundedAsyncConnection, link_params

log = logging.getLogger(__name__)

CHANNELS = ("graphrun_run", "graphrun_event", "graphrun_cancel")


class Notifications:
    def __init__(self, dsn: str, budget: float = 5.0):
        self._dsn, self._budget = dsn, budget
        self._subscribers: dict[str, list[Callable[[str | None], None]]] = defaultdict(list)
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, callback: Callable[[str | None], None]) -> None:
        self._subscribers[channel].append(callback)

    def _dispatch(self, channel: str, payload: str | None) -> None:
        for callback in self._subscribers.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("notification handler for %s failed", channel)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="graphrun-notifications")
        await asyncio.wait_for(self.connected.wait(), timeout=30)

    async def _listen(self) -> None:
        backoff, lost_at = 0.1, None
        while True:
            try:
                async with await self._connect() as conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")
                    self.connected.set()
                    backoff = 0.1
                    if lost_at is not None:
                        log.info("notification listener reconnected after %.1f s", time.monotonic() - lost_at)
                        lost_at = None
                    for channel in CHANNELS:  # whatever happened while not listening
                        self._dispatch(channel, None)
                    while True:
                        async for note in conn.notifies(timeout=self._budget):
                            self._dispatch(note.channel, note.payload or "")
                        await conn.execute("SELECT 1")  # a quiet while: is anyone still there?
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect
                self.connected.clear()
                if lost_at is None:
                    lost_at = time.monotonic()
                    log.warning("notification listener lost its connection (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _connect(self) -> BoundedAsyncConnection:
        conn = await BoundedAsyncConnection.connect(self._dsn, autocommit=True, **link_params(self._dsn, self._budget))
        conn.budget = self._budget
        return conn

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: what ended the listener no longer matters
                pass
