"""The graph runner: the one place where runs execute.

RPC handlers never run a graph. They ask the runner to start a run, then follow
its event log (Stream) or await its end event (Wait). The run executes in a task
the runner owns, so a handler cancelled by its deadline or a departed client
cannot tear the graph down halfway; the handler asks the runner to stop the run
instead, and the runner records why.

Cost of a run, beyond the graph's own checkpoint writes: one statement to
record it (and mark its thread busy), one to mark it running, one to read the
final state, one to record its end (and free the thread).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command

from . import events as ev
from .errors import FieldViolation, InvalidArgument, RUN_FAILURE_CODES, invalid
from .registry import Assistant, Registry
from .snapshots import empty_state, interrupt_to_json, snapshot_to_json
from .storage.records import Records, RunRecord
from .wire import message_to_json, to_json

log = logging.getLogger(__name__)

# API stream mode -> the LangGraph modes that feed it.
STREAM_MODES = {
    "values": ("values",),
    "updates": ("updates",),
    "messages": ("messages", "updates"),  # updates: to send each streamed message complete at the end
    "custom": ("custom",),
    "tasks": ("debug",),  # debug's task events carry the step; plain `tasks` mode does not
}
DEFAULT_RECURSION_LIMIT = 25


@dataclass
class RunRequest:
    """A validated run specification (what `RunSpec` says, in Python terms)."""

    assistant_id: str
    thread_id: str | None = None
    input: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    interrupt_before: list[str] = field(default_factory=list)
    interrupt_after: list[str] = field(default_factory=list)
    multitask_strategy: str = "reject"
    create_thread: bool = False
    checkpoint_id: str | None = None
    durability: str = "async"
    stream_modes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """What is stored as the run's `spec`."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}


@dataclass
class ActiveRun:
    """A run executing in this process."""

    record: RunRecord
    log: ev.EventLog
    task: asyncio.Task | None = None
    stop_status: str | None = None  # why the run is being stopped: "timeout" or "cancelled"
    streamed: dict[str, int] = field(default_factory=dict)  # message id -> step, for messages sent as deltas

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def thread_id(self) -> str:
        return self.record.thread_id


class GraphRunner:
    """Starts, executes and stops runs; keeps each running run's event log."""

    def __init__(self, registry: Registry, records: Records, checkpointer: BaseCheckpointSaver):
        self.registry = registry
        self.records = records
        self.checkpointer = checkpointer
        self._active: dict[str, ActiveRun] = {}

    # -- starting -----------------------------------------------------------------

    async def start(self, req: RunRequest) -> ActiveRun:
        """Validate against the graph and thread, record the run, and start executing it."""
        assistant = self.registry.get(req.assistant_id)
        self._check_nodes(assistant, req)
        if req.thread_id and (req.checkpoint_id or (req.command and "resume" in req.command)):
            await self._check_thread_state(assistant, req)
        run_id = str(uuid.uuid4())
        record = await self.records.begin_run(
            run_id=run_id, thread_id=req.thread_id or str(uuid.uuid4()),
            create_thread=req.create_thread or not req.thread_id, assistant_id=assistant.assistant_id,
            multitask_strategy=req.multitask_strategy, spec=to_json(req.to_json()), metadata=req.metadata)
        active = ActiveRun(record, ev.EventLog())
        self._active[run_id] = active
        active.task = asyncio.create_task(self._execute(active, assistant, req), name=f"run-{run_id}")
        return active

    def _check_nodes(self, assistant: Assistant, req: RunRequest) -> None:
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
        if violations:
            raise InvalidArgument(violations)

    async def _check_thread_state(self, assistant: Assistant, req: RunRequest) -> None:
        """A checkpoint id must belong to the thread; a resume needs something to resume."""
        await self.records.get_thread(req.thread_id)  # NOT_FOUND before anything else
        config = self._graph_config(req.thread_id, req.checkpoint_id)
        if req.checkpoint_id and await self.checkpointer.aget_tuple(config) is None:
            raise invalid("spec.checkpoint_id", f"thread {req.thread_id} has no checkpoint {req.checkpoint_id}")
        if req.command and "resume" in req.command:
            snapshot = await assistant.graph.aget_state(config)
            if not snapshot.next:
                raise invalid("spec.command.resume", f"thread {req.thread_id} is not waiting on an interrupt")

    @staticmethod
    def _graph_config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
        if checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    # -- executing ----------------------------------------------------------------

    async def _execute(self, active: ActiveRun, assistant: Assistant, req: RunRequest) -> None:
        run = active.record
        attempt = 0
        status, error, state = "error", None, None
        try:
            attempt = await self.records.mark_running(run.run_id)
            active.log.append(ev.METADATA, {"run_id": run.run_id, "thread_id": run.thread_id,
                                            "assistant_id": run.assistant_id, "attempt": attempt})
            graph = assistant.graph
            config = self._run_config(run, assistant, req)
            modes = sorted({m for api_mode in req.stream_modes for m in STREAM_MODES[api_mode]} | {"updates"})
            async for mode, payload in graph.astream(
                self._graph_input(req), config, stream_mode=modes, durability=req.durability,
                interrupt_before=req.interrupt_before or None, interrupt_after=req.interrupt_after or None,
            ):
                self._publish(active, req.stream_modes, mode, payload)
            snapshot = await graph.aget_state(self._graph_config(run.thread_id))
            state = snapshot_to_json(snapshot)
            status = "interrupted" if snapshot.next else "success"
        except asyncio.CancelledError:
            status = active.stop_status or "cancelled"
            error = {"type": "TimeoutError" if status == "timeout" else "CancelledError",
                     "message": "the run's deadline passed" if status == "timeout" else "the run was cancelled"}
        except GraphRecursionError as exc:
            error = {"type": type(exc).__name__, "message": str(exc).split("\n")[0]}
        except Exception as exc:  # the graph, a model or a tool failed: the run fails, the server does not
            log.info("run %s failed: %s", run.run_id, type(exc).__name__)
            error = {"type": type(exc).__name__, "message": str(exc)}
        if error is not None:
            error["reason"] = RUN_FAILURE_CODES[status][1]
        await self._finish(active, assistant, attempt, status, error, state)

    async def _finish(self, active: ActiveRun, assistant: Assistant, attempt: int, status: str,
                      error: dict | None, state: dict | None) -> None:
        """Record the end, free the thread, and publish the end event — whatever happened before."""
        run = active.record
        try:
            if state is None:
                try:
                    state = snapshot_to_json(await assistant.graph.aget_state(self._graph_config(run.thread_id)))
                except Exception:
                    log.warning("run %s: could not read the final state", run.run_id, exc_info=True)
            finished = await self.records.finish_run(run.run_id, attempt, status, error)
            if finished is not None:
                active.record = finished
            else:
                log.warning("run %s attempt %s was no longer this worker's to finish", run.run_id, attempt)
        except Exception:
            log.exception("run %s: could not record its end", run.run_id)
        finally:
            self._active.pop(run.run_id, None)
            if not active.log.ended.done():
                active.log.append(ev.END, {"run": active.record, "status": status, "error": error,
                                           "state": state if state and state.get("checkpoint") else None})

    def _run_config(self, run: RunRecord, assistant: Assistant, req: RunRequest) -> dict[str, Any]:
        user = req.config
        config = self._graph_config(run.thread_id, req.checkpoint_id)
        config["configurable"] = {**user.get("configurable", {}), **config["configurable"]}
        config["recursion_limit"] = user.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if user.get("tags"):
            config["tags"] = list(user["tags"])
        config["metadata"] = {**req.metadata, "run_id": run.run_id, "thread_id": run.thread_id,
                              "assistant_id": assistant.assistant_id, "graph_id": assistant.graph_id}
        config["run_id"] = uuid.UUID(run.run_id)
        return config

    @staticmethod
    def _graph_input(req: RunRequest) -> Any:
        if req.command is not None:
            cmd = req.command
            return Command(resume=cmd.get("resume"), update=cmd.get("update"), goto=cmd.get("goto") or ())
        return req.input

    def _publish(self, active: ActiveRun, wanted: list[str], mode: str, payload: Any) -> None:
        """Turn one LangGraph stream chunk into the events the caller asked for."""
        append = active.log.append
        if mode == "values" and "values" in wanted:
            append(ev.VALUES, {"values": to_json(payload) if isinstance(payload, dict) else {"__root__": to_json(payload)}})
        elif mode == "updates":
            for node, update in (payload or {}).items():
                if "updates" in wanted:
                    append(ev.UPDATES, {"node": node, "update": to_json(update)})
                if "messages" in wanted:
                    self._complete_streamed_messages(active, node, update)
        elif mode == "messages":
            message, meta = payload
            delta = isinstance(message, BaseMessageChunk)
            step = meta.get("langgraph_step", 0)
            if delta:
                active.streamed[message.id] = step
            append(ev.MESSAGE, {"message_id": message.id or "", "delta": delta, "message": message_to_json(message),
                                "node": meta.get("langgraph_node", ""), "step": step})
        elif mode == "custom":
            append(ev.CUSTOM, {"data": to_json(payload)})
        elif mode == "debug" and payload.get("type") in ("task", "task_result"):
            task = payload["payload"]
            finished = payload["type"] == "task_result"
            append(ev.TASK, {
                "id": task["id"], "name": task["name"], "step": payload.get("step", 0),
                "phase": "finished" if finished else "started",
                "error": str(task.get("error") or "") if finished else "",
                "interrupts": [interrupt_to_json(i) for i in task.get("interrupts", ())] if finished else [],
            })

    def _complete_streamed_messages(self, active: ActiveRun, node: str, update: Any) -> None:
        """After deltas, send each message whole (delta=false) once its node has returned it."""
        if not active.streamed or not isinstance(update, dict):
            return
        for value in update.values():
            for message in value if isinstance(value, list) else [value]:
                if isinstance(message, BaseMessage) and message.id in active.streamed:
                    step = active.streamed.pop(message.id)
                    active.log.append(ev.MESSAGE, {"message_id": message.id, "delta": False,
                                                   "message": message_to_json(message), "node": node, "step": step})

    # -- stopping -----------------------------------------------------------------

    def get_active(self, run_id: str) -> ActiveRun | None:
        return self._active.get(run_id)

    def stop(self, run_id: str, status: str) -> ActiveRun | None:
        """Ask a run executing here to stop; it ends with `status` ("timeout" or "cancelled").

        Its completed steps' checkpoints stay. Returns the run, whose end event
        the caller may await, or None if it is not executing here.
        """
        active = self._active.get(run_id)
        if active is not None and active.stop_status is None and active.task is not None:
            active.stop_status = status
            active.task.cancel()
        return active

    async def stop_thread(self, thread_id: str) -> None:
        """Cancel the runs executing here on a thread and wait until they have ended."""
        actives = [a for a in self._active.values() if a.thread_id == thread_id]
        for active in actives:
            self.stop(active.run_id, "cancelled")
        await asyncio.gather(*(a.log.ended for a in actives), return_exceptions=True)

    async def close(self) -> None:
        """Stop every run executing here (server shutdown) and wait until each has recorded its end."""
        actives = list(self._active.values())
        for active in actives:
            self.stop(active.run_id, "cancelled")
        await asyncio.gather(*(a.log.ended for a in actives), return_exceptions=True)
