"""Execution: one attempt of a run, from its graph's set-up to the end it hands to settling.

Why a task the runner owns: gRPC cancels a handler's task when its caller goes away; the graph
must not be torn down halfway by that. The attempt streams the graph with the modes asked for
plus LangGraph's `debug` mode (which says where the run is: node, step, last checkpoint) and
turns each chunk into events. An attempt after the first continues from the run's last
checkpoint (input None) when the run wrote one, so completed steps do not run again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from langgraph.errors import GraphDrained, GraphRecursionError
from langgraph.types import Command
from opentelemetry import trace

from .. import events as ev
from ..errors import RUN_FAILURE_CODES, SQLSTATE_NOT_OWNER, DatabaseUnavailable, ThreadInterrupted
from ..registry import Assistant, Registry
from ..snapshots import may_have_next_tasks, snapshot_to_json
from ..storage.checkpointer import RUN_KEY, CheckpointedRun
from ..storage.records import Claim, Records, RunRecord
from ..stream_events import EventTranslator, chunks as stream_chunks
from .admission import NotAdmitted, wait_admitted
from .local import LocalRuns
from .request import graph_config, reserved
from .settling import Settlement
from .state import STOP_ERROR_TYPE, STOP_STATUS, ActiveRun, RunState, StopReason, log

DEFAULT_RECURSION_LIMIT = 25


def metadata_event(run: RunRecord) -> dict[str, Any]:
    """An attempt's first event. A run accepted to start here at once has it stored with its
    acceptance, built by the same query (`Records.begin_run_statement`): keep the two alike."""
    return {"run_id": run.run_id, "thread_id": run.thread_id, "assistant_id": run.assistant_id, "attempt": run.attempt}


class Execution:
    def __init__(
        self,
        local: LocalRuns,
        registry: Registry,
        records: Records,
        checkpointer,
        settlement: Settlement,
        tracer: trace.Tracer,
        nudge: Callable[[], None],
    ):
        self.local, self.registry, self.records, self.checkpointer = local, registry, records, checkpointer
        self.settlement, self.tracer, self._nudge = settlement, tracer, nudge

    async def execute(self, active: ActiveRun, claim: Claim) -> None:
        run, req = active.record, active.request  # a provisional record until admitted (same ids)
        status, error, state = "error", None, None
        timer = None
        if active.state is RunState.STARTING:  # else STOPPING: stopped before it began (see ActiveRun.stop)
            active.transition(RunState.EXECUTING)
        try:
            active.log.append(ev.METADATA, metadata_event(run))
            if run.cancel_action or active.state is RunState.STOPPING:  # cancelled while no replica ran it,
                raise asyncio.CancelledError  # or stopped before its task began
            if run.attempt - run.handoffs > self.local.settings.max_attempts:  # hand-backs are not failures
                state = {}  # do not touch the graph's state again: it may be what kept failing
                raise RuntimeError(
                    f"gave up after {self.local.settings.max_attempts} attempts; "
                    "the replicas executing it stopped before it ended"
                )
            if (
                claim.previous_status == "interrupted"
                and req.input is not None
                and not req.checkpoint_id
                and run.attempt == 1
            ):
                raise ThreadInterrupted(run.thread_id)  # queued behind a run that ended asking a question
            assistant = self.registry.get(run.graph)
            if req.timeout:
                timer = asyncio.get_running_loop().call_later(
                    req.timeout, active.stop, StopReason.TIMEOUT, "the run's timeout passed"
                )
            graph_input, resumed = await self._graph_input(active, assistant)
            config, context = self._run_config(active, assistant, resumed)
            active.translator = EventTranslator(req.stream_modes, active.log.append)
            async with assistant.source.for_run(_for_factory(config), context) as graph:
                if not (req.stream_modes or req.interrupt_before or req.interrupt_after):
                    active.finisher = self._finisher(active, graph)
                async for ns, mode, payload in stream_chunks(
                    graph,
                    graph_input,
                    config,
                    req.stream_modes,
                    req.subgraphs,
                    durability=req.durability,
                    control=active.control,
                    interrupt_before=_interrupt_nodes(req.interrupt_before),
                    interrupt_after=_interrupt_nodes(req.interrupt_after),
                    context=context,
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
        except Exception as exc:  # noqa: BLE001 - the graph, a model or a tool failed: the run fails, the server does not
            if _fenced_off(exc):
                active.leave(StopReason.LOST, fact=True)
            else:
                log.info("run %s failed: %s", run.run_id, type(exc).__name__)
                error = {"type": type(exc).__name__, "message": str(exc)}
        finally:
            active.leave()  # a stop's repeated cancel must not cut the end's recording
            if timer:
                timer.cancel()
        if (rider := active.rider) is not None and rider.take():  # it wrote no checkpoint
            rider.sending = asyncio.ensure_future(self.records.send_alone(rider))
        if not await wait_admitted(active):
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
        await self.settlement.settle(active, status, error, state)

    def _finisher(self, active: ActiveRun, graph) -> Callable[[dict], tuple[str, tuple] | None]:
        """For a run whose only events are its metadata and end (no stream modes): the end of
        the run goes in the transaction of its last checkpoint, one round trip less. A checkpoint
        is the last when LangGraph can find nothing to run after it (`may_have_next_tasks`);
        the run then completed, whatever stops it from here on: it is SETTLING, and a stop
        (a lease renewal that finds the run ended by this very write, among others) no
        longer cancels the write before the run hears its answer."""

        def finish(checkpoint: dict) -> tuple[str, tuple] | None:
            if active.state is not RunState.EXECUTING or may_have_next_tasks(graph, checkpoint):
                return None
            active.transition(RunState.SETTLING)
            run = active.record
            active.ending = active.log.next_event(
                ev.END, {"status": "success", "error": None, "checkpoint_id": checkpoint["id"]}
            )
            return self.records.finish_run_statement(
                run.run_id,
                run.attempt,
                "success",
                None,
                active.current_node,
                active.step,
                [*active.log.since(active.stored), active.ending],
            )

        return finish

    @staticmethod
    async def _let_graph_exit(active: ActiveRun) -> None:
        """Wait for the writes the run still has on their way as it leaves the graph. A stop's
        repeated cancel can reach LangGraph while it exits waiting for the checkpoint writes it
        started; it then stops waiting, the writes do not stop, and recording the end (or a
        rollback) meanwhile would come before the last of them."""
        try:
            await asyncio.shield(active.checkpoints.settled())
        except asyncio.CancelledError:  # cancelled by someone else (shutdown): the run ends either way
            pass

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
            return Command(
                resume=cmd.get("resume"),
                update=assistant.messages_from_json(cmd.get("update")),
                goto=cmd.get("goto") or (),
            ), False
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
        config["configurable"] = {
            # not the keys naming the thread and checkpoint: a context field named so would move the run
            **{k: v for k, v in (context_values or {}).items() if not reserved(k)},
            **configurable,
            **config["configurable"],
            RUN_KEY: self._checkpointed(active),
        }
        if run.owner:
            config["configurable"]["langgraph_auth_user_id"] = run.owner
        config["recursion_limit"] = user.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if user.get("tags"):
            config["tags"] = list(user["tags"])
        config["metadata"] = {
            **req.metadata,
            "run_id": run.run_id,
            "thread_id": run.thread_id,
            "assistant_id": run.assistant_id,
            "graph_id": assistant.graph_id,
        }
        config["run_id"] = uuid.UUID(run.run_id)
        return config, assistant.build_context(context_values)

    @staticmethod
    def _checkpointed(active: ActiveRun) -> CheckpointedRun:
        """The one object the checkpointer gets: the attempt itself, seen through CheckpointedRun."""
        return active

    def _follow_progress(self, active: ActiveRun, entry: dict[str, Any]) -> None:
        """Where the run is, from the root graph's debug stream: its last checkpoint (to
        record its end without reading the state back), its current node and step, node spans."""
        kind = entry.get("type")
        if kind == "checkpoint":
            checkpoint = entry["payload"]
            active.checkpoint = {
                "ref": checkpoint["config"]["configurable"],
                "next": checkpoint["next"],
                "values": checkpoint["values"],
            }
        elif kind in ("task", "task_result"):
            task, step = entry["payload"], entry.get("step", 0)
            if active.current_node is None:
                self._nudge()  # its first node: stored at once, not at the next renewal
            active.current_node, active.step = task["name"], step
            self._trace_node(active, task, step, kind == "task_result")

    def _trace_node(self, active: ActiveRun, task: dict, step: int, finished: bool) -> None:
        """A child span of the run's span per node execution."""
        if not finished:
            active.node_spans[task["id"]] = self.tracer.start_span(
                f"graphrun.node {task['name']}",
                context=trace.set_span_in_context(active.span),
                attributes={"graphrun.node": task["name"], "graphrun.step": step},
            )
        elif (span := active.node_spans.pop(task["id"], None)) is not None:
            if task.get("error"):
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(task["error"])[:200]))
            span.end()


def _fenced_off(exc: BaseException) -> bool:
    """Did a checkpoint write fail because another replica owns the run now?"""
    while exc is not None:
        if isinstance(exc, psycopg.Error) and exc.sqlstate == SQLSTATE_NOT_OWNER:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupt_nodes(nodes: list[str]) -> list[str] | str | None:
    """interrupt_before/after as LangGraph takes them: "*" (every node) stands alone."""
    return "*" if "*" in nodes else (nodes or None)


def _for_factory(config: dict[str, Any]) -> dict[str, Any]:
    """The run's config as a graph factory sees it: without graphrun's own plumbing."""
    configurable = {k: v for k, v in config["configurable"].items() if not k.startswith("__graphrun")}
    return {**{k: v for k, v in config.items() if k != "run_id"}, "configurable": configurable}
