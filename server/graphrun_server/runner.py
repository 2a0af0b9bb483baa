"""The graph runner: the one place where runs execute, and the servicers' only way to them.

RPC handlers never run a graph. They submit a run, then follow its events
(Stream, Join) or wait for its end (Wait). The run executes in a task the runner
owns — on this replica or any other sharing the database — so a handler
cancelled by its deadline or a departed client cannot tear a graph down
halfway; it asks the runner to cancel the run instead, and the runner records why.

Who executes what is decided in PostgreSQL (see storage/records.py): a run that
can start at once is leased to the replica that accepted it; the rest wait as
PENDING until a worker on any replica claims them (woken by NOTIFY). A lease
renewed from a separate thread marks a run as owned; when it expires another
replica takes the run over and continues it from its last checkpoint, and every
write of the old owner is fenced off by the attempt number.

Cost of a run that starts at once, beyond its checkpoint writes: one statement
to accept it (and lease it) and one to record its end with its events (plus one
to read the final state back, unless the run completed and its last checkpoint
write says what it is); events of streamed runs are stored in batches meanwhile.

`GraphRunner` is a facade over one module per concern (runs/): admission, claims and
leases, execution, settling, stopping and drain, event fan-out; an attempt's life cycle
is the state machine in runs/state.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from opentelemetry import trace

from . import events as ev
from .assistants import Assistants
from .errors import RunNotFound
from .observability.metrics import Metrics
from .registry import Registry
from .runs.admission import Admission
from .runs.claims import Claims
from .runs.execution import Execution
from .runs.fanout import Fanout
from .runs.local import LocalRuns, RunnerSettings
from .runs.request import RunRequest, graph_config
from .runs.settling import Settlement
from .runs.stopping import Stopping
from .storage.assistants import AssistantRecords
from .storage.notify import Notifications
from .storage.records import Records, RunRecord

__all__ = ["GraphRunner", "RunRequest", "RunnerSettings", "graph_config"]


class GraphRunner:
    """Accepts, executes, stops and hands over runs; lets handlers follow them."""

    def __init__(
        self,
        registry: Registry,
        records: Records,
        checkpointer,
        notifications: Notifications,
        dsn: str,
        settings: RunnerSettings | None = None,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
        assistants: Assistants | None = None,
    ):
        self.registry = registry
        # What runs name: a graph's default assistant or a created one (without: created ones in the
        # same database, webhooks off).
        self.assistants = assistants or Assistants(registry, AssistantRecords(records.pool))
        self.checkpointer = checkpointer
        self.settings = settings or RunnerSettings()
        self._records = records
        self._notifications = notifications
        tracer = tracer or trace.NoOpTracer()
        self._local = local = LocalRuns(self.settings, metrics)
        self._fanout = Fanout(local, records, registry)
        self._settlement = Settlement(local, records, registry, metrics, self._fanout.writer)
        self._execution = Execution(
            local, registry, records, checkpointer, self._settlement, tracer, nudge=lambda: self._claims.nudge()
        )
        self._claims = Claims(local, records, self._execution, self._fanout, tracer, dsn)
        self._admission = Admission(local, records, checkpointer, self._claims, self.assistants)
        self._stopping = Stopping(local, records, self._fanout)

    @property
    def owner(self) -> str:
        return self.settings.owner

    # -- the replica's life ----------------------------------------------------------------

    async def start(self) -> None:
        self._notifications.subscribe("graphrun_run", lambda _: self._local.wake.set())
        self._notifications.subscribe("graphrun_event", self._fanout.on_event_note)
        self._notifications.subscribe("graphrun_cancel", self._stopping.on_cancel_note)
        self._claims.start(report=self._stopping.on_lease_report)

    async def drain(self, grace: float) -> None:
        """Shutdown: claim nothing more, let runs finish for part of `grace`, then hand
        the rest back (at a step boundary if they reach one in time) for other replicas."""
        await self._stopping.drain(grace)

    async def close(self) -> None:
        """Stop the worker and the lease thread (after drain, or in tests)."""
        await self._stopping.hand_back_all()
        await self._claims.stop()
        await self._fanout.writer.close()

    # -- runs ------------------------------------------------------------------------------

    async def submit(
        self, req: RunRequest, start_delay: float = 0.0, *, queue: bool = True, hold: asyncio.Future | None = None
    ) -> RunRecord:
        """Validate against the graph and thread, record the run, and start it here if it can start now.

        A replica executing its maximum of runs queues new ones for any replica (`queue`,
        background runs) or refuses them with ReplicaBusy (a caller waiting for the run). A run
        that starts here goes no further than its first checkpoint read or write (runs no node)
        before `hold` is done, for a short while at most: a Stream's first event goes out first
        (runs/admission.py).
        """
        return await self._admission.submit(req, start_delay, queue=queue, hold=hold)

    async def check(self, req: RunRequest) -> None:
        """What `submit` would refuse of the run before recording it (its assistant, nodes, context,
        input), without recording it: a cron's run is checked so when the cron is created."""
        await self._admission.check(req)

    def follow(self, run_id: str, after: int = 0, deadline: float | None = None) -> AsyncIterator[list[ev.RunEvent]]:
        """The run's events numbered after `after`, up to its end, from wherever it runs, in
        batches of what is there at once. Raises RunNotFound, TimeoutError (deadline,
        event-loop time), or ServerDraining."""
        return self._fanout.follow(run_id, after, deadline)

    async def wait_end(self, run_id: str, deadline: float | None = None) -> ev.RunEvent:
        """The run's end event, waiting for it (see `follow` for the errors)."""
        return await self._fanout.wait_end(run_id, deadline)

    async def cancel(self, run_id: str, action: str, message: str, wait: bool = False) -> RunRecord:
        """Stop a run wherever it executes. action: interrupt | rollback | timeout."""
        return await self._stopping.cancel(run_id, action, message, wait)

    def cancel_soon(self, run_id: str, action: str, message: str) -> None:
        """`cancel` from a handler that is itself being cancelled (its caller left)."""
        self._stopping.cancel_soon(run_id, action, message)

    def on_loop_blocked(self, run_id: str, seconds: float) -> None:
        """A task of this run held the event loop for `seconds` (see watchdog.py): the run fails."""
        self._stopping.on_loop_blocked(run_id, seconds)

    # -- run records, for the servicers ------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        """The run (the caller's); RunNotFound for an unknown run or another caller's."""
        run = await self._records.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    async def list_runs(
        self, thread_id: str | None, statuses: list[str], page_size: int, page_token: str, cron_id: str | None = None
    ) -> tuple[list[RunRecord], str]:
        """A page of the caller's runs (of one cron's ticks, with `cron_id`), newest first; ThreadNotFound
        for a thread that does not exist (or is another caller's), as GetState and GetHistory answer."""
        runs, token = await self._records.list_runs(thread_id, statuses, page_size, page_token, cron_id)
        if thread_id and not runs:  # no runs, or no such thread
            await self._records.get_thread(thread_id)
        return runs, token

    async def last_sequence(self, run_id: str) -> int:
        """The number of the run's last stored event (0: none)."""
        return await self._records.last_sequence(run_id)
