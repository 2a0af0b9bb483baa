"""Settling: record how an attempt ended — finished, handed back, or lost — and tell its followers.

Why apart from execution: an attempt settles the same way whatever ended it (the graph, a stop,
an outage), and settling is where the cost of a run is decided: one statement records the end
with the remaining events, and the final state is known without reading it back when the run
completed (`_completed_state`).
"""

from __future__ import annotations

import asyncio
import time

from langgraph.types import StateSnapshot
from opentelemetry import trace

from .. import events as ev
from ..observability.metrics import Metrics
from ..registry import Registry
from ..snapshots import snapshot_to_json
from ..storage.event_writer import EventWriter
from ..storage.records import Records, run_record
from ..wire import to_json
from .local import LocalRuns
from .request import graph_config
from .state import MOVES, ActiveRun, RunState, StopReason, log


class Settlement:
    def __init__(
        self, local: LocalRuns, records: Records, registry: Registry, metrics: Metrics | None, writer: EventWriter
    ):
        self.local, self.records, self.registry, self.metrics = local, records, registry, metrics
        self.writer = writer  # stores streaming runs' events as they come

    async def settle(self, active: ActiveRun, status: str, error: dict | None, state: dict | None) -> None:
        """Record how the attempt ended — finished, handed back, or lost — and tell the followers."""
        run = active.record
        recorded = active.checkpoints.finished  # the end went with the run's last checkpoint
        # It completed, then: a stop that came after changes nothing (a fact: no reason).
        active.transition(RunState.SETTLING, None, fact=recorded is not None)
        if recorded is not None:
            status, error = "success", None
        error = to_json(error) if error else None
        try:
            await asyncio.shield(self.writer.detach(active.run_id, active.attempt))  # the rest goes below
            if active.reason is StopReason.LOST:
                log.warning(
                    "run %s attempt %s lost to another replica; stopped here without writing", run.run_id, run.attempt
                )
                return
            if active.reason in (StopReason.HANDOFF, StopReason.OUTAGE):
                if active.reason is StopReason.OUTAGE:
                    active.log.close("outage")  # followers go to the database: UNAVAILABLE until it is back
                await self._release(
                    active,
                    patience=self.local.settings.lease_seconds * 2 / 3 if active.reason is StopReason.OUTAGE else 0.0,
                )
                return
            if active.reason is StopReason.ROLLBACK:
                await self.records.delete_run_checkpoints(run.thread_id, run.run_id)
            # The stored end event names the final checkpoint. The state itself (for Wait and the
            # followers here) is known when the run completed; otherwise it is read meanwhile, in
            # parallel with recording the end.
            if state is None:
                state = self._completed_state(active, status)
            reading = asyncio.ensure_future(self._final_state(active)) if state is None else None
            if recorded is not None:
                end, finished = active.ending, run_record(recorded, run.spec)
            else:
                end = active.log.next_event(
                    ev.END,
                    {
                        "status": status,
                        "error": error,
                        "checkpoint_id": active.checkpoint["ref"].get("checkpoint_id") if active.checkpoint else None,
                    },
                )
                finished = await self.records.finish_run(
                    run.run_id,
                    run.attempt,
                    status,
                    error,
                    active.current_node,
                    active.step,
                    [*active.log.since(active.stored), end],
                    run.spec,
                )
            state = (await reading if reading else state) or None
            if finished is None:
                active.transition(RunState.SETTLING, StopReason.LOST, fact=True)
                log.warning("run %s attempt %s lost to another replica before it could finish", run.run_id, run.attempt)
                return
            active.record = finished
            state = state if state and state.get("checkpoint") else None
            if active.request.on_completion == "delete":
                # A stateless run: the thread it made goes before its end reaches the followers here
                # (from memory), so whoever got the answer finds nothing left.
                await self.records.forget_thread(run.thread_id)
            active.log.publish(
                ev.RunEvent(end.sequence, ev.END, {**end.data, "run": finished, "state": state}, end.time)
            )
            active.log.mark_durable(end.sequence)
        except Exception:  # noqa: BLE001 - logged; another replica finishes the run
            log.exception(
                "run %s: could not record how it ended; its lease will lapse and another replica will finish it",
                run.run_id,
            )
            active.transition(RunState.SETTLING, StopReason.LOST)
        finally:
            self.local.remove(active)
            active.log.close(active.reason or StopReason.LOST)
            active.transition(RunState.DONE)
            self._observe_end(active, status)

    async def _release(self, active: ActiveRun, patience: float) -> None:
        """Store the run's remaining events and hand it back to the queue, where this or another
        replica continues it from its last checkpoint. While the database is unreachable, retry
        for `patience` seconds; after that the lease lapses and a takeover does the same."""
        loop = asyncio.get_running_loop()
        give_up, delay = loop.time() + patience, 0.1
        while True:
            try:
                batch = active.log.since(active.stored)
                if not batch or await self.records.append_events(active.run_id, active.attempt, batch):
                    await self.records.release_run(active.run_id, active.attempt)
                return  # released, or another replica owns the run already
            except Exception as exc:  # noqa: BLE001 - tried again until give_up; the lease lapses then
                if loop.time() + delay > give_up:
                    log.warning(
                        "run %s: could not hand it back (%s); its lease will lapse", active.run_id, type(exc).__name__
                    )
                    return
                await asyncio.sleep(delay)  # backoff while the database is away
                delay = min(delay * 2, 2.0)

    def _observe_end(self, active: ActiveRun, status: str) -> None:
        outcome = str(active.reason) if active.reason in MOVES else status
        for span in active.node_spans.values():
            span.end()
        active.span.set_attribute("graphrun.outcome", outcome)
        if outcome in ("error", "timeout", "cancelled"):
            active.span.set_status(trace.Status(trace.StatusCode.ERROR, outcome))
        active.span.end()
        if self.metrics:
            self.metrics.run_finished(outcome, time.monotonic() - active.started)

    @staticmethod
    def _completed_state(active: ActiveRun, status: str) -> dict | None:
        """The thread's state after a run that completed, from what the run itself saw and
        stored — what `aget_state` would read back, without reading it. None when unsure.

        A completed run's last checkpoint has no next tasks, hence no tasks or interrupts,
        and nothing was written to it after: its state is the values the graph announced
        with it, and the checkpoint row the run stored (id, parent, time, metadata).
        """
        stored, announced = active.checkpoints.latest, active.checkpoint
        if (
            status != "success"
            or stored is None
            or announced is None
            or announced["next"]
            or announced["ref"].get("checkpoint_id") != stored.checkpoint_id
            or stored.checkpoint_id in active.checkpoints.written
        ):
            return None

        def config(checkpoint_id: str) -> dict:
            return {
                "configurable": {"thread_id": stored.thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
            }

        parent = config(stored.parent_checkpoint_id) if stored.parent_checkpoint_id else None
        return snapshot_to_json(
            StateSnapshot(
                values=announced["values"],
                next=(),
                config=config(stored.checkpoint_id),
                metadata=stored.metadata,
                created_at=stored.created_at,
                parent_config=parent,
                tasks=(),
                interrupts=(),
            )
        )

    async def _final_state(self, active: ActiveRun) -> dict | None:
        try:
            assistant = self.registry.get(active.record.graph)
            return snapshot_to_json(await assistant.graph.aget_state(graph_config(active.thread_id)))
        except Exception as exc:  # noqa: BLE001 - its type only: a reducer's message may quote the run's input
            log.warning("run %s: could not read the final state: %s", active.run_id, type(exc).__name__)
            return None
