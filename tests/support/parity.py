"""The parity harness: one graph run by LangGraph in-process and by graphrun over gRPC, both
reduced to the same comparable form.

Each side becomes a list of `(kind, namespace, payload)` tuples: LangGraph's stream chunks
`(namespace, mode, payload)` on one side, graphrun's `RunEvent`s on the other. Values are
written as JSON by graphrun's own `wire.to_json` on the in-process side (its faithfulness is
tested on its own, in test_values.py), so the harness compares what arrives — which events,
in which order, from which namespace, with which content — not how a value is spelled.

What always differs between two runs is erased: ids (UUIDs of threads, runs, tasks,
checkpoints and messages, 32-hex interrupt ids) become `<id>`, times are dropped. What
graphrun adds on purpose is dropped from its side: the `metadata` and `end` events, and the
complete message (`delta=false`) it sends after a message's deltas.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import json_format
from langchain_core.messages import BaseMessageChunk

from graphrun_server.wire import message_to_json, to_json

ALL_MODES = ["values", "updates", "messages", "custom", "tasks", "checkpoints", "debug"]
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[0-9a-f]{32}\b")
# LangGraph's own keys of a message's metadata (the rest is the run's config metadata, which
# holds graphrun's run and assistant ids on one side and nothing on the other).
MESSAGE_METADATA_KEYS = ("langgraph_step", "langgraph_node", "langgraph_triggers", "langgraph_path",
                         "langgraph_checkpoint_ns", "checkpoint_ns", "ls_provider", "ls_model_name",
                         "ls_model_type", "tags")
CHECKPOINT_METADATA_KEYS = ("source", "step", "parents")


def erase_ids(value: Any) -> Any:
    """The value with every id written `<id>` (compared as JSON text, then read back)."""
    return json.loads(_IDS.sub("<id>", json.dumps(value, sort_keys=True)))


def in_step_order(events: list, concurrent: bool = True) -> list:
    """Events as a comparable sequence. Tasks of one step run concurrently, and LangGraph
    promises no order among what they stream; so for graphs with concurrent tasks, the events
    between two checkpoints are compared as a sorted group (the checkpoints keep their place)."""
    if not concurrent:
        return events
    out, group = [], []
    for event in events:
        if event[0] == "checkpoint" or (event[0] == "debug" and event[2] == "checkpoint"):
            out.extend(sorted(group, key=json.dumps))
            out.append(event)
            group = []
        else:
            group.append(event)
    return out + sorted(group, key=json.dumps)


def _pick(mapping: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: mapping[k] for k in keys if mapping and k in mapping}


def _object(value: Any) -> dict[str, Any]:
    return to_json(value) if isinstance(value, dict) else {"__root__": to_json(value)}


def _state(values: Any, next_: Any, tasks: list[dict], metadata: dict | None) -> dict[str, Any]:
    return {"values": values, "next": list(next_), "tasks": sorted(t["name"] for t in tasks),
            "metadata": _pick(metadata, CHECKPOINT_METADATA_KEYS)}


# -- in-process ---------------------------------------------------------------------


class Expected:
    """LangGraph's chunks, in the comparable form."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self._described: set[str] = set()

    def add(self, ns: tuple[str, ...], mode: str, payload: Any) -> None:
        ns = list(ns)
        if mode == "values":
            self.events.append(("values", ns, _object(payload)))
        elif mode == "updates":
            for node, update in payload.items():
                self.events.append(("updates", ns, node, to_json(update)))
        elif mode == "custom":
            self.events.append(("custom", ns, to_json(payload)))
        elif mode == "messages":
            message, meta = payload
            first = message.id not in self._described
            self._described.add(message.id)
            self.events.append(("message", ns, isinstance(message, BaseMessageChunk), message_to_json(message),
                                meta.get("langgraph_node", ""), _pick(meta, MESSAGE_METADATA_KEYS) if first else None))
        elif mode == "tasks":
            self.events.append(("task", ns, *_task(payload)))
        elif mode == "checkpoints":
            self.events.append(("checkpoint", ns, _checkpoint(payload)))
        elif mode == "debug":
            inner = _checkpoint(payload["payload"]) if payload["type"] == "checkpoint" else _task(payload["payload"])
            self.events.append(("debug", ns, payload["type"], payload["step"], inner))


def _task(payload: dict[str, Any]) -> tuple:
    if "result" in payload:
        error = payload.get("error")
        return ("finished", payload["name"], str(error) if error else "",
                [{"id": i["id"], "value": to_json(i["value"])} for i in payload.get("interrupts", ())],
                _object(payload["result"]))
    return "started", payload["name"], to_json(payload.get("input")), list(payload.get("triggers") or ())


def _checkpoint(payload: dict[str, Any]) -> dict[str, Any]:
    return _state(_object(payload["values"]), payload["next"], payload.get("tasks", []), payload.get("metadata"))


async def run_in_process(graph, graph_input: Any, config: dict, modes: list[str], subgraphs: bool, **kwargs) -> list:
    expected = Expected()
    async for chunk in graph.astream(graph_input, config, stream_mode=modes, subgraphs=subgraphs, **kwargs):
        ns, mode, payload = chunk if subgraphs else ((), *chunk)
        expected.add(ns, mode, payload)
    return erase_ids(expected.events)


# -- graphrun -----------------------------------------------------------------------


def _dict(message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def served_events(responses: list) -> list:
    """A Stream's (or Join's) events in the comparable form."""
    out: list[tuple] = []
    streamed: set[str] = set()
    for response in responses:
        event = response.event
        ns, kind = list(event.namespace), event.WhichOneof("attributes")
        if kind == "values":
            out.append(("values", ns, _dict(event.values.values)))
        elif kind == "updates":
            out.append(("updates", ns, event.updates.node, json_format.MessageToDict(event.updates.update)))
        elif kind == "custom":
            out.append(("custom", ns, json_format.MessageToDict(event.custom.data)))
        elif kind == "message":
            m = event.message
            if m.delta:
                streamed.add(m.message_id)
            elif m.message_id in streamed:
                continue  # graphrun's complete message after the deltas
            out.append(("message", ns, m.delta, _dict(m.message), m.node,
                        _pick(_dict(m.metadata), MESSAGE_METADATA_KEYS) if m.HasField("metadata") else None))
        elif kind == "task":
            out.append(("task", ns, *_served_task(event.task)))
        elif kind == "checkpoint":
            out.append(("checkpoint", ns, _served_state(event.checkpoint.state)))
        elif kind == "debug":
            d = event.debug
            if d.WhichOneof("payload") == "checkpoint":
                out.append(("debug", ns, "checkpoint", d.step, _served_state(d.checkpoint)))
            else:
                kind = "task_result" if d.task.phase == 2 else "task"
                out.append(("debug", ns, kind, d.step, _served_task(d.task)))
    return erase_ids(out)


def _served_task(task) -> tuple:
    if task.phase == 2:  # TASK_PHASE_FINISHED
        return ("finished", task.name, task.error,
                [{"id": i.id, "value": json_format.MessageToDict(i.value)} for i in task.interrupts],
                _dict(task.result))
    return "started", task.name, json_format.MessageToDict(task.input), list(task.triggers)


def _served_state(state) -> dict[str, Any]:
    return _state(_dict(state.values), state.next, [{"name": t.name} for t in state.tasks], _dict(state.metadata))


def served_state(state) -> dict[str, Any]:
    """A `ThreadState` in the comparable form (values, next, tasks, LangGraph's metadata)."""
    return erase_ids(_served_state(state))


def expected_state(snapshot) -> dict[str, Any]:
    """A `StateSnapshot` in the comparable form."""
    return erase_ids(_state(_object(snapshot.values), snapshot.next, [{"name": t.name} for t in snapshot.tasks],
                            snapshot.metadata))
