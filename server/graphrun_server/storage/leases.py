"""Lease renewal on its own thread and connection.

A running run's lease is renewed every `lease/3` seconds. The renewal runs on
a separate OS thread with its own connection so that it keeps beating while
a node blocks the event loop. Each renewal also stores every run's current
node and step (execution metadata at no extra round trip) and brings back
cancel requests, in case a NOTIFY was missed. A run whose renewal does not come
back (another replica took it over, or it ended elsewhere) is reported lost;
so are all runs when no renewal has succeeded for two thirds of the lease, before
another replica may claim them. Renewals commit asynchronously: a renewal lost
in a database crash only makes a takeover come sooner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

RENEW_SQL = """
UPDATE graphrun_run r
   SET lease_expires_at = now() + make_interval(secs => %(lease)s), updated_at = now(),
       current_node = coalesce(v.node, r.current_node), step = coalesce(v.step, r.step)
  FROM unnest(%(ids)s::uuid[], %(attempts)s::int[], %(nodes)s::text[], %(steps)s::int[]) AS v(run_id, attempt, node, step)
 WHERE r.run_id = v.run_id AND r.attempt = v.attempt AND r.status = 'running' AND r.lease_owner = %(owner)s
RETURNING r.run_id::text AS run_id, r.cancel_action
"""


class LeaseKeeper(threading.Thread):
    """Renews the leases of `runs()` and reports back through `report(lost, cancels)`: the runs
    whose lease was lost (run id -> attempt) and the cancels asked of runs it kept."""

    def __init__(self, dsn: str, owner: str, lease_seconds: float,
                 runs: Callable[[], dict[str, tuple[int, str | None, int | None]]],
                 report: Callable[[dict[str, int], dict[str, str]], None]):
        super().__init__(name="graphrun-leases", daemon=True)
        self._dsn, self._owner, self._lease = dsn, owner, lease_seconds
        self._runs, self._report = runs, report
        self._stopping = threading.Event()
        self._last_ok = time.monotonic()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        conn = None
        while not self._stopping.wait(self._lease / 3):
            runs = self._runs()
            try:
                if conn is None or conn.closed:
                    # Bounded waits everywhere: a renewal that hangs must not outlive the lease.
                    wait_ms = int(self._lease * 1000 / 3)
                    conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=max(1, int(self._lease / 3)),
                                           options=f"-c statement_timeout={wait_ms} -c synchronous_commit=off",
                                           keepalives=1, keepalives_idle=max(1, int(self._lease / 3)),
                                           keepalives_interval=1, keepalives_count=2)
                if not runs:
                    conn.execute("SELECT 1")
                    self._last_ok = time.monotonic()
                    continue
                ids = list(runs)
                rows = conn.execute(RENEW_SQL, {
                    "lease": self._lease, "owner": self._owner, "ids": ids,
                    "attempts": [runs[i][0] for i in ids], "nodes": [runs[i][1] for i in ids],
                    "steps": [runs[i][2] for i in ids]}).fetchall()
                self._last_ok = time.monotonic()
                kept = {r[0] for r in rows}
                self._report({i: runs[i][0] for i in ids if i not in kept}, {r[0]: r[1] for r in rows if r[1]})
            except Exception as exc:
                log.warning("lease renewal failed: %s", type(exc).__name__)
                if conn is not None:
                    conn.close()
                    conn = None
                if time.monotonic() - self._last_ok > self._lease * 2 / 3:
                    # Our leases lapse soon and another replica may take over: stop first.
                    self._report({i: attempt for i, (attempt, _, _) in runs.items()}, {})
        if conn is not None:
            conn.close()
