"""LangGraph's stream → a run's events, one per chunk and mode the caller asked for.

The runner always streams LangGraph's `debug` mode (it tells the runner where the run is, and
finished tasks complete streamed messages) and, when the caller asked for `events`, runs the
graph under LangChain's `astream_events`; what the caller did not ask for is dropped here.
Each event keeps the namespace LangGraph gives its chunk (`("child:<task id>", …)`), so a
caller that asked for `subgraphs` can tell which graph spoke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

from . import events as ev
from .snapshots import interrupt_to_json, snapshot_payload_to_json
from .task_errors import task_error_text
from .wire import message_to_json, to_json

# API stream mode -> the LangGraph modes that feed it, besides "debug", which always runs:
# `tasks`, `checkpoints` and `debug` events all come from it.
STREAM_MODES: dict[str, tuple[str, ...]] = {
    "values": ("values",),
    "updates": ("updates",),
    "messages": ("messages",),
    "custom": ("custom",),
    "tasks": (),
    "checkpoints": (),
    "debug": (),
    "events": (),  # runs the graph under astream_events (see `chunks`)
}
# Names LangGraph's HTTP API accepts for one of ours.
MODE_ALIASES = {"messages-tuple": "messages"}

Namespace = tuple[str, ...]


def langgraph_modes(api_modes: list[str]) -> list[str]:
    """The modes to ask LangGraph for, to produce the events of `api_modes`."""
    return sorted({m for mode in api_modes for m in STREAM_MODES[mode]} | {"debug"})


async def chunks(
    graph, graph_input: Any, config: dict[str, Any], api_modes: list[str], subgraphs: bool, **kwargs: Any
) -> AsyncIterator[tuple[Namespace, str, Any]]:
    """`(namespace, mode, payload)` for everything the graph streams, with the callback events
    of LangChain's `astream_events` as mode `events` when the caller asked for them.

    `subgraphs` goes to LangGraph as is: it changes what LangGraph streams, not only where
    (without it, a message a subgraph produced arrives once, credited to the parent's node).
    Under `astream_events` the graph's own stream arrives as `on_chain_stream` events of the
    graph's run (whose id is `config["run_id"]`), exactly what `astream` would have yielded.
    """
    modes = langgraph_modes(api_modes)
    if "events" in api_modes:
        stream = graph.astream_events(
            graph_input, config, version="v2", stream_mode=modes, subgraphs=subgraphs, **kwargs
        )
        graph_run = str(config["run_id"])
        async for event in stream:
            if event["event"] != "on_chain_stream" or event["run_id"] != graph_run:
                yield _event_namespace(event), "events", event
            elif subgraphs:
                yield event["data"]["chunk"]
            else:
                yield ((), *event["data"]["chunk"])
    elif subgraphs:
        async for chunk in graph.astream(graph_input, config, stream_mode=modes, subgraphs=True, **kwargs):
            yield chunk
    else:
        async for mode, payload in graph.astream(graph_input, config, stream_mode=modes, **kwargs):
            yield (), mode, payload


def _event_namespace(event: dict[str, Any]) -> Namespace:
    """The namespace of the graph a callback event happened in: its node's checkpoint namespace
    (`"child:<id>|inner:<id>"`) without the node itself."""
    ns = (event.get("metadata") or {}).get("langgraph_checkpoint_ns") or ""
    return tuple(ns.split("|")[:-1]) if ns else ()


class EventTranslator:
    """Turns one run's stream chunks into its events (`append(kind, data, namespace)`)."""

    def __init__(self, api_modes: list[str], append: Callable[..., Any]):
        self.wanted = frozenset(api_modes)
        self.append = append
        self.streamed: dict[str, tuple[int, Namespace]] = {}  # message id -> step and namespace, sent as deltas
        self.described: set[str] = set()  # message ids whose metadata was sent

    def translate(self, ns: Namespace, mode: str, payload: Any) -> None:
        """Append the events one chunk makes (none for what the caller did not ask for)."""
        if mode == "debug":
            self._debug(ns, payload)
        elif mode == "values":
            self.append(ev.VALUES, {"values": _object(payload)}, ns)
        elif mode == "updates":
            for node, update in (payload or {}).items():
                self.append(ev.UPDATES, {"node": node, "update": to_json(update)}, ns)
        elif mode == "messages":
            self._message(ns, *payload)
        elif mode == "custom":
            self.append(ev.CUSTOM, {"data": to_json(payload)}, ns)
        elif mode == "events":
            self.append(ev.LANGCHAIN_EVENT, langchain_event_to_json(payload), ns)

    def _debug(self, ns: Namespace, entry: dict[str, Any]) -> None:
        kind, step, payload = entry.get("type"), entry.get("step", 0), entry["payload"]
        if kind == "checkpoint":
            data = None
            if "checkpoints" in self.wanted:
                data = checkpoint_to_json(payload)
                self.append(ev.CHECKPOINT, {"state": data}, ns)
            if "debug" in self.wanted:
                self.append(
                    ev.DEBUG,
                    {
                        "step": step,
                        "timestamp": entry.get("timestamp"),
                        "checkpoint": data or checkpoint_to_json(payload),
                    },
                    ns,
                )
            return
        if kind not in ("task", "task_result"):
            return
        finished = kind == "task_result"
        if finished and self.streamed:  # a node's messages are complete before it is finished
            self._complete_streamed_messages(ns, payload["name"], payload.get("result"))
        task = None
        if "tasks" in self.wanted:
            task = task_to_json(payload, step, finished)
            self.append(ev.TASK, task, ns)
        if "debug" in self.wanted:
            self.append(
                ev.DEBUG,
                {
                    "step": step,
                    "timestamp": entry.get("timestamp"),
                    "task": task or task_to_json(payload, step, finished),
                },
                ns,
            )

    def _message(self, ns: Namespace, message: BaseMessage, meta: dict[str, Any]) -> None:
        delta = isinstance(message, BaseMessageChunk)
        step = meta.get("langgraph_step", 0)
        if delta:
            self.streamed[message.id] = (step, ns)
        data = {
            "message_id": message.id or "",
            "delta": delta,
            "message": message_to_json(message),
            "node": meta.get("langgraph_node", ""),
            "step": step,
        }
        if message.id not in self.described:  # the first event of a message carries its metadata
            self.described.add(message.id)
            data["metadata"] = to_json(meta)
        self.append(ev.MESSAGE, data, ns)

    def _complete_streamed_messages(self, ns: Namespace, node: str, result: Any) -> None:
        """After deltas, send each message whole (delta=false) once its node has returned it."""
        writes = result.items() if isinstance(result, dict) else (result or ())
        for _channel, value in writes:
            for message in value if isinstance(value, list) else [value]:
                if isinstance(message, BaseMessage) and message.id in self.streamed:
                    step, streamed_ns = self.streamed[message.id]
                    if streamed_ns != ns:
                        continue
                    del self.streamed[message.id]
                    self.append(
                        ev.MESSAGE,
                        {
                            "message_id": message.id,
                            "delta": False,
                            "message": message_to_json(message),
                            "node": node,
                            "step": step,
                        },
                        ns,
                    )


def _object(values: Any) -> dict[str, Any]:
    """A state as a JSON object (a functional graph's plain value under `__root__`)."""
    return to_json(values) if isinstance(values, dict) else {"__root__": to_json(values)}


def task_to_json(task: dict[str, Any], step: int, finished: bool) -> dict[str, Any]:
    """A task of LangGraph's `tasks` stream as the `TaskEvent` shape."""
    if not finished:
        return {
            "id": task["id"],
            "name": task["name"],
            "step": step,
            "phase": "started",
            "input": to_json(task.get("input")),
            "triggers": list(task.get("triggers") or ()),
            "metadata": to_json(task.get("metadata") or {}),
        }
    return {
        "id": task["id"],
        "name": task["name"],
        "step": step,
        "phase": "finished",
        "error": task_error_text(task.get("error")),
        "interrupts": [interrupt_to_json(i) for i in task.get("interrupts", ())],
        "result": _object(task.get("result") or {}),
    }


def checkpoint_to_json(payload: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of LangGraph's `checkpoints` stream as the `ThreadState` shape."""
    return snapshot_payload_to_json(payload)


def langchain_event_to_json(event: dict[str, Any]) -> dict[str, Any]:
    """A LangChain `StreamEvent` as the `LangChainEvent` shape."""
    return {
        "event": event.get("event", ""),
        "name": str(event.get("name", "")),
        "run_id": str(event.get("run_id", "")),
        "parent_ids": [str(p) for p in event.get("parent_ids", ())],
        "tags": list(event.get("tags") or ()),
        "metadata": to_json(event.get("metadata") or {}),
        "data": _object(event.get("data") or {}),
    }
