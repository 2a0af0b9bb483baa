"""Claims and leases: which runs execute here, and the lease that says they still may.

Why a worker and a lease thread: any replica may execute any runnable run, so each claims
runs (FOR UPDATE SKIP LOCKED) while it has room, woken by NOTIFY graphrun_run or the sweep that
also notices expired leases; the LeaseKeeper thread renews the leases of the runs registered
here (storage/leases.py), so they keep beating while a node blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from opentelemetry import trace

from .. import events as ev, watchdog
from ..observability.logs import in_run_context
from ..storage.leases import LeaseKeeper
from ..storage.records import Claim, Records
from .execution import Execution
from .fanout import Fanout
from .local import LocalRuns
from .request import RunRequest
from .state import ActiveRun, RunState, StopReason, log


class Claims:
    def __init__(
        self, local: LocalRuns, records: Records, execution: Execution, fanout: Fanout, tracer: trace.Tracer, dsn: str
    ):
        self.local, self.records, self.execution, self.fanout, self.tracer = local, records, execution, fanout, tracer
        self._dsn = dsn
        self._worker: asyncio.Task | None = None
        self._leases: LeaseKeeper | None = None

    def start(self, report: Callable[[dict[str, int], dict[str, str]], None]) -> None:
        """Keep the leases of the runs registered here (`report`: runs lost, cancels asked), and claim runs."""
        loop = asyncio.get_running_loop()
        settings = self.local.settings
        self._leases = LeaseKeeper(
            self._dsn,
            settings.owner,
            settings.lease_seconds,
            runs=lambda: {
                a.run_id: (a.attempt, a.current_node, a.step, a.leased_at) for a in self.local.lease_view.values()
            },
            report=lambda lost, cancels: loop.call_soon_threadsafe(report, lost, cancels),
        )
        self._leases.start()
        self._worker = asyncio.create_task(self._work(), name="graphrun-worker")

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._leases:
            self._leases.stop()
            await asyncio.to_thread(self._leases.join, 5)

    def nudge(self) -> None:
        """A run began its first node: renew (and store where it is) soon, not at the next beat."""
        if self._leases is not None:
            self._leases.nudge()

    async def _work(self) -> None:
        """Claim runnable runs while there is capacity; sleep until NOTIFY or the lease sweep."""
        sweep = min(self.local.settings.lease_seconds / 2, 5.0)
        failing = False  # one line when claiming starts failing, not one per sweep
        while not self.local.draining:
            self.local.wake.clear()
            while not self.local.draining and self.local.has_room():
                try:
                    claim = await self.records.claim(self.local.settings.owner, self.local.settings.lease_seconds)
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.log(
                        logging.DEBUG if failing else logging.WARNING, "claiming runs failed: %s", type(exc).__name__
                    )
                    failing = True
                    break
                failing = False
                if claim is None:
                    break
                try:
                    self.launch(claim)
                except Exception:  # noqa: BLE001 - one run that cannot start must not stop this replica claiming
                    log.exception("run %s could not start here; it is retried once its lease lapses", claim.run.run_id)
            try:
                await asyncio.wait_for(self.local.wake.wait(), sweep)
            except TimeoutError:
                pass

    def launch(self, claim: Claim) -> ActiveRun:
        active = self.prepare(claim)
        try:
            self.register(active)
        except BaseException:
            active.task.cancel()  # not registered: it would run with no lease kept
            active.transition(RunState.DONE)
            raise
        return active

    def prepare(self, claim: Claim, admitted: asyncio.Future | None = None) -> ActiveRun:
        """Start the run's task (which waits for `admitted`, if given, before touching the thread)."""
        run = claim.run
        active = ActiveRun(run, RunRequest.from_json(run.spec), ev.EventLog(after=claim.last_sequence))
        active.stored = claim.last_sequence
        active.leased_at = claim.requested_at  # its lease's age counts from here (storage/leases.py)
        active.admission = admitted  # cleared once the database accepted the run
        # Without a thread id the run's thread was created with it: empty until the run writes.
        active.checkpoints.new_thread = active.request.thread_id is None and run.attempt == 1
        active.checkpoints.write_gates_nodes = active.request.durability == "sync"
        active.context = in_run_context(run.run_id, run.thread_id)  # the run's tasks log its ids
        active.context.run(watchdog.current_run.set, run.run_id)  # and answer for blocking the loop
        active.task = asyncio.create_task(
            self.execution.execute(active, claim), name=f"run-{run.run_id}", context=active.context
        )
        return active

    def register(self, active: ActiveRun) -> None:
        """The run executes here: its lease is kept, followers and cancels find it."""
        run = active.record
        if (older := self.local.add(active)) is not None:  # our own earlier attempt lost its lease and
            older.stop(StopReason.LOST, "a newer attempt took the run over")  # we re-claimed the run
        active.span = self.tracer.start_span(
            "graphrun.run",
            attributes={  # runs accepted here only
                "graphrun.run_id": run.run_id,
                "graphrun.thread_id": run.thread_id,
                "graphrun.assistant_id": run.assistant_id,
                "graphrun.attempt": run.attempt,
            },
        )
        self.fanout.start_storing(active)
        self.fanout.wake_followers(run.run_id)
