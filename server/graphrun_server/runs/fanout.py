"""Event fan-out: a run's events stored as they come, and followed from wherever the run executes.

Why here and not in the servicers: a follower must not care which replica executes the run.
An attempt executing here is followed in memory; anything else through the database, woken
by NOTIFY graphrun_event (with a 5 s fallback for a notification lost in a reconnect). When
the attempt leaves this replica, its in-memory log closes with RunMoved and the follower
continues from the database. Followers see an event only once it is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .. import events as ev
from ..errors import RunNotFound, ServerDraining
from ..registry import Registry
from ..snapshots import snapshot_to_json
from ..storage.event_writer import EventWriter
from ..storage.records import Records, RunRecord
from .local import LocalRuns
from .request import graph_config
from .state import ActiveRun, log


class Fanout:
    def __init__(self, local: LocalRuns, records: Records, registry: Registry):
        self.local, self.records, self.registry = local, records, registry
        self.writer = EventWriter(records, local.settings.event_write_interval)
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def start_storing(self, active: ActiveRun) -> None:
        """A streaming run's events are stored as they come (EventWriter), for followers here and
        on other replicas; runs started by Wait (no stream modes) store their two when they end.
        Settling stops it (`EventWriter.detach`) and stores the rest with the end event."""
        if active.request.stream_modes:
            active.log.on_publish = lambda: self.writer.mark(active)
            self.writer.attach(active)

    def wake_all(self) -> None:
        """Every follower looks again (draining: streams of runs executing elsewhere end now)."""
        for run_id in list(self._waiters):
            self.wake_followers(run_id)

    def on_event_note(self, payload: str | None) -> None:
        if payload is None:  # reconnected: anything may have happened
            self.wake_all()
        elif payload:
            self.wake_followers(payload)

    def wake_followers(self, run_id: str) -> None:
        for waiter in self._waiters.get(run_id, ()):
            waiter.set()

    async def follow(
        self, run_id: str, after: int = 0, deadline: float | None = None
    ) -> AsyncIterator[list[ev.RunEvent]]:
        """Yield the run's events numbered after `after`, up to its end event, from wherever it
        runs: in batches of what is there to read at once (in order, never empty).

        Local attempts are followed in memory; others through the database, woken by
        NOTIFY. Raises RunNotFound, TimeoutError (deadline, event-loop time), or
        ServerDraining when this replica hands the run over while shutting down.
        """
        loop = asyncio.get_running_loop()
        position = after
        while True:
            active = self.local.get(run_id)
            if active is not None and active.log.closed is None and position >= active.log.base:
                try:
                    async for batch in active.log.follow(position, deadline):
                        position = batch[-1].sequence
                        yield batch
                    return
                except ev.RunMoved as moved:
                    if moved.reason == "handoff" and self.local.draining:
                        raise ServerDraining(run_id, position) from None
                    continue
            waiter = asyncio.Event()
            self._waiters.setdefault(run_id, set()).add(waiter)
            try:
                stored = await self.records.read_events(run_id, position)
                if not stored:
                    run = await self.records.get_run(run_id)
                    if run is None:
                        raise RunNotFound(run_id)
                    if run.ended:  # its end event was stored before we read, or pruned since
                        stored = await self.records.read_events(run_id, position) or [self._pruned_end(run, position)]
                if stored:
                    end = stored[-1]  # an end event is a run's last
                    if end.kind == ev.END and "run" not in end.data:
                        run = await self.records.get_run(run_id)
                        state = await self._state_at(run, end.data.get("checkpoint_id"))
                        stored[-1] = ev.RunEvent(
                            end.sequence, end.kind, {**end.data, "run": run, "state": state}, end.time, end.namespace
                        )
                    position = end.sequence
                    yield stored
                    if end.kind == ev.END:
                        return
                    if deadline is not None and loop.time() >= deadline:
                        raise TimeoutError  # a reader that never catches up still stops at its deadline
                if stored or ((here := self.local.get(run_id)) is not None and here.log.closed is None):
                    continue
                if self.local.draining:  # shutting down: the caller follows the run through another replica
                    raise ServerDraining(run_id, position)
                timeout = 5.0 if deadline is None else min(deadline - loop.time(), 5.0)
                if timeout <= 0:
                    raise TimeoutError
                try:  # NOTIFY wakes us; the timeout only covers a notification lost in a reconnect
                    async with asyncio.timeout(timeout):  # not wait_for: no task of its own (3.11)
                        await waiter.wait()
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        raise
            finally:
                waiters = self._waiters.get(run_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[run_id]

    async def _state_at(self, run: RunRecord | None, checkpoint_id: str | None) -> dict | None:
        """The thread's state at a run's final checkpoint, for an end event read from the
        database (which stores the checkpoint's id, not the state)."""
        if run is None or not checkpoint_id:
            return None
        try:
            graph = self.registry.get(run.graph).graph
            state = snapshot_to_json(await graph.aget_state(graph_config(run.thread_id, checkpoint_id)))
        except Exception:  # noqa: BLE001 - the caller goes without the state
            log.warning("run %s: could not read the thread's state", run.run_id, exc_info=True)
            return None
        return state if state.get("checkpoint") else None

    @staticmethod
    def _pruned_end(run: RunRecord, position: int) -> ev.RunEvent:
        """An end event made from the run record, for a run whose stored events were pruned."""
        return ev.RunEvent(
            position + 1,
            ev.END,
            {"status": run.status, "error": run.error, "state": None, "run": run},
            run.ended_at.timestamp(),
        )

    async def wait_end(self, run_id: str, deadline: float | None = None) -> ev.RunEvent:
        """The run's end event, waiting for it (see `follow` for the errors)."""
        async for batch in self.follow(run_id, 0, deadline):
            if batch[-1].kind == ev.END:
                return batch[-1]
        raise RuntimeError(f"run {run_id} ended without an end event")
