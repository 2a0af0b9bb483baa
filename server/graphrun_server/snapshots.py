"""LangGraph `StateSnapshot` → the JSON thread state of the API (`ThreadState`)."""

from __future__ import annotations

from typing import Any

from langgraph.types import Interrupt, StateSnapshot

from .wire import to_json


def interrupt_to_json(interrupt: Interrupt) -> dict[str, Any]:
    return {"id": interrupt.id, "value": to_json(interrupt.value)}


def _ref(config: dict | None) -> dict[str, str] | None:
    conf = (config or {}).get("configurable", {})
    if not conf.get("checkpoint_id"):
        return None
    return {"thread_id": str(conf.get("thread_id", "")), "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf["checkpoint_id"]}


def snapshot_to_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """The full state; servicers trim it by granularity when they answer."""
    values = snapshot.values
    return {
        "values": to_json(values) if isinstance(values, dict) else {"__root__": to_json(values)},
        "next": list(snapshot.next),
        "tasks": [
            {"id": t.id, "name": t.name, "error": repr(t.error) if t.error else "",
             "interrupts": [interrupt_to_json(i) for i in t.interrupts]}
            for t in snapshot.tasks
        ],
        "checkpoint": _ref(snapshot.config),
        "metadata": to_json(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": _ref(snapshot.parent_config),
        "interrupts": [interrupt_to_json(i) for i in snapshot.interrupts],
    }


def empty_state() -> dict[str, Any]:
    """The state of a thread with no checkpoint yet."""
    return {"values": {}, "next": [], "tasks": [], "checkpoint": None, "metadata": {}, "created_at": None,
            "parent_checkpoint": None, "interrupts": []}
