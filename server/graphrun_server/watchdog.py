"""Catches a run that blocks the event loop, so that run alone ends as an error.

Every run of a replica shares one event loop; a node that calls blocking code
(time.sleep, a synchronous HTTP client, heavy CPU work) from `async def`
stalls them all. Python cannot preempt it, but it can tell who it was: a
thread watches a heartbeat the loop keeps; when the beat stops for longer than
the limit, it notes the task the loop is running, and a task factory has
recorded which run each task belongs to. Once the loop runs again the runner
stops that run (status ERROR, `EventLoopBlocked`), and the others carry on.
Their leases were never at risk: they are renewed from a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

# The run a task works for; the runner sets it in the context of each run's tasks.
current_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("graphrun_current_run", default=None)


class LoopWatchdog:
    """Reports `on_block(run_id, seconds)` on the loop after a run's task held it longer than `limit`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: float, on_block: Callable[[str, float], None]):
        self._loop, self._limit, self._on_block = loop, limit, on_block
        self._interval = max(limit / 4, 0.02)
        self._tasks: weakref.WeakKeyDictionary[asyncio.Task, str] = weakref.WeakKeyDictionary()
        self._inner_factory = loop.get_task_factory()
        self._beat = time.monotonic()
        self._culprit: str | None = None  # the run whose task held the loop (set by the thread)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="graphrun-loop-watchdog", daemon=True)
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._loop.set_task_factory(self._task_factory)
        self._heartbeat()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._timer:
            self._timer.cancel()
        if self._loop.get_task_factory() == self._task_factory:
            self._loop.set_task_factory(self._inner_factory)

    def _task_factory(self, loop, coro, **kwargs):
        factory = self._inner_factory
        task = factory(loop, coro, **kwargs) if factory else asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        run_id = context.get(current_run) if context is not None else current_run.get()
        if run_id is not None:
            self._tasks[task] = run_id
        return task

    def _heartbeat(self) -> None:
        now = time.monotonic()
        stalled, self._beat = now - self._beat, now
        culprit, self._culprit = self._culprit, None
        if culprit is not None and stalled > self._limit:
            self._on_block(culprit, stalled)
        self._timer = self._loop.call_later(self._interval, self._heartbeat)

    def _watch(self) -> None:
        while not self._stopping.wait(self._interval):
            if time.monotonic() - self._beat > self._limit and self._culprit is None:
                task = asyncio.current_task(self._loop)  # a dict lookup: safe from another thread
                run_id = self._tasks.get(task) if task is not None else None
                if run_id is not None:
                    self._culprit = run_id
