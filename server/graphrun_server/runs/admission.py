"""Admission: check a run against its graph and thread, record it, and start it here when it can.

Why a run may start before the database answers: LangGraph's set-up overlaps the round trip
that accepts the run, and nothing the run writes is stored before the answer (the
checkpointer waits for it). A run the database refuses or queues is dropped here, with no
events; a run on a thread it creates has its acceptance ride on its first checkpoint write, a
run on an existing thread on its first checkpoint read (sent ahead of LangGraph's asking).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from ..auth import caller
from ..errors import QueueFull, ReplicaBusy, RequestIdReused, RunNotFound
from ..input_check import check_input
from ..registry import Assistant
from ..storage.checkpointer import Rider
from ..storage.records import Claim, Records, RunRecord
from .checks import check_request, check_thread_state
from .local import LocalRuns, Phase
from .request import RunRequest, graph_config
from .state import ActiveRun, StopReason, log

if TYPE_CHECKING:
    from ..assistants import Assistants

# Request ids name runs: a caller's request id always gives the same run id (`_run_id`).
REQUEST_IDS = uuid.UUID("6d3f7a52-4a8e-4c61-9f1d-2f7c4b0c9a11")


def _run_id(req: RunRequest) -> str:
    """A new run's id: random, or derived from the caller and its request id, so that a repeated
    request finds the run its first one started (graphrun_run's primary key refuses a second)."""
    if not req.request_id:
        return str(uuid.uuid4())
    return str(uuid.uuid5(REQUEST_IDS, f"{caller.get() or ''}\x00{req.request_id}"))


class NotAdmitted(Exception):
    """The database did not let a run that was started here ahead of its answer run here."""


def _digest(req: RunRequest) -> str:
    """The request as the caller sent it, for comparing a repeat of its request id: the stored spec
    is the effective one, which changes with the assistant."""
    return hashlib.sha256(json.dumps(req.to_json(), sort_keys=True).encode()).hexdigest()


class Admission:
    def __init__(self, local: LocalRuns, records: Records, checkpointer, claims, assistants: Assistants):
        self.local, self.records, self.checkpointer = local, records, checkpointer
        self.claims = claims  # claims.Claims: starts and registers the runs admitted here
        self.assistants = assistants  # resolves what the run names into its graph and effective request

    async def submit(
        self, req: RunRequest, start_delay: float = 0.0, *, queue: bool = True, hold: asyncio.Future | None = None
    ) -> RunRecord:
        """Validate against the graph and thread, record the run, and start it here if it can start now.

        A replica executing its maximum of runs queues new ones for any replica (`queue`,
        background runs) or refuses them with ReplicaBusy (a caller waiting for the run). A run
        started here at once goes no further than its first read or write before `hold` is done
        (see `_begin_here`).
        """
        if req.request_id:
            req.request_digest = _digest(req)
        assistant, req = await self.check(req)
        settings = self.local.settings
        at_capacity = not self.local.has_room()
        if at_capacity and not queue:
            raise ReplicaBusy(settings.max_concurrent_runs)
        can_run_here = not self.local.draining and not at_capacity
        if not can_run_here and (pending := await self.records.count_pending()) >= settings.max_pending_runs:
            raise QueueFull(pending)
        run_id, thread_id, spec = _run_id(req), req.thread_id or str(uuid.uuid4()), req.to_json()
        try:
            return await self._accept(req, assistant, run_id, thread_id, spec, start_delay, can_run_here, hold)
        except psycopg.errors.UniqueViolation as exc:
            if not req.request_id or exc.diag.constraint_name != "graphrun_run_pkey":
                raise
        return await self._repeated(req, run_id, spec)  # the same request again: the run it started

    async def check(self, req: RunRequest) -> tuple[Assistant, RunRequest]:
        """What the graph and the thread would refuse, before anything is recorded: the run's
        assistant (AssistantNotFound), its nodes, context, input and resume (InvalidArgument). The
        graph, and the effective request (the assistant's config, context and webhook merged in)."""
        assistant, req = await self.assistants.resolve(req)
        check_request(assistant, req)
        await check_input(assistant, req.input, req.input_field or "input", req.thread_id, req.checkpoint_id)
        if req.thread_id and (req.checkpoint_id or (req.command and "resume" in req.command)):
            await check_thread_state(self.records, self.checkpointer, assistant, req)
        return assistant, req

    async def _repeated(self, req: RunRequest, run_id: str, spec: dict[str, Any]) -> RunRecord:
        """The run an earlier request with this request id started, if it asked for the same."""
        run = await self.records.get_run(run_id)
        if run is None:  # gone meanwhile (its thread was deleted): nothing to give back
            raise RunNotFound(run_id)
        if ("request_digest" in run.spec and run.spec["request_digest"] != req.request_digest) or (
            "request_digest" not in run.spec and run.spec != spec  # a run recorded before digests
        ):
            raise RequestIdReused(req.request_id or "", run_id)
        return run

    async def _accept(
        self,
        req: RunRequest,
        assistant: Assistant,
        run_id: str,
        thread_id: str,
        spec: dict[str, Any],
        start_delay: float,
        can_run_here: bool,
        hold: asyncio.Future | None,
    ) -> RunRecord:
        settings = self.local.settings
        acceptance = dict(
            run_id=run_id,
            thread_id=thread_id,
            create_thread=req.create_thread or not req.thread_id,
            assistant_id=req.assistant_id,
            graph_id=assistant.graph_id,
            assistant_version=req.assistant_version,
            multitask_strategy=req.multitask_strategy,
            on_disconnect=req.on_disconnect,
            spec=spec,
            metadata=req.metadata,
            delay=start_delay,
            # A fork from an earlier checkpoint leaves a pending question where it is.
            has_input=req.input is not None and not req.checkpoint_id,
            owner=settings.owner if can_run_here else None,
            lease=settings.lease_seconds,
            announce=bool(req.stream_modes),
        )
        if can_run_here and start_delay <= 0:
            provisional = self._provisional(run_id, thread_id, assistant, req, spec)
            if req.thread_id or (not req.stream_modes and req.durability != "exit" and not req.request_id):
                # Its acceptance rides on the read LangGraph makes first of an existing thread, sent
                # now with it (the run's set-up overlaps their round trip; the read waits for the
                # answer) or, on a thread of its own (nothing but an outage can refuse it), on its
                # first write (with `exit` that is the last: too late). Not a streamed run's on a
                # thread of its own: its first event (stored with the acceptance) would wait for
                # LangGraph's set-up and that write, which the acceptance sent at once overlaps.
                rider = Rider(
                    *self.records.begin_run_statement(**acceptance), asyncio.get_running_loop().create_future()
                )
                if req.thread_id:
                    self.checkpointer.read_ahead(graph_config(thread_id, req.checkpoint_id), rider)
                begun = self.records.begun_run(rider, thread_id, spec)
                return await self._begin_here(begun, provisional, rider=rider, hold=hold)
            return await self._begin_here(self.records.begin_run(**acceptance), provisional, hold=hold)
        record = await self.records.begin_run(**acceptance)
        if start_delay > 0:
            asyncio.get_running_loop().call_later(start_delay, self.local.wake.set)
        return record

    async def _begin_here(
        self, begin, provisional: RunRecord, *, rider: Rider | None = None, hold: asyncio.Future | None = None
    ) -> RunRecord:
        """Record a run that can start here at once, getting its graph ready meanwhile.

        The run's task starts as the database call goes out; LangGraph's set-up (configs,
        channels, the loop) overlaps the round trip, and the run waits for the answer before
        its first checkpoint read (on a thread it creates, with `sync` durability, before its
        first write, which LangGraph's nodes wait for), so no node runs before the run is
        accepted. A run the database refuses (a busy thread) or queues (`enqueue`) is dropped:
        no end, no events.
        The answer is acted on even if the caller is gone by then (a run the database recorded
        always executes). With a `rider` (a run on a thread it creates, which nothing but an outage
        can refuse) the acceptance goes out with the run's first checkpoint write instead, one
        round trip less (FencedPostgresSaver.aput). With `sync` durability a StateGraph's nodes
        still run only after that write (LangGraph's input step waits for it); with `async` the
        first nodes may start meanwhile, and none of their writes is stored before it. A run on
        an existing thread sends its rider at once, ahead of the read LangGraph will make first, in
        one pipeline (FencedPostgresSaver.read_ahead): LangGraph's set-up overlaps the round trip,
        and its read waits for the answer, so no node runs before it.

        A run started by a Stream is `hold`-en, once accepted, before loading what its first read
        found and before its first checkpoint write, until the call's first event is on its way (at
        most HOLD_LIMIT): LangGraph's loading and steps hold the event loop without a pause, and the
        call's initial metadata and first event would wait for them.
        """
        begun = asyncio.ensure_future(begin)  # sent first; the set-up below overlaps it too
        admitted = asyncio.get_running_loop().create_future()
        active = self.claims.prepare(Claim(provisional, 0, None), admitted)
        active.rider, active.hold = rider, hold
        self.local.starting += 1
        begun.add_done_callback(lambda done: self._admit(active, done))
        return await asyncio.shield(begun)

    def _admit(self, active: ActiveRun, begun: asyncio.Future) -> None:
        """The database answered a run started ahead of its answer: let it run, or drop it."""
        self.local.starting -= 1
        admitted = active.admission
        if begun.cancelled() or begun.exception() is not None or begun.result().status != "running":
            admitted.set_exception(NotAdmitted())
            return
        active.record = begun.result()
        if active.stored == 0 and active.request.stream_modes:  # its metadata event was stored with
            # its acceptance (begin_run_statement)
            active.stored = 1
            active.log.mark_durable(1)
        if active.rider is not None:  # accepted with its first checkpoint write: leased then
            active.leased_at = max(active.leased_at, active.rider.taken_at)
        try:
            self.claims.register(active)
        except BaseException:  # noqa: BLE001 - a done-callback: nothing above it would see the error
            admitted.set_exception(NotAdmitted())  # never leave the task waiting
            log.exception(
                "run %s: could not start it here; its lease will lapse and a replica will run it", active.run_id
            )
            return
        admitted.set_result(None)
        active.admission = None  # no more waiting for the checkpointer
        if self.local.phase is Phase.HANDING_BACK:
            active.stop(StopReason.HANDOFF, "the server shut down")

    def _provisional(
        self, run_id: str, thread_id: str, assistant: Assistant, req: RunRequest, spec: dict[str, Any]
    ) -> RunRecord:
        """The record a run started here will have, until the database's answer replaces it."""
        now = dt.datetime.now(dt.UTC)
        return RunRecord(
            run_id=run_id,
            thread_id=thread_id,
            assistant_id=req.assistant_id,
            graph_id=assistant.graph_id,
            assistant_version=req.assistant_version,
            status="running",
            attempt=1,
            multitask_strategy=req.multitask_strategy,
            on_disconnect=req.on_disconnect,
            spec=spec,
            metadata=req.metadata,
            error=None,
            queue_position=0,
            not_before=now,
            lease_owner=self.local.settings.owner,
            lease_expires_at=None,
            cancel_action=None,
            current_node=None,
            step=None,
            created_at=now,
            updated_at=now,
            started_at=now,
            ended_at=None,
            owner=caller.get(),
        )


async def wait_admitted(active: ActiveRun) -> bool:
    """Whether the database accepted a run started before its answer (see `_begin_here`)."""
    admitted = active.admission  # None: accepted (or never waited for)
    if admitted is None:
        return True
    while True:
        try:
            await asyncio.shield(admitted)  # a stop must not cancel the answer
            return True
        except NotAdmitted:
            return False
        except asyncio.CancelledError:  # stopped meanwhile (its timeout): the answer still decides
            if admitted.done():
                return not isinstance(admitted.exception(), NotAdmitted)
