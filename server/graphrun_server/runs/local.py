"""The runs executing on this replica: the one table every concern of the runner shares.

Claims and admission add a run once the database leased it here; settling removes
it. Everything else (stops, followers, the lease thread) only looks runs up.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from dataclasses import dataclass, field

from ..observability.metrics import Metrics
from .state import MOVES, ActiveRun


@dataclass
class RunnerSettings:
    owner: str = field(default_factory=lambda: f"replica-{uuid.uuid4().hex[:12]}")
    max_concurrent_runs: int = 100
    max_pending_runs: int = 10_000  # runs waiting in the database (all replicas) before RESOURCE_EXHAUSTED
    lease_seconds: float = 30.0
    max_attempts: int = 3
    event_write_interval: float = 0.005  # least time between two group writes of events (EventWriter)


class Phase(enum.Enum):
    """The replica's own life: it serves, drains (claims nothing more), then hands runs back."""

    SERVING = "serving"
    DRAINING = "draining"
    HANDING_BACK = "handing back"  # runs the database accepts from now on are handed back at once


class LocalRuns:
    def __init__(self, settings: RunnerSettings, metrics: Metrics | None = None):
        self.settings, self.metrics = settings, metrics
        self.phase = Phase.SERVING
        self.starting = 0  # runs started here whose acceptance the database has not answered yet
        self.wake = asyncio.Event()  # the claim worker looks for runnable runs now
        self._active: dict[str, ActiveRun] = {}
        self.lease_view: dict[str, ActiveRun] = {}  # an immutable snapshot, for the lease thread

    @property
    def draining(self) -> bool:
        return self.phase is not Phase.SERVING

    def get(self, run_id: str) -> ActiveRun | None:
        return self._active.get(run_id)

    def all(self) -> list[ActiveRun]:
        return list(self._active.values())

    def executing_here(self, run_id: str) -> ActiveRun | None:
        """The run's attempt executing here, unless it is leaving this replica (handed back, lost,
        outage): the database carries a stop of such a run to wherever it goes on."""
        active = self._active.get(run_id)
        return active if active is not None and active.reason not in MOVES else None

    def executing(self) -> int:
        """Runs executing here, counting those whose acceptance is on its way."""
        return len(self._active) + self.starting

    def has_room(self) -> bool:
        return self.executing() < self.settings.max_concurrent_runs

    def add(self, active: ActiveRun) -> ActiveRun | None:
        """Register the attempt; returns the earlier attempt of the run it replaces, if any."""
        older = self._active.get(active.run_id)
        self._active[active.run_id] = active
        self._changed()
        return older

    def remove(self, active: ActiveRun) -> None:
        if self._active.get(active.run_id) is active:
            if not self.has_room():
                self.wake.set()  # capacity freed: runs may be waiting for it
            del self._active[active.run_id]
            self._changed()

    def _changed(self) -> None:
        self.lease_view = dict(self._active)
        if self.metrics:
            self.metrics.executing.set(len(self._active))
