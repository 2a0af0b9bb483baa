"""Stopping and drain: every source of a stop, turned into a request to the attempt.

Why one place: a stop can come from a Cancel, a caller going away, NOTIFY graphrun_cancel,
the lease thread (a lost lease, a cancel it brought back), the watchdog, or shutdown. Each asks
`ActiveRun.stop`, which decides by the attempt's state whether the stop still applies. A run
executing on another replica is stopped through the database (graphrun_cancel_run).
"""

from __future__ import annotations

import asyncio

from ..errors import RunNotFound
from ..storage.records import Records, RunRecord
from .fanout import Fanout
from .local import LocalRuns, Phase
from .state import StopReason, log


class Stopping:
    def __init__(self, local: LocalRuns, records: Records, fanout: Fanout):
        self.local, self.records, self.fanout = local, records, fanout
        self._background: set[asyncio.Task] = set()

    async def drain(self, grace: float) -> None:
        """Shutdown: claim nothing more, let runs finish for part of `grace`, then hand
        the rest back (at a step boundary if they reach one in time) for other replicas."""
        self.local.phase = Phase.DRAINING
        self.local.wake.set()
        self.fanout.wake_all()  # streams of runs executing elsewhere end now (SERVER_DRAINING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        pending = [a.log.ended for a in self.local.all()]
        if pending:
            await asyncio.wait(pending, timeout=grace * 0.5)
        for active in self.local.all():
            active.control.request_drain("shutdown")
        pending = [a.task for a in self.local.all() if a.task]
        if pending:
            await asyncio.wait(pending, timeout=max(deadline - loop.time() - 0.5, 0.1))
        await self.hand_back_all()

    async def hand_back_all(self) -> None:
        """Stop every run executing here and return it to the queue for another replica."""
        self.local.phase = Phase.HANDING_BACK  # runs the database accepts from now on are handed back at once
        for active in self.local.all():
            active.stop(StopReason.HANDOFF, "the server shut down")
        tasks = [a.task for a in self.local.all() if a.task]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def cancel(self, run_id: str, action: str, message: str, wait: bool = False) -> RunRecord:
        """Stop a run wherever it executes. action: interrupt | rollback | timeout."""
        if await self.records.get_run(run_id) is None:  # unknown, or another caller's
            raise RunNotFound(run_id)
        active = self.local.executing_here(run_id)
        if active is not None:
            active.stop(StopReason(action), message)
            if wait:
                await self.fanout.wait_end(run_id)
            record = await self.records.get_run(run_id)
        else:
            record = await self.records.cancel_run(run_id, action, message)
            if record is None:
                raise RunNotFound(run_id)
            if wait and not record.ended:
                await self.fanout.wait_end(run_id)
                record = await self.records.get_run(run_id)
        return record

    def cancel_soon(self, run_id: str, action: str, message: str) -> None:
        """`cancel` from a handler that is itself being cancelled (its caller left). A run executing
        here is stopped at once, with no round trip that a database blip could lose."""
        if self.local.draining:
            return  # runs move to other replicas; callers can join them there
        active = self.local.executing_here(run_id)
        if active is not None:
            active.stop(StopReason(action), message)
            return
        task = asyncio.get_running_loop().create_task(self.cancel(run_id, action, message))
        self._background.add(task)

        def done(task: asyncio.Task) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning(
                    "run %s: could not stop it after its caller left: %s", run_id, type(task.exception()).__name__
                )

        task.add_done_callback(done)

    def on_cancel_note(self, payload: str | None) -> None:
        if not payload:
            return
        run_id, _, action = payload.partition(" ")
        active = self.local.get(run_id)
        if active is not None:
            active.stop(StopReason(action or "interrupt"), "cancelled")

    def on_loop_blocked(self, run_id: str, seconds: float) -> None:
        """A task of this run held the event loop for `seconds` (see watchdog.py): the run fails."""
        active = self.local.get(run_id)
        if active is None:
            return
        node = f"node {active.current_node!r}" if active.current_node else "the graph"
        message = (
            f"{node} blocked the server's event loop for {seconds:.1f} s, stalling every run; "
            "call blocking code from a sync node or asyncio.to_thread"
        )
        log.warning("run %s: %s", run_id, message)
        active.stop(StopReason.BLOCKED, message)

    def on_lease_report(self, lost: dict[str, int], cancels: dict[str, str]) -> None:
        """lost: run id -> the attempt whose lease was lost (a newer attempt of ours is not).

        A renewal also comes back without a run that has just ended: its end, committed while the
        renewal was on its way, took the row out of RUNNING. Such a run is SETTLING (its end is
        being recorded, or went with its last checkpoint), where a stop is refused: it is neither
        stopped nor logged nor counted lost. If another replica did take it over, recording its end
        is refused (fenced) and settling finds the loss itself."""
        for run_id, attempt in lost.items():
            active = self.local.get(run_id)
            if active is not None and active.attempt == attempt and active.stop(StopReason.LOST, "lease lost"):
                log.warning("run %s: lease lost; stopped here, another replica continues it", run_id)
        for run_id, action in cancels.items():
            if (active := self.local.get(run_id)) is not None:
                active.stop(StopReason(action), "cancelled")
