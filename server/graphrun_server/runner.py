"""The graph runner: the one place where runs execute.

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
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from langgraph.errors import GraphDrained, GraphRecursionError
from langgraph.pregel._utils import is_xxh3_128_hexdigest
from langgraph.types import Command, StateSnapshot
from opentelemetry import trace

from . import events as ev, watchdog
from .auth import caller
from .errors import (RUN_FAILURE_CODES, DatabaseUnavailable, FieldViolation, InvalidArgument, QueueFull,
                     ReplicaBusy, RunNotFound, ServerDraining, ThreadInterrupted, invalid)
from .input_check import check_input
from .observability.logs import in_run_context
from .observability.metrics import Metrics
from .registry import Assistant, Registry
from .snapshots import may_have_next_tasks, read_state, snapshot_to_json
from .stream_events import EventTranslator, chunks as stream_chunks
from .storage.checkpointer import CHECKPOINTS_KEY, FENCE_KEY, Rider
from .storage.leases import LeaseKeeper
from .storage.notify import Notifications
from .runs.request import RunRequest, graph_config
from .runs.state import MOVES, STOP_ERROR_TYPE, STOP_STATUS, ActiveRun, RunState, StopReason, log
from .storage.records import Claim, Records, RunRecord, run_record
from .wire import to_json

DEFAULT_RECURSION_LIMIT = 25


class NotAdmitted(Exception):
    """The database did not let a run that was started here ahead of its answer run here."""


@dataclass
class RunnerSettings:
    owner: str = field(default_factory=lambda: f"replica-{uuid.uuid4().hex[:12]}")
    max_concurrent_runs: int = 100
    max_pending_runs: int = 10_000  # runs waiting in the database (all replicas) before RESOURCE_EXHAUSTED
    lease_seconds: float = 30.0
    max_attempts: int = 3


def _fenced_off(exc: BaseException) -> bool:
    """Did a checkpoint write fail because another replica owns the run now?"""
    while exc is not None:
        if isinstance(exc, psycopg.Error) and exc.sqlstate == "GR001":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class GraphRunner:
    """Accepts, executes, stops and hands over runs; lets handlers follow them."""

    def __init__(self, registry: Registry, records: Records, checkpointer, notifications: Notifications,
                 dsn: str, settings: RunnerSettings | None = None, metrics: Metrics | None = None,
                 tracer: trace.Tracer | None = None):
        self.metrics = metrics
        self.tracer = tracer or trace.NoOpTracer()
        self.registry = registry
        self.records = records
        self.checkpointer = checkpointer
        self.notifications = notifications
        self.settings = settings or RunnerSettings()
        self._dsn = dsn
        self._active: dict[str, ActiveRun] = {}
        self._lease_view: dict[str, ActiveRun] = {}  # immutable snapshot for the lease thread
        self._wake = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._draining = False
        self._starting = 0  # runs started here whose acceptance the database has not answered yet
        self._handing_back = False
        self._worker: asyncio.Task | None = None
        self._leases: LeaseKeeper | None = None
        self._background: set[asyncio.Task] = set()

    @property
    def owner(self) -> str:
        return self.settings.owner

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.checkpointer.on_fenced = self._on_fenced
        self.notifications.subscribe("graphrun_run", lambda _: self._wake.set())
        self.notifications.subscribe("graphrun_event", self._on_event_note)
        self.notifications.subscribe("graphrun_cancel", self._on_cancel_note)
        loop = asyncio.get_running_loop()
        self._leases = LeaseKeeper(
            self._dsn, self.owner, self.settings.lease_seconds,
            runs=lambda: {a.run_id: (a.attempt, a.current_node, a.step, a.leased_at) for a in self._lease_view.values()},
            report=lambda lost, cancels: loop.call_soon_threadsafe(self._on_lease_report, lost, cancels))
        self._leases.start()
        self._worker = asyncio.create_task(self._work(), name="graphrun-worker")

    async def drain(self, grace: float) -> None:
        """Shutdown: claim nothing more, let runs finish for part of `grace`, then hand
        the rest back (at a step boundary if they reach one in time) for other replicas."""
        self._draining = True
        self._wake.set()
        for run_id in list(self._waiters):  # streams of runs executing elsewhere end now (SERVER_DRAINING)
            self._wake_followers(run_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        pending = [a.log.ended for a in self._active.values()]
        if pending:
            await asyncio.wait(pending, timeout=grace * 0.5)
        for active in list(self._active.values()):
            active.control.request_drain("shutdown")
        pending = [a.task for a in self._active.values() if a.task]
        if pending:
            await asyncio.wait(pending, timeout=max(deadline - loop.time() - 0.5, 0.1))
        await self._hand_back_all()

    async def _hand_back_all(self) -> None:
        """Stop every run executing here and return it to the queue for another replica."""
        self._handing_back = True  # runs the database accepts from now on are handed back at once
        for active in list(self._active.values()):
            active.stop(StopReason.HANDOFF, "the server shut down")
        tasks = [a.task for a in self._active.values() if a.task]
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def close(self) -> None:
        """Stop the worker and the lease thread (after drain, or in tests)."""
        self._draining = True
        await self._hand_back_all()
        if self._worker:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._leases:
            self._leases.stop()
            await asyncio.to_thread(self._leases.join, 5)

    # -- accepting ----------------------------------------------------------------------

    async def submit(self, req: RunRequest, start_delay: float = 0.0, *, queue: bool = True) -> RunRecord:
        """Validate against the graph and thread, record the run, and start it here if it can start now.

        A replica executing its maximum of runs queues new ones for any replica (`queue`,
        background runs) or refuses them with ReplicaBusy (a caller waiting for the run).
        """
        assistant = self.registry.get(req.assistant_id)
        self._check_request(assistant, req)
        await check_input(assistant, req.input, req.input_field or "input", req.thread_id, req.checkpoint_id)
        if req.thread_id and (req.checkpoint_id or (req.command and "resume" in req.command)):
            await self._check_thread_state(assistant, req)
        at_capacity = self._executing() >= self.settings.max_concurrent_runs
        if at_capacity and not queue:
            raise ReplicaBusy(self.settings.max_concurrent_runs)
        can_run_here = not self._draining and not at_capacity
        if not can_run_here and (pending := await self.records.count_pending()) >= self.settings.max_pending_runs:
            raise QueueFull(pending)
        run_id, thread_id, spec = str(uuid.uuid4()), req.thread_id or str(uuid.uuid4()), req.to_json()
        acceptance = dict(
            run_id=run_id, thread_id=thread_id, create_thread=req.create_thread or not req.thread_id,
            assistant_id=assistant.assistant_id, multitask_strategy=req.multitask_strategy,
            on_disconnect=req.on_disconnect, spec=spec, metadata=req.metadata, delay=start_delay,
            # A fork from an earlier checkpoint leaves a pending question where it is.
            has_input=req.input is not None and not req.checkpoint_id, owner=self.owner if can_run_here else None,
            lease=self.settings.lease_seconds)
        if can_run_here and start_delay <= 0:
            provisional = self._provisional(run_id, thread_id, assistant, req, spec)
            if not req.thread_id and req.durability != "exit":
                # A thread of its own: nothing can refuse the run (but an outage), so its acceptance
                # rides on its first checkpoint write (with `exit` that is the last: too late).
                rider = Rider(*self.records.begin_run_statement(**acceptance),
                              asyncio.get_running_loop().create_future())
                return await self._begin_here(self.records.begun_run(rider, thread_id, spec), provisional, rider)
            return await self._begin_here(self.records.begin_run(**acceptance), provisional)
        record = await self.records.begin_run(**acceptance)
        if start_delay > 0:
            asyncio.get_running_loop().call_later(start_delay, self._wake.set)
        return record

    async def _begin_here(self, begin, provisional: RunRecord, rider: Rider | None = None) -> RunRecord:
        """Record a run that can start here at once, getting its graph ready meanwhile.

        The run's task starts as the database call goes out; LangGraph's set-up (configs,
        channels, the loop) overlaps the round trip, and the run waits for the answer before
        its first checkpoint read, so no node runs before the run is accepted. A run the
        database refuses (a busy thread) or queues (`enqueue`) is dropped: no end, no events.
        The answer is acted on even if the caller is gone by then (a run the database recorded
        always executes). With a `rider` (a run on a thread it creates, which nothing but an outage
        can refuse) the acceptance goes out with the run's first checkpoint write instead, one
        round trip less (FencedPostgresSaver.aput). With `sync` durability a StateGraph's nodes
        still run only after that write (LangGraph's input step waits for it); with `async` the
        first nodes may start meanwhile, and none of their writes is stored before it.
        """
        begun = asyncio.ensure_future(begin)  # sent first; the set-up below overlaps it too
        admitted = asyncio.get_running_loop().create_future()
        active = self._prepare(Claim(provisional, 0, None), admitted)
        active.written.rider = rider
        self._starting += 1
        begun.add_done_callback(lambda done: self._admit(active, done))
        return await asyncio.shield(begun)

    def _admit(self, active: ActiveRun, begun: asyncio.Future) -> None:
        """The database answered a run started ahead of its answer: let it run, or drop it."""
        self._starting -= 1
        admitted = active.written.admitted
        if begun.cancelled() or begun.exception() is not None or begun.result().status != "running":
            admitted.set_exception(NotAdmitted())
            return
        active.record = begun.result()
        if active.written.rider is not None:  # accepted with its first checkpoint write: leased then
            active.leased_at = max(active.leased_at, active.written.rider.taken_at)
        try:
            self._register(active)
        except BaseException:
            admitted.set_exception(NotAdmitted())  # never leave the task waiting
            log.exception("run %s: could not start it here; its lease will lapse and a replica will run it",
                          active.run_id)
            return
        admitted.set_result(None)
        active.written.admitted = None  # no more waiting for the checkpointer
        if self._handing_back:
            active.stop(StopReason.HANDOFF, "the server shut down")

    def _provisional(self, run_id: str, thread_id: str, assistant: Assistant, req: RunRequest,
                     spec: dict[str, Any]) -> RunRecord:
        """The record a run started here will have, until the database's answer replaces it."""
        now = dt.datetime.now(dt.timezone.utc)
        return RunRecord(run_id=run_id, thread_id=thread_id, assistant_id=assistant.assistant_id,
                         status="running", attempt=1, multitask_strategy=req.multitask_strategy,
                         on_disconnect=req.on_disconnect, spec=spec, metadata=req.metadata, error=None,
                         queue_position=0, not_before=now, lease_owner=self.owner, lease_expires_at=None,
                         cancel_action=None, current_node=None, step=None, created_at=now, updated_at=now,
                         started_at=now, ended_at=None, owner=caller.get())

    def _check_request(self, assistant: Assistant, req: RunRequest) -> None:
        """What the graph would refuse: unknown nodes, malformed messages (the input: input_check)."""
        violations = [
            FieldViolation(f"spec.{name}[{i}]", f"graph {assistant.graph_id!r} has no node {node!r}; "
                                               f"nodes: {', '.join(assistant.nodes)}")
            for name in ("interrupt_before", "interrupt_after")
            for i, node in enumerate(getattr(req, name))
            if node not in assistant.nodes and node != "*"
        ]
        goto = (req.command or {}).get("goto", [])
        violations += [FieldViolation(f"spec.command.goto[{i}]", f"graph {assistant.graph_id!r} has no node {n!r}")
                       for i, n in enumerate(goto) if n not in assistant.nodes]
        violations += assistant.context_violations(req.context, req.config.get("configurable", {}))
        violations += assistant.message_violations((req.command or {}).get("update"), "spec.command.update")
        if violations:
            raise InvalidArgument(violations)

    async def _check_thread_state(self, assistant: Assistant, req: RunRequest) -> None:
        """A checkpoint id must belong to the thread; a resume needs something to resume."""
        await self.records.get_thread(req.thread_id)  # NOT_FOUND before anything else
        config = graph_config(req.thread_id, req.checkpoint_id)
        if req.checkpoint_id and await self.checkpointer.aget_tuple(config) is None:
            raise invalid("spec.checkpoint_id", f"thread {req.thread_id} has no checkpoint {req.checkpoint_id}")
        if req.command and "resume" in req.command:
            snapshot = await read_state(assistant.graph, config)
            if not snapshot.next:
                raise invalid("spec.command.resume", f"thread {req.thread_id} is not waiting on an interrupt")
            _check_resume(req.command["resume"], {i.id for i in snapshot.interrupts})

    # -- claiming -----------------------------------------------------------------------

    async def _work(self) -> None:
        """Claim runnable runs while there is capacity; sleep until NOTIFY or the lease sweep."""
        sweep = min(self.settings.lease_seconds / 2, 5.0)
        failing = False  # one line when claiming starts failing, not one per sweep
        while not self._draining:
            self._wake.clear()
            while not self._draining and self._executing() < self.settings.max_concurrent_runs:
                try:
                    claim = await self.records.claim(self.owner, self.settings.lease_seconds)
                except Exception as exc:
                    log.log(logging.DEBUG if failing else logging.WARNING, "claiming runs failed: %s",
                            type(exc).__name__)
                    failing = True
                    break
                failing = False
                if claim is None:
                    break
                try:
                    self._launch(claim)
                except Exception:  # one run that cannot start must not stop this replica claiming
                    log.exception("run %s could not start here; it is retried once its lease lapses",
                                  claim.run.run_id)
            try:
                await asyncio.wait_for(self._wake.wait(), sweep)
            except TimeoutError:
                pass

    def _launch(self, claim: Claim) -> None:
        active = self._prepare(claim)
        try:
            self._register(active)
        except BaseException:
            active.task.cancel()  # not registered: it would run with no lease kept
            raise

    def _executing(self) -> int:
        """Runs executing here, counting those whose acceptance is on its way."""
        return len(self._active) + self._starting

    def _prepare(self, claim: Claim, admitted: asyncio.Future | None = None) -> ActiveRun:
        """Start the run's task (which waits for `admitted`, if given, before touching the thread)."""
        run = claim.run
        active = ActiveRun(run, RunRequest.from_json(run.spec), ev.EventLog(after=claim.last_sequence))
        active.stored = claim.last_sequence
        active.leased_at = claim.requested_at  # its lease's age counts from here (storage/leases.py)
        active.written.admitted = admitted  # cleared once the database accepted the run
        # Without a thread id the run's thread was created with it: empty until the run writes.
        active.written.new_thread = active.request.thread_id is None and run.attempt == 1
        active.context = in_run_context(run.run_id, run.thread_id)  # the run's tasks log its ids
        active.context.run(watchdog.current_run.set, run.run_id)  # and answer for blocking the loop
        active.task = asyncio.create_task(self._execute(active, claim), name=f"run-{run.run_id}",
                                          context=active.context)
        return active

    def _register(self, active: ActiveRun) -> None:
        """The run executes here: its lease is kept, followers and cancels find it."""
        run = active.record
        older = self._active.get(run.run_id)
        if older is not None:  # our own earlier attempt lost its lease and we re-claimed the run
            older.stop(StopReason.LOST, "a newer attempt took the run over")
        self._active[run.run_id] = active
        self._lease_view = dict(self._active)
        if self.metrics:
            self.metrics.executing.set(len(self._active))
        active.span = self.tracer.start_span("graphrun.run", attributes={  # runs accepted here only
            "graphrun.run_id": run.run_id, "graphrun.thread_id": run.thread_id,
            "graphrun.assistant_id": run.assistant_id, "graphrun.attempt": run.attempt})
        if active.request.stream_modes:  # runs started by Wait store their two events when they end
            active.flusher = asyncio.create_task(self._flush_events(active), name=f"events-{run.run_id}",
                                                 context=active.context.copy())
        self._wake_followers(run.run_id)

    # -- executing ----------------------------------------------------------------------

    async def _execute(self, active: ActiveRun, claim: Claim) -> None:
        run, req = active.record, active.request  # a provisional record until admitted (same ids)
        status, error, state = "error", None, None
        timer = None
        if active.state is RunState.STARTING:  # else STOPPING: stopped before it began (see ActiveRun.stop)
            active.transition(RunState.EXECUTING)
        try:
            active.log.append(ev.METADATA, {"run_id": run.run_id, "thread_id": run.thread_id,
                                            "assistant_id": run.assistant_id, "attempt": run.attempt})
            if run.cancel_action or active.state is RunState.STOPPING:  # cancelled while no replica ran it,
                raise asyncio.CancelledError  # or stopped before its task began
            if run.attempt - run.handoffs > self.settings.max_attempts:  # hand-backs are not failures
                state = {}  # do not touch the graph's state again: it may be what kept failing
                raise RuntimeError(f"gave up after {self.settings.max_attempts} attempts; "
                                   "the replicas executing it stopped before it ended")
            if (claim.previous_status == "interrupted" and req.input is not None and not req.checkpoint_id
                    and run.attempt == 1):
                raise ThreadInterrupted(run.thread_id)  # queued behind a run that ended asking a question
            assistant = self.registry.get(run.assistant_id)
            if req.timeout:
                timer = asyncio.get_running_loop().call_later(
                    req.timeout, active.stop, StopReason.TIMEOUT, "the run's timeout passed")
            graph_input, resumed = await self._graph_input(active, assistant)
            config, context = self._run_config(active, assistant, resumed)
            active.translator = EventTranslator(req.stream_modes, active.log.append)
            async with assistant.source.for_run(_for_factory(config), context) as graph:
                if not (req.stream_modes or req.interrupt_before or req.interrupt_after):
                    active.written.finisher = self._finisher(active, graph)
                async for ns, mode, payload in stream_chunks(
                    graph, graph_input, config, req.stream_modes, req.subgraphs, durability=req.durability,
                    control=active.control, interrupt_before=_interrupt_nodes(req.interrupt_before),
                    interrupt_after=_interrupt_nodes(req.interrupt_after), context=context,
                ):
                    if mode == "debug" and not ns:
                        self._follow_progress(active, payload)
                    active.translator.translate(ns, mode, payload)
                if active.checkpoint is None:  # nothing ran (e.g. continuing a finished thread): ask the state
                    snapshot = await graph.aget_state(graph_config(run.thread_id))
                    state = snapshot_to_json(snapshot)
                    status = "interrupted" if snapshot.next else "success"
                else:  # the state itself is read while the end is recorded
                    status = "interrupted" if active.checkpoint["next"] else "success"
        except asyncio.CancelledError:
            unknown = active.reason is None and not run.cancel_action  # cancelled by no one we know of
            active.leave(StopReason.INTERRUPT if unknown else None, "the run's task was cancelled")
            await self._let_graph_exit(active)
        except NotAdmitted:
            pass
        except GraphDrained:
            active.leave(StopReason.HANDOFF)
        except DatabaseUnavailable:  # a checkpoint could not be read or written: not the graph's fault
            log.warning("run %s: the database went away; the run continues once it is back", run.run_id)
            active.leave(StopReason.OUTAGE)
        except ThreadInterrupted as exc:
            error = {"type": "ThreadInterrupted", "message": exc.message, "reason": exc.reason}
        except GraphRecursionError as exc:
            error = {"type": type(exc).__name__, "message": str(exc).split("\n")[0]}
        except Exception as exc:  # the graph, a model or a tool failed: the run fails, the server does not
            if _fenced_off(exc):
                active.leave(StopReason.LOST, fact=True)
            else:
                log.info("run %s failed: %s", run.run_id, type(exc).__name__)
                error = {"type": type(exc).__name__, "message": str(exc)}
        finally:
            active.leave()  # a stop's repeated cancel must not cut the end's recording
            if timer:
                timer.cancel()
        if (rider := active.written.rider) is not None and rider.take():  # it wrote no checkpoint
            rider.sending = asyncio.ensure_future(self.records.send_alone(rider))
        if not await self._admitted(active):
            active.transition(RunState.DONE)
            return
        run = active.record
        if active.reason is None and run.cancel_action:
            active.leave(StopReason(run.cancel_action), "stopped while no replica executed it")
        if active.reason in STOP_STATUS:
            status = STOP_STATUS[active.reason]
            error = {"type": STOP_ERROR_TYPE.get(active.reason, "CancelledError"), "message": active.message}
        if error is not None:
            error.setdefault("reason", RUN_FAILURE_CODES[status][1])
        await self._settle(active, status, error, state)

    def _finisher(self, active: ActiveRun, graph) -> Callable[[dict], tuple[str, tuple] | None]:
        """For a run whose only events are its metadata and end (no stream modes): the end of
        the run goes in the transaction of its last checkpoint, one round trip less. A checkpoint
        is the last when LangGraph can find nothing to run after it (`may_have_next_tasks`);
        the run then completed, whatever stops it from here on."""
        def finish(checkpoint: dict) -> tuple[str, tuple] | None:
            if active.state is not RunState.EXECUTING or may_have_next_tasks(graph, checkpoint):
                return None
            run = active.record
            active.ending = active.log.next_event(ev.END, {"status": "success", "error": None,
                                                           "checkpoint_id": checkpoint["id"]})
            return self.records.finish_run_statement(run.run_id, run.attempt, "success", None, active.current_node,
                                                     active.step, active.log.since(active.stored) + [active.ending])
        return finish

    @staticmethod
    async def _let_graph_exit(active: ActiveRun) -> None:
        """Wait for the writes the run still has on their way as it leaves the graph. A stop's
        repeated cancel can reach LangGraph while it exits waiting for the checkpoint writes it
        started; it then stops waiting, the writes do not stop, and recording the end (or a
        rollback) meanwhile would come before the last of them."""
        try:
            await asyncio.shield(active.written.settled())
        except asyncio.CancelledError:  # cancelled by someone else (shutdown): the run ends either way
            pass

    @staticmethod
    async def _admitted(active: ActiveRun) -> bool:
        """Whether the database accepted a run started before its answer (see `_begin_here`)."""
        admitted = active.written.admitted  # None: accepted (or never waited for)
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

    async def _settle(self, active: ActiveRun, status: str, error: dict | None, state: dict | None) -> None:
        """Record how the attempt ended — finished, handed back, or lost — and tell the followers."""
        run = active.record
        recorded = active.written.finished  # the end went with the run's last checkpoint
        # It completed, then: a stop that came after changes nothing (a fact: no reason).
        active.transition(RunState.SETTLING, None, fact=recorded is not None)
        if recorded is not None:
            status, error = "success", None
        error = to_json(error) if error else None
        try:
            active.log.poke()  # the flusher stops (it watches `settling`)
            if active.flusher:
                await asyncio.shield(active.flusher)
            if active.reason is StopReason.LOST:
                log.warning("run %s attempt %s lost to another replica; stopped here without writing",
                            run.run_id, run.attempt)
                return
            if active.reason in (StopReason.HANDOFF, StopReason.OUTAGE):
                if active.reason is StopReason.OUTAGE:
                    active.log.close("outage")  # followers go to the database: UNAVAILABLE until it is back
                await self._release(active, patience=self.settings.lease_seconds * 2 / 3
                                    if active.reason is StopReason.OUTAGE else 0.0)
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
                end = active.log.next_event(ev.END, {
                    "status": status, "error": error,
                    "checkpoint_id": active.checkpoint["ref"].get("checkpoint_id") if active.checkpoint else None})
                finished = await self.records.finish_run(run.run_id, run.attempt, status, error,
                                                         active.current_node, active.step,
                                                         active.log.since(active.stored) + [end], run.spec)
            state = (await reading if reading else state) or None
            if finished is None:
                active.transition(RunState.SETTLING, StopReason.LOST, fact=True)
                log.warning("run %s attempt %s lost to another replica before it could finish",
                            run.run_id, run.attempt)
                return
            active.record = finished
            state = state if state and state.get("checkpoint") else None
            active.log.publish(ev.RunEvent(end.sequence, ev.END, {**end.data, "run": finished, "state": state},
                                           end.time))
            active.log.mark_durable(end.sequence)
        except Exception:
            log.exception("run %s: could not record how it ended; its lease will lapse and another "
                          "replica will finish it", run.run_id)
            active.transition(RunState.SETTLING, StopReason.LOST)
        finally:
            if self._active.get(run.run_id) is active:
                if self._executing() >= self.settings.max_concurrent_runs:
                    self._wake.set()  # capacity freed: runs may be waiting for it
                del self._active[run.run_id]
                self._lease_view = dict(self._active)
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
            except Exception as exc:
                if loop.time() + delay > give_up:
                    log.warning("run %s: could not hand it back (%s); its lease will lapse",
                                active.run_id, type(exc).__name__)
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
            self.metrics.executing.set(len(self._active))
            self.metrics.run_finished(outcome, time.monotonic() - active.started)

    @staticmethod
    def _completed_state(active: ActiveRun, status: str) -> dict | None:
        """The thread's state after a run that completed, from what the run itself saw and
        stored — what `aget_state` would read back, without reading it. None when unsure.

        A completed run's last checkpoint has no next tasks, hence no tasks or interrupts,
        and nothing was written to it after: its state is the values the graph announced
        with it, and the checkpoint row the run stored (id, parent, time, metadata).
        """
        stored, announced = active.written.latest, active.checkpoint
        if (status != "success" or stored is None or announced is None or announced["next"]
                or announced["ref"].get("checkpoint_id") != stored.checkpoint_id
                or stored.checkpoint_id in active.written.written):
            return None

        def config(checkpoint_id: str) -> dict:
            return {"configurable": {"thread_id": stored.thread_id, "checkpoint_ns": "",
                                     "checkpoint_id": checkpoint_id}}

        parent = config(stored.parent_checkpoint_id) if stored.parent_checkpoint_id else None
        return snapshot_to_json(StateSnapshot(
            values=announced["values"], next=(), config=config(stored.checkpoint_id), metadata=stored.metadata,
            created_at=stored.created_at, parent_config=parent, tasks=(), interrupts=()))

    async def _final_state(self, active: ActiveRun) -> dict | None:
        try:
            assistant = self.registry.get(active.record.assistant_id)
            return snapshot_to_json(await assistant.graph.aget_state(graph_config(active.thread_id)))
        except Exception as exc:  # its type only: a reducer's message may quote the run's input
            log.warning("run %s: could not read the final state: %s", active.run_id, type(exc).__name__)
            return None

    async def _graph_input(self, active: ActiveRun, assistant: Assistant) -> tuple[Any, bool]:
        """(input, resumed): the request's input (its messages built as LangChain's, every field
        kept), or None to continue from the checkpoint an earlier attempt of this run wrote (so
        completed steps do not run again)."""
        run, req = active.record, active.request
        if run.attempt > 1:
            latest = await self.checkpointer.aget_tuple(graph_config(run.thread_id))
            if latest is not None and latest.metadata.get("run_id") == run.run_id:
                return None, True
        if req.command is not None:
            cmd = req.command
            return Command(resume=cmd.get("resume"), update=assistant.messages_from_json(cmd.get("update")),
                           goto=cmd.get("goto") or ()), False
        return assistant.messages_from_json(req.input), False

    def _run_config(self, active: ActiveRun, assistant: Assistant, resumed: bool) -> tuple[dict[str, Any], Any]:
        """The run's RunnableConfig, and the context object the graph reads as `runtime.context`.

        As in LangGraph Server, the context's values are visible in `configurable` too (the
        caller's own `configurable` wins there), and so is the caller's identity
        (`langgraph_auth_user_id`), by which graphs written for it keep each user's Store items apart."""
        run, req = active.record, active.request
        user = req.config
        configurable = user.get("configurable", {})
        context_values = assistant.run_context(req.context, configurable)
        config = graph_config(run.thread_id, None if resumed else req.checkpoint_id)
        config["configurable"] = {**(context_values or {}), **configurable, **config["configurable"],
                                  FENCE_KEY: (run.run_id, run.attempt), CHECKPOINTS_KEY: active.written}
        if run.owner:
            config["configurable"]["langgraph_auth_user_id"] = run.owner
        config["recursion_limit"] = user.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if user.get("tags"):
            config["tags"] = list(user["tags"])
        config["metadata"] = {**req.metadata, "run_id": run.run_id, "thread_id": run.thread_id,
                              "assistant_id": assistant.assistant_id, "graph_id": assistant.graph_id}
        config["run_id"] = uuid.UUID(run.run_id)
        return config, assistant.build_context(context_values)

    def _follow_progress(self, active: ActiveRun, entry: dict[str, Any]) -> None:
        """Where the run is, from the root graph's debug stream: its last checkpoint (to
        record its end without reading the state back), its current node and step, node spans."""
        kind = entry.get("type")
        if kind == "checkpoint":
            checkpoint = entry["payload"]
            active.checkpoint = {"ref": checkpoint["config"]["configurable"], "next": checkpoint["next"],
                                 "values": checkpoint["values"]}
        elif kind in ("task", "task_result"):
            task, step = entry["payload"], entry.get("step", 0)
            if active.current_node is None and self._leases is not None:
                self._leases.nudge()  # its first node: stored at once, not at the next renewal
            active.current_node, active.step = task["name"], step
            self._trace_node(active, task, step, kind == "task_result")

    def _trace_node(self, active: ActiveRun, task: dict, step: int, finished: bool) -> None:
        """A child span of the run's span per node execution."""
        if not finished:
            active.node_spans[task["id"]] = self.tracer.start_span(
                f"graphrun.node {task['name']}", context=trace.set_span_in_context(active.span),
                attributes={"graphrun.node": task["name"], "graphrun.step": step})
        elif (span := active.node_spans.pop(task["id"], None)) is not None:
            if task.get("error"):
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(task["error"])[:200]))
            span.end()

    async def _flush_events(self, active: ActiveRun) -> None:
        """Store the run's events as they come, for followers here and on other replicas.

        Each store takes every event appended since the last one (so batches grow
        by themselves while a store is in flight); followers see events once stored.
        Stops when the run settles, which stores the rest with the end event.
        """
        backoff = 0.05
        while not active.settling.is_set():
            await active.log.wait_beyond(active.stored)
            if active.settling.is_set():
                return
            if await self._store_pending_events(active):
                backoff = 0.05
            else:
                try:  # the database is unreachable: retry later, unless the run settles first
                    await asyncio.wait_for(active.settling.wait(), backoff)
                except TimeoutError:
                    backoff = min(backoff * 2, 2.0)

    async def _store_pending_events(self, active: ActiveRun) -> bool:
        """Store the events not stored yet. False if that failed (or the run was lost)."""
        batch = active.log.since(active.stored)
        if not batch:
            return True
        try:
            owned = await self.records.append_events(active.run_id, active.attempt, batch)
        except Exception as exc:
            log.warning("run %s: storing events failed (%s); will retry", active.run_id, type(exc).__name__)
            return False
        if not owned:
            active.stop(StopReason.LOST, "another replica took the run over")
            return False
        active.stored = batch[-1].sequence
        active.log.mark_durable(active.stored)
        return True

    # -- stopping -----------------------------------------------------------------------

    def _executing_here(self, run_id: str) -> ActiveRun | None:
        """The run's attempt executing here, unless it is leaving this replica (handed back, lost,
        outage): the database carries a stop of such a run to wherever it goes on."""
        active = self._active.get(run_id)
        return active if active is not None and active.reason not in MOVES else None

    async def cancel(self, run_id: str, action: str, message: str, wait: bool = False) -> RunRecord:
        """Stop a run wherever it executes. action: interrupt | rollback | timeout."""
        if await self.records.get_run(run_id) is None:  # unknown, or another caller's
            raise RunNotFound(run_id)
        active = self._executing_here(run_id)
        if active is not None:
            active.stop(StopReason(action), message)
            if wait:
                await self.wait_end(run_id)
            record = await self.records.get_run(run_id)
        else:
            record = await self.records.cancel_run(run_id, action, message)
            if record is None:
                raise RunNotFound(run_id)
            if wait and not record.ended:
                await self.wait_end(run_id)
                record = await self.records.get_run(run_id)
        return record

    def cancel_soon(self, run_id: str, action: str, message: str) -> None:
        """`cancel` from a handler that is itself being cancelled (its caller left). A run executing
        here is stopped at once, with no round trip that a database blip could lose."""
        if self._draining:
            return  # runs move to other replicas; callers can join them there
        active = self._executing_here(run_id)
        if active is not None:
            active.stop(StopReason(action), message)
            return
        task = asyncio.get_running_loop().create_task(self.cancel(run_id, action, message))
        self._background.add(task)

        def done(task: asyncio.Task) -> None:
            self._background.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.warning("run %s: could not stop it after its caller left: %s", run_id,
                            type(task.exception()).__name__)

        task.add_done_callback(done)

    def _on_cancel_note(self, payload: str | None) -> None:
        if not payload:
            return
        run_id, _, action = payload.partition(" ")
        active = self._active.get(run_id)
        if active is not None:
            active.stop(StopReason(action or "interrupt"), "cancelled")

    def _on_fenced(self, run_id: str, attempt: int) -> None:
        """A checkpoint write was refused: stop at once, before running more nodes."""
        active = self._active.get(run_id)
        if active is not None and active.attempt == attempt:
            active.stop(StopReason.LOST, "another replica took the run over")

    def on_loop_blocked(self, run_id: str, seconds: float) -> None:
        """A task of this run held the event loop for `seconds` (see watchdog.py): the run fails."""
        active = self._active.get(run_id)
        if active is None:
            return
        node = f"node {active.current_node!r}" if active.current_node else "the graph"
        message = (f"{node} blocked the server's event loop for {seconds:.1f} s, stalling every run; "
                   "call blocking code from a sync node or asyncio.to_thread")
        log.warning("run %s: %s", run_id, message)
        active.stop(StopReason.BLOCKED, message)

    def _on_lease_report(self, lost: dict[str, int], cancels: dict[str, str]) -> None:
        """lost: run id -> the attempt whose lease was lost (a newer attempt of ours is not)."""
        for run_id, attempt in lost.items():
            active = self._active.get(run_id)
            if active is not None and active.attempt == attempt and active.reason is None:
                log.warning("run %s: lease lost; stopped here, another replica continues it", run_id)
                active.stop(StopReason.LOST, "lease lost")
        for run_id, action in cancels.items():
            if (active := self._active.get(run_id)) is not None:
                active.stop(StopReason(action), "cancelled")

    # -- following ----------------------------------------------------------------------

    def _on_event_note(self, payload: str | None) -> None:
        if payload is None:  # reconnected: anything may have happened
            for run_id in list(self._waiters):
                self._wake_followers(run_id)
        elif payload:
            self._wake_followers(payload)

    def _wake_followers(self, run_id: str) -> None:
        for waiter in self._waiters.get(run_id, ()):
            waiter.set()

    async def follow(self, run_id: str, after: int = 0, deadline: float | None = None) -> AsyncIterator[ev.RunEvent]:
        """Yield the run's events numbered after `after`, up to its end event, from wherever it runs.

        Local attempts are followed in memory; others through the database, woken by
        NOTIFY. Raises RunNotFound, TimeoutError (deadline, event-loop time), or
        ServerDraining when this replica hands the run over while shutting down.
        """
        loop = asyncio.get_running_loop()
        position = after
        while True:
            active = self._active.get(run_id)
            if active is not None and active.log.closed is None and position >= active.log.base:
                try:
                    async for event in active.log.follow(position, deadline):
                        position = event.sequence
                        yield event
                    return
                except ev.RunMoved as moved:
                    if moved.reason == "handoff" and self._draining:
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
                for event in stored:
                    if event.kind == ev.END and "run" not in event.data:
                        run = await self.records.get_run(run_id)
                        state = await self._state_at(run, event.data.get("checkpoint_id"))
                        event = ev.RunEvent(event.sequence, event.kind, {**event.data, "run": run, "state": state},
                                            event.time, event.namespace)
                    position = event.sequence
                    yield event
                    if event.kind == ev.END:
                        return
                if stored or (run_id in self._active and self._active[run_id].log.closed is None):
                    continue
                if self._draining:  # shutting down: the caller follows the run through another replica
                    raise ServerDraining(run_id, position)
                timeout = 5.0 if deadline is None else min(deadline - loop.time(), 5.0)
                if timeout <= 0:
                    raise TimeoutError
                try:  # NOTIFY wakes us; the timeout only covers a notification lost in a reconnect
                    await asyncio.wait_for(waiter.wait(), timeout)
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
            graph = self.registry.get(run.assistant_id).graph
            state = snapshot_to_json(await graph.aget_state(graph_config(run.thread_id, checkpoint_id)))
        except Exception:
            log.warning("run %s: could not read the thread's state", run.run_id, exc_info=True)
            return None
        return state if state.get("checkpoint") else None

    @staticmethod
    def _pruned_end(run: RunRecord, position: int) -> ev.RunEvent:
        """An end event made from the run record, for a run whose stored events were pruned."""
        return ev.RunEvent(position + 1, ev.END, {"status": run.status, "error": run.error, "state": None,
                                                  "run": run}, run.ended_at.timestamp())

    async def wait_end(self, run_id: str, deadline: float | None = None) -> ev.RunEvent:
        """The run's end event, waiting for it (see `follow` for the errors)."""
        async for event in self.follow(run_id, 0, deadline):
            if event.kind == ev.END:
                return event
        raise RuntimeError(f"run {run_id} ended without an end event")


def _check_resume(resume: Any, pending: set[str]) -> None:
    """Refuse, before the run is recorded, a resume LangGraph could not apply: a map naming no
    pending interrupt, or one value for several interrupts (LangGraph takes an object whose
    keys are all interrupt ids as a map by id, as here)."""
    ids = ", ".join(sorted(pending))
    if isinstance(resume, dict) and all(is_xxh3_128_hexdigest(k) for k in resume):
        if not resume:
            raise invalid("spec.command.resume", f"names no interrupt; pending interrupts: {ids}")
        if unknown := sorted(resume.keys() - pending):
            raise invalid("spec.command.resume", f"interrupt {unknown[0]} is not pending; pending interrupts: {ids}")
    elif len(pending) > 1:
        raise invalid("spec.command.resume", f"{len(pending)} interrupts are pending: answer them with an object "
                                             f"keyed by interrupt id; pending interrupts: {ids}")


def _interrupt_nodes(nodes: list[str]) -> list[str] | str | None:
    """interrupt_before/after as LangGraph takes them: "*" (every node) stands alone."""
    return "*" if "*" in nodes else (nodes or None)


def _for_factory(config: dict[str, Any]) -> dict[str, Any]:
    """The run's config as a graph factory sees it: without graphrun's own plumbing."""
    configurable = {k: v for k, v in config["configurable"].items() if not k.startswith("__graphrun")}
    return {**{k: v for k, v in config.items() if k != "run_id"}, "configurable": configurable}
