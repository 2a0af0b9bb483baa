"""Leases: renewed on a thread of their own, given up on the replica's own clock.

A running run's lease is renewed every `lease/3` seconds, from an OS thread with
its own connection, so that it keeps beating while a node blocks the event loop.
Each renewal also stores every run's current node and step (execution metadata
at no extra round trip) and brings back cancel requests, in case a NOTIFY was
missed. Renewals commit asynchronously: a renewal lost in a database crash only
makes a takeover come sooner.

Two threads, so that giving up never waits for the database:
- the renewer does the I/O; every call of it is bounded (storage/bounded.py: a
  round trip gets `lease/3`, connecting libpq's `connect_timeout`);
- the clock does none. A run's lease was last *confirmed* when the renewal (or
  the claim) that set it was sent, if it came back: the database set the expiry
  no earlier than that. Once `GIVE_UP` of a lease has passed since, on this
  replica's monotonic clock, the run is reported lost, whether or not a renewal
  is still waiting for its answer, and it is not renewed any more. The runner
  cancels its task. Why that comes before another replica can take the run over
  (the inequality and its margin) is written down in docs/leases.md.

A run whose renewal comes back without it (another replica took it over, or it
ended elsewhere) is reported lost too; so is one that ended here while the renewal was on
its way, which the runner, recording that end, does not take for a loss (runs/stopping.py).
Each run attempt is reported once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .bounded import BoundedConnection, link_params

log = logging.getLogger(__name__)

GIVE_UP = 2 / 3  # of a lease, since its last confirmed renewal: the run stops here
NUDGE_GAP = 0.5  # seconds: renewals asked for by `nudge` come at most this often

RENEW_SQL = """
UPDATE graphrun_run r
   SET lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now(),
       current_node = coalesce(v.node, r.current_node), step = coalesce(v.step, r.step)
  FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], %(nodes)s::text[], %(steps)s::int[])
       AS v(run_id, attempt, node, step)
 WHERE r.run_id = v.run_id AND r.attempt = v.attempt AND r.status = 'running' AND r.lease_owner = %(owner)s
RETURNING r.run_id::text AS run_id, r.cancel_action
"""

# run id -> (attempt, current node, step, leased_at): leased_at is the monotonic time at which the
# claim (or acceptance) that leased the run here was sent, or earlier.
RunsView = Callable[[], dict[str, tuple[int, str | None, int | None, float]]]


class LeaseKeeper:
    """Renews the leases of `runs()` and reports back through `report(lost, cancels)`: the runs
    whose lease was lost or given up (run id -> attempt) and the cancels asked of runs it kept."""

    def __init__(
        self,
        dsn: str,
        owner: str,
        lease_seconds: float,
        runs: RunsView,
        report: Callable[[dict[str, int], dict[str, str]], None],
    ):
        self._dsn, self._owner, self._lease = dsn, owner, lease_seconds
        self._runs, self._report = runs, report
        self._give_up_after = lease_seconds * GIVE_UP
        self._tick = min(self._give_up_after / 20, 0.25)  # the clock's resolution
        self._stopping = threading.Event()
        self._wake = threading.Event()  # stop, or a nudge: the renewer looks now
        self._lock = threading.Lock()
        self._confirmed: dict[tuple[str, int], float] = {}  # (run, attempt) -> send time of its last renewal
        self._given_up: set[tuple[str, int]] = set()  # reported: not renewed, not reported again
        self._failing_since: float | None = None
        self._threads = [
            threading.Thread(target=self._renew_loop, name="graphrun-leases", daemon=True),
            threading.Thread(target=self._clock, name="graphrun-lease-clock", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def nudge(self) -> None:
        """A run began its first node: renew soon (within NUDGE_GAP), not at the next beat, so that
        `RunService.Get` shows its current node and step from its first step. Nudges coalesce:
        one renewal stores every run's progress."""
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # -- the clock ------------------------------------------------------------------------

    def _clock(self) -> None:
        while not self._stopping.wait(self._tick):
            expired = self._expired(time.monotonic())
            if expired:
                self._report(expired, {})

    def _expired(self, now: float) -> dict[str, int]:
        """The runs whose give-up point has passed (newly: each is reported once)."""
        runs = self._runs()
        expired = {}
        with self._lock:
            for run_id, (attempt, _node, _step, leased_at) in runs.items():
                key = (run_id, attempt)
                if (
                    key not in self._given_up
                    and now - max(leased_at, self._confirmed.get(key, leased_at)) >= self._give_up_after
                ):
                    self._given_up.add(key)
                    expired[run_id] = attempt
            current = {(run_id, v[0]) for run_id, v in runs.items()}
            self._given_up &= current  # forget runs that left this replica
            for key in self._confirmed.keys() - current:
                del self._confirmed[key]
        return expired

    # -- the renewer ----------------------------------------------------------------------

    def _renew_loop(self) -> None:
        conn = None
        interval = self._lease / 3
        due = time.monotonic() + interval
        last = float("-inf")
        while True:
            self._wake.wait(max(due - time.monotonic(), 0))
            if self._wake.is_set() and not self._stopping.is_set():  # nudged: soon, not more than so often
                self._wake.clear()
                self._stopping.wait(max(last + NUDGE_GAP - time.monotonic(), 0))
            if self._stopping.is_set():
                break
            sent = last = time.monotonic()
            due = sent + interval  # a steady beat, however long the last renewal took
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                self._renew(conn, sent)
            except Exception as exc:  # noqa: BLE001 - counted by _failed; the next renewal reconnects
                self._failed(exc)
                if conn is not None:
                    conn.close()
                    conn = None
            else:
                self._recovered()
        if conn is not None:
            conn.close()

    def _connect(self) -> BoundedConnection:
        conn = BoundedConnection.connect(self._dsn, autocommit=True, **link_params(self._dsn, self._lease / 3))
        conn.budget = self._lease / 3  # an answer later than that would be the next renewal's anyway
        # The server gives up on a stuck renewal too; renewals need not wait for a flush to disk.
        conn.execute(f"SET statement_timeout = {int(self._lease * 1000 / 3)}; SET synchronous_commit = off")
        return conn

    def _renew(self, conn: BoundedConnection, sent: float) -> None:
        with self._lock:
            runs = {i: v for i, v in self._runs().items() if (i, v[0]) not in self._given_up}
        if not runs:
            conn.execute("SELECT 1")  # keeps the connection known to work
            return
        ids = list(runs)
        rows = conn.execute(
            RENEW_SQL,
            {
                "lease": self._lease,
                "owner": self._owner,
                "ids": ids,
                "attempts": [runs[i][0] for i in ids],
                "nodes": [runs[i][1] for i in ids],
                "steps": [runs[i][2] for i in ids],
            },
        ).fetchall()
        kept = {r[0] for r in rows}
        lost = {}
        with self._lock:
            for run_id in ids:
                key = (run_id, runs[run_id][0])
                if run_id in kept:
                    self._confirmed[key] = sent
                elif key not in self._given_up:
                    self._given_up.add(key)
                    lost[run_id] = key[1]
        cancels = {r[0]: r[1] for r in rows if r[1]}
        if lost or cancels:
            self._report(lost, cancels)

    def _failed(self, exc: Exception) -> None:
        """One line when renewals start failing, not one per attempt."""
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "lease renewal failed (%s); runs not renewed for %.0f%% of a lease (%.1f s) stop here",
                type(exc).__name__,
                GIVE_UP * 100,
                self._give_up_after,
            )

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info("lease renewal works again after %.1f s", time.monotonic() - self._failing_since)
            self._failing_since = None
