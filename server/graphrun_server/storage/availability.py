"""Whether the database serves this replica's pool right now: the one place that knows it.

The pool's connections report here (storage/bounded.py): a connection that broke,
a round trip that got no answer in time or a connection that could not be made
means the database is gone; any answer that it is back. Health reports
NOT_SERVING while it is gone, and SERVING again only once the pool itself has been
answered (servicers/health.py). Each change is logged once: one line when the
database goes, one when it is back, however many calls failed in between.

A failure is evidence only if its attempt began after the last answer: a
connection attempt or a round trip that was already waiting when another
connection got an answer (one caught by a partition that has healed since)
says nothing about the database now.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable

log = logging.getLogger("graphrun.database")


class Availability:
    def __init__(self) -> None:
        self.up = True
        self._since = self._answered_at = time.monotonic()
        self._watchers: list[Callable[[bool], None]] = []

    def watch(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(up)` on every change (on the thread that saw it: the event loop's)."""
        self._watchers.append(callback)

    def failed(self, why: str, began: float) -> None:
        """An attempt begun at `began` (monotonic) failed."""
        if self.up and began >= self._answered_at:
            self._change(False)
            _log(logging.WARNING, "database gone (%s): calls that need it fail UNAVAILABLE until it answers again", why)

    def answered(self) -> None:
        self._answered_at = time.monotonic()
        if not self.up:
            down_for = self._change(True)
            _log(logging.INFO, "database back after %.1f s", down_for)

    def _change(self, up: bool) -> float:
        now = time.monotonic()
        lasted, self._since, self.up = now - self._since, now, up
        for callback in self._watchers:
            try:
                callback(up)
            except Exception:
                log.exception("database availability watcher failed")
        return lasted


def _log(level: int, message: str, *args) -> None:
    """Log outside any run's context: whichever call noticed the change, it is not about that run."""
    contextvars.Context().run(log.log, level, message, *args)
