"""Database connections whose every call is bounded on the client.

A `statement_timeout` lives on the server. In a silent partition (a dead switch,
a firewall rule that drops packets, a proxy that keeps sockets open but forwards
nothing) the server never receives the query, and a client waiting for its
answer waits forever. psycopg's own way out of a wait (cancelling the task)
asks the server to cancel the query and waits up to 5 s for that, then up to 5 s
more for the query to end: in a partition that too answers nothing.

So every connection graphrun opens:
- connects within a bounded time (libpq's `connect_timeout`, per host of a
  multi-host DSN; libpq's minimum is 2 s);
- has TCP keepalives and `tcp_user_timeout` (`link_params`), so the kernel gives
  up on a peer that vanished (unacknowledged data, unanswered keepalives) in
  seconds instead of the system's default of many minutes;
- bounds each round trip on the client (`wait`): when the answer does not come
  within the connection's budget, the connection is closed on the spot (no
  cancel request, nothing waited for) and the caller gets `NoAnswer`, an
  OperationalError, which API callers see as UNAVAILABLE. A pool replaces the
  connection.

Each connection reports what it sees to an `Availability` (storage/availability.py):
a broken connection or a missed answer means the database is gone, an answer that
it is back.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import _WaitTimeout  # psycopg's wait(timeout=...) raises it; handled here, never leaked

from .availability import Availability

_WAIT_INTERVAL = 0.1  # psycopg's own default between checks for interrupts


class NoAnswer(psycopg.OperationalError):
    """The database did not answer within the client's budget; the connection was closed."""


def link_params(dsn: str, budget: float) -> dict[str, int]:
    """libpq parameters that bound connecting and make a vanished peer surface within about
    `budget` seconds. Values the DSN sets itself are left to it (the operator's choice wins).
    libpq ignores the TCP ones on Unix-domain sockets (the embedded PostgreSQL)."""
    seconds = max(1, math.ceil(budget))
    params = {
        "connect_timeout": max(2, seconds),  # libpq treats anything below 2 s as 2 s
        "keepalives": 1,
        "keepalives_idle": seconds,  # an idle connection is probed after this long ...
        "keepalives_interval": 1,  # ... every second ...
        "keepalives_count": 3,  # ... and dropped after 3 unanswered probes
        "tcp_user_timeout": max(1000, int(budget * 1000)),  # sent data unacknowledged this long (ms): dropped
    }
    given = conninfo_to_dict(dsn)
    return {k: v for k, v in params.items() if k not in given}


class _Bounded:
    """What the async and the sync connection classes share: the budget and the reporting."""

    budget: float | None = None  # seconds a round trip may take; None: unbounded (`bound_next` too)
    availability: Availability | None = None  # told what this connection sees
    _next_budget: float | None = None

    def bound_next(self, seconds: float) -> None:
        """Bound the next round trip only to `seconds` instead of `budget` (to what is left of a
        caller's budget); an unbounded connection stays unbounded."""
        self._next_budget = seconds

    def _take_budget(self, timeout: float | None) -> float | None:
        """The bound for this wait, or None when there is none or the caller's own timeout is as
        short (psycopg's `notifies(timeout=...)`: its expiry is no failure)."""
        next_budget, self._next_budget = self._next_budget, None
        if self.budget is None:
            return None
        budget = next_budget if next_budget is not None else self.budget
        if timeout is not None and timeout <= budget:
            return None
        return budget

    def _no_answer(self, budget: float, began: float) -> NoAnswer:
        self.pgconn.finish()  # close the socket: no cancel request, nothing more to wait for
        if self.availability is not None:
            self.availability.failed(f"no answer within {budget:g} s", began)
        return NoAnswer(f"the database did not answer within {budget:g} s; the connection was closed")

    def _failed(self, exc: psycopg.OperationalError, began: float) -> None:
        if self.closed and self.availability is not None:  # it broke (reset, closed by the server)
            self.availability.failed(type(exc).__name__, began)

    def _answered(self) -> None:
        if self.availability is not None:
            self.availability.answered()


class BoundedAsyncConnection(_Bounded, psycopg.AsyncConnection):
    """An AsyncConnection whose round trips are bounded by `budget` (see the module's notes)."""

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs):
        began = time.monotonic()
        try:
            conn = await super().connect(conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            if cls.availability is not None:
                cls.availability.failed(f"cannot connect: {type(exc).__name__}", began)
            raise
        conn._answered()
        return conn

    async def wait(self, gen, interval: float = _WAIT_INTERVAL, timeout: float | None = None):
        budget, began = self._take_budget(timeout), time.monotonic()
        try:
            result = await super().wait(gen, interval, budget if budget is not None else timeout)
        except _WaitTimeout:
            if budget is None:
                raise  # the caller's own timeout
            raise self._no_answer(budget, began) from None
        except psycopg.OperationalError as exc:
            self._failed(exc, began)
            raise
        self._answered()
        return result


class BoundedConnection(_Bounded, psycopg.Connection):
    """The same for a blocking connection (the lease keeper's thread)."""

    def wait(self, gen, interval: float = _WAIT_INTERVAL, timeout: float | None = None):
        budget, began = self._take_budget(timeout), time.monotonic()
        try:
            result = super().wait(gen, interval, budget if budget is not None else timeout)
        except _WaitTimeout:
            if budget is None:
                raise
            raise self._no_answer(budget, began) from None
        except psycopg.OperationalError as exc:
            self._failed(exc, began)
            raise
        self._answered()
        return result


def connection_class(budget: float, availability: Availability | None = None) -> type[BoundedAsyncConnection]:
    """A connection class for a pool: its connections bound each round trip by `budget` and
    report to `availability`."""
    return type("GraphrunConnection", (BoundedAsyncConnection,), {"budget": budget, "availability": availability})


@contextlib.contextmanager
def unbounded(cls: type[_Bounded]) -> Iterator[None]:
    """Lift the bound of every connection of `cls` for a while (migrations at start-up: an index
    built on a large table may take minutes, and nothing else runs meanwhile)."""
    budget = cls.budget
    cls.budget = None
    try:
        yield
    finally:
        cls.budget = budget
