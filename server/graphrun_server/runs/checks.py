"""What is checked before a run is recorded: what the graph or the thread would refuse.

Why before: a run the database accepted always executes; a request LangGraph cannot apply must
fail the call (INVALID_ARGUMENT naming the field), not become a failed run. The input itself is
checked against the graph's input schema in input_check.py.
"""

from __future__ import annotations

from typing import Any

from langgraph.pregel._utils import is_xxh3_128_hexdigest

from ..errors import FieldViolation, InvalidArgument, invalid
from ..registry import Assistant
from ..snapshots import read_state
from ..storage.records import Records
from .request import RunRequest, graph_config


def check_request(assistant: Assistant, req: RunRequest) -> None:
    """What the graph would refuse: unknown nodes, malformed messages (the input: input_check)."""
    violations = [
        FieldViolation(
            f"spec.{name}[{i}]",
            f"graph {assistant.graph_id!r} has no node {node!r}; nodes: {', '.join(assistant.nodes)}",
        )
        for name in ("interrupt_before", "interrupt_after")
        for i, node in enumerate(getattr(req, name))
        if node not in assistant.nodes and node != "*"
    ]
    goto = (req.command or {}).get("goto", [])
    violations += [
        FieldViolation(f"spec.command.goto[{i}]", f"graph {assistant.graph_id!r} has no node {n!r}")
        for i, n in enumerate(goto)
        if n not in assistant.nodes
    ]
    violations += assistant.context_violations(req.context, req.config.get("configurable", {}))
    violations += assistant.message_violations((req.command or {}).get("update"), "spec.command.update")
    if violations:
        raise InvalidArgument(violations)


async def check_thread_state(records: Records, checkpointer, assistant: Assistant, req: RunRequest) -> None:
    """A checkpoint id must belong to the thread; a resume needs something to resume."""
    await records.get_thread(req.thread_id)  # NOT_FOUND before anything else
    config = graph_config(req.thread_id, req.checkpoint_id)
    if req.checkpoint_id and await checkpointer.aget_tuple(config) is None:
        raise invalid("spec.checkpoint_id", f"thread {req.thread_id} has no checkpoint {req.checkpoint_id}")
    if req.command and "resume" in req.command:
        snapshot = await read_state(assistant.graph, config)
        if not snapshot.next:
            raise invalid("spec.command.resume", f"thread {req.thread_id} is not waiting on an interrupt")
        _check_resume(req.command["resume"], {i.id for i in snapshot.interrupts})


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
        raise invalid(
            "spec.command.resume",
            f"{len(pending)} interrupts are pending: answer them with an object "
            f"keyed by interrupt id; pending interrupts: {ids}",
        )
