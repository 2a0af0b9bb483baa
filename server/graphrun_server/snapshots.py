"""LangGraph `StateSnapshot` → the JSON thread state of the API (`ThreadState`)."""

from __future__ import annotations

from typing import Any

import psycopg
from langgraph._internal._constants import NS_END, NS_SEP, TASKS
from langgraph.channels.ephemeral_value import EphemeralValue
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Interrupt, PregelTask, StateSnapshot

from .errors import GraphrunError
from .task_errors import task_error_text
from .wire import to_json

# Failures of the database or of graphrun itself: a graph's own error is anything else.
NOT_THE_GRAPH = (GraphrunError, psycopg.Error)


async def read_state(graph: Pregel, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
    """`graph.aget_state(config, subgraphs=...)`, also for a checkpoint holding writes the graph
    refuses to apply.

    A run that fails because a reducer raised on its writes (an input message LangChain cannot
    read, a `command.update` the state refuses) leaves them stored with its last checkpoint;
    reading the state applies them and raises again, every time. Such a checkpoint is shown as
    it was written, without its pending writes. New input, or UpdateState, moves the thread on.
    """
    try:
        return await graph.aget_state(config, subgraphs=subgraphs)
    except NOT_THE_GRAPH:
        raise
    except Exception:
        saved = await graph.checkpointer.aget_tuple(config)
        if saved is None:
            raise
        as_written = graph.copy(update={"checkpointer": _WithoutPendingWrites(graph.checkpointer)})
        return await as_written.aget_state(saved.config, subgraphs=subgraphs)


class _WithoutPendingWrites(BaseCheckpointSaver):
    """A read-only view of a checkpointer: checkpoints without their pending writes."""

    def __init__(self, saver: BaseCheckpointSaver):
        super().__init__(serde=saver.serde)
        self._saver = saver

    async def aget_tuple(self, config):
        saved = await self._saver.aget_tuple(config)
        return saved._replace(pending_writes=[]) if saved is not None else None


def interrupt_to_json(interrupt: Interrupt | dict[str, Any]) -> dict[str, Any]:
    """An interrupt as the API shows it. LangGraph gives `Interrupt` objects in states and
    plain dicts (`asdict(Interrupt)`) in its debug stream's finished tasks."""
    if isinstance(interrupt, dict):
        return {"id": interrupt.get("id"), "value": to_json(interrupt.get("value"))}
    return {"id": interrupt.id, "value": to_json(interrupt.value)}


def _ref(config: dict | None) -> dict[str, str] | None:
    conf = (config or {}).get("configurable", {})
    if not conf.get("checkpoint_id"):
        return None
    return {
        "thread_id": str(conf.get("thread_id", "")),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf["checkpoint_id"],
    }


def _task_to_json(task: PregelTask, parent_ns: str) -> dict[str, Any]:
    """A pending task. LangGraph gives a subgraph task a `state`: the config of the subgraph's
    checkpoints, or (read with `subgraphs=True`) its StateSnapshot; either way the task shows
    the namespace to address them by, named as LangGraph names it."""
    out = {
        "id": task.id,
        "name": task.name,
        "error": task_error_text(task.error),
        "interrupts": [interrupt_to_json(i) for i in task.interrupts],
    }
    if task.state is not None:
        own = f"{task.name}{NS_END}{task.id}"
        out["checkpoint_ns"] = f"{parent_ns}{NS_SEP}{own}" if parent_ns else own
        if isinstance(task.state, StateSnapshot):
            out["state"] = snapshot_to_json(task.state)
    return out


def snapshot_to_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """The full state; servicers trim it by granularity when they answer."""
    values = snapshot.values
    return {
        "values": to_json(values) if isinstance(values, dict) else {"__root__": to_json(values)},
        "next": list(snapshot.next),
        "tasks": [
            _task_to_json(t, (snapshot.config or {}).get("configurable", {}).get("checkpoint_ns", ""))
            for t in snapshot.tasks
        ],
        "checkpoint": _ref(snapshot.config),
        "metadata": to_json(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _ref(snapshot.parent_config),
        "interrupts": [interrupt_to_json(i) for i in snapshot.interrupts],
    }


def snapshot_payload_to_json(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint as LangGraph's `checkpoints` stream gives it (`get_state()`'s fields as a
    dict, without `created_at`), in the shape of `snapshot_to_json`."""
    values = payload.get("values")
    tasks = [
        {
            "id": t["id"],
            "name": t["name"],
            "error": task_error_text(t.get("error")),
            "interrupts": [interrupt_to_json(i) for i in t.get("interrupts", ())],
        }
        for t in payload.get("tasks", ())
    ]
    for task, raw in zip(tasks, payload.get("tasks", ()), strict=True):  # a subgraph's task: where its checkpoints are
        if isinstance(state := raw.get("state"), dict) and (ns := state.get("configurable", {}).get("checkpoint_ns")):
            task["checkpoint_ns"] = ns
    return {
        "values": to_json(values) if isinstance(values, dict) else {"__root__": to_json(values)},
        "next": list(payload.get("next", ())),
        "tasks": tasks,
        "checkpoint": _ref(payload.get("config")),
        "metadata": to_json(payload.get("metadata") or {}),
        "created_at": None,
        "parent_checkpoint": _ref(payload.get("parent_config")),
        "interrupts": [i for t in tasks for i in t["interrupts"]],
    }


def empty_state() -> dict[str, Any]:
    """The state of a thread with no checkpoint yet."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "checkpoint": None,
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "interrupts": [],
    }


def may_have_next_tasks(graph: Pregel, checkpoint: dict[str, Any]) -> bool:
    """Whether LangGraph could find a task to run after `checkpoint`; True when unsure.

    As LangGraph's `prepare_next_tasks` decides: a node runs next when one of its trigger
    channels holds a value with a newer version than the node has seen, and `Send` packets wait
    in the tasks channel. A node that stopped on `interrupt()` did not record what it saw, so it
    still counts as next. Whether a trigger holds a value is read from the checkpoint only for
    `EphemeralValue` channels (absent from `channel_values` when empty, as StateGraph's edges
    and START are); any other kind of trigger is taken to hold one.
    """
    values = checkpoint.get("channel_values") or {}
    if values.get(TASKS):
        return True
    versions = checkpoint.get("channel_versions") or {}
    seen_by = checkpoint.get("versions_seen") or {}
    try:
        for name, node in graph.nodes.items():
            seen = seen_by.get(name)
            for channel in node.triggers:
                if channel not in versions or (
                    channel not in values and isinstance(graph.channels.get(channel), EphemeralValue)
                ):
                    continue  # never written, or emptied since
                if seen is None or channel not in seen or versions[channel] > seen[channel]:
                    return True
    except TypeError:  # versions of different kinds: not ours to judge
        return True
    return False
