"""What a run asks for (`RunRequest`, stored as the run's spec) and the config LangGraph gets for it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..wire import to_json


@dataclass
class RunRequest:
    """A validated run specification (what `RunSpec` says, in Python terms); stored as the run's spec."""

    assistant_id: str  # as the caller named it: a graph id, or a created assistant's id
    thread_id: str | None = None
    input: Any = None  # any JSON value; None: no input (continue from the checkpoint)
    input_field: str | None = None  # "input_value" when it came in that field (errors name it); else "input"
    command: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    interrupt_before: list[str] = field(default_factory=list)
    interrupt_after: list[str] = field(default_factory=list)
    multitask_strategy: str = "reject"
    create_thread: bool = False
    checkpoint_id: str | None = None
    durability: str = "sync"
    stream_modes: list[str] = field(default_factory=list)
    subgraphs: bool = False  # events from inside subgraphs too
    timeout: float | None = None
    on_disconnect: str = "cancel"
    context: dict[str, Any] | None = None  # as the caller sent it: each attempt builds the graph's from it
    webhook: str | None = None  # POSTed to when the run ends (the SQL of its end queues it; webhooks.py sends it)
    request_id: str | None = None  # makes the request idempotent: its run's id follows from it (admission.py)
    on_completion: str = "keep"  # "delete": a stateless run, whose thread goes when it ends (settling.py)
    # The assistant's version to run: pinned by the caller, or (once admitted) the one it runs. What
    # admission stores is the effective request: the assistant's config, context and webhook merged
    # in (assistants.py), and the graph they belong to.
    assistant_version: int | None = None
    graph_id: str | None = None
    request_digest: str | None = None  # the request as sent, for a repeat of its request_id to compare
    cron_id: str | None = None  # the cron whose tick started the run (crons.py): Run.cron_id, List's filter
    cron_tick: str | None = None  # that tick's scheduled time (ISO 8601, UTC): Run.cron_tick_time

    def to_json(self) -> dict[str, Any]:
        return to_json({k: v for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> RunRequest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in spec.items() if k in known})


# `configurable` keys LangGraph and the server set: a caller names a thread and checkpoint by the
# spec's own fields. Also kept out of what a run's context adds to `configurable`.
RESERVED_CONFIGURABLE = frozenset({"thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"})


def reserved(key: str) -> bool:
    """A `configurable` key a caller may not set (RESERVED_CONFIGURABLE, or LangGraph's `__…`)."""
    return key in RESERVED_CONFIGURABLE or key.startswith("__")


def graph_config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}
