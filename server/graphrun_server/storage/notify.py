"""LISTEN/NOTIFY: how replicas wake each other without polling.

Channels (payload: a run id, or empty):
- `graphrun_run`: a run became runnable (queued, released, or its thread freed).
- `graphrun_event`: a run stored new events (followers on other replicas fetch them).
- `graphrun_cancel`: a running run was asked to stop.

One dedicated connection per replica listens; after a reconnect every
subscriber is called with payload None, since notifications may have been missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

CHANNELS = ("graphrun_run", "graphrun_event", "graphrun_cancel")


class Notifications:
    def __init__(self, dsn: str):
        self._dsn = dsn
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
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")
                    self.connected.set()
                    backoff = 0.1
                    for channel in CHANNELS:  # whatever happened while not listening
                        self._dispatch(channel, None)
                    async for note in conn.notifies():
                        self._dispatch(note.channel, note.payload or "")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("notification listener lost its connection (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
