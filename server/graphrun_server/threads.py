"""Thread operations: records plus the checkpointed state LangGraph keeps for them."""

from __future__ import annotations

import base64
import binascii
import builtins
import dataclasses
import uuid
from typing import Any

from langgraph._internal._config import recast_checkpoint_ns
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from .errors import (
    CheckpointNamespaceNotFound,
    CheckpointNotFound,
    GraphrunError,
    NoGraphForThread,
    PruneRefused,
    invalid,
)
from .incoming import messages_from_json
from .registry import Assistant, Registry
from .runner import GraphRunner, graph_config
from .snapshots import NOT_THE_GRAPH, empty_state, read_state, snapshot_to_json
from .storage.records import Records, ThreadRecord

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10


def _config(thread_id: str, checkpoint_id: str | None, checkpoint_ns: str) -> dict[str, Any]:
    """The config LangGraph's state methods take for a checkpoint of the root graph, or (with
    `checkpoint_ns`) of a subgraph: LangGraph routes it to the subgraph itself."""
    config = graph_config(thread_id, checkpoint_id)
    config["configurable"]["checkpoint_ns"] = checkpoint_ns
    return config


def subgraph_at(assistant: Assistant, checkpoint_ns: str) -> Pregel:
    """The subgraph a namespace addresses, found as LangGraph's state methods find it (the
    namespace without its task ids, looked up among the subgraphs it detects). LangGraph reads a
    namespace naming none with the root graph's channels, silently wrong; here it is refused."""
    path = recast_checkpoint_ns(checkpoint_ns)
    for _, graph in assistant.graph.get_subgraphs(namespace=path, recurse=True):
        return graph
    known = [name for name, _ in assistant.graph.get_subgraphs(recurse=True)]
    raise invalid(
        "checkpoint_ns",
        f"graph {assistant.graph_id!r} has no subgraph at {path!r}; subgraphs: {', '.join(known) or 'none'}",
    )


class Threads:
    def __init__(self, registry: Registry, records: Records, runner: GraphRunner):
        self.registry = registry
        self.records = records
        self.runner = runner
        self.checkpointer = runner.checkpointer

    async def create(self, thread_id: str | None, metadata: dict, ttl: tuple[float, str] | None = None) -> ThreadRecord:
        return await self.records.create_thread(thread_id, metadata, ttl)

    async def get(self, thread_id: str) -> ThreadRecord:
        return await self.records.get_thread(thread_id)

    async def list(
        self, statuses: list[str], metadata: dict, assistant_id: str | None, page_size: int, page_token: str
    ) -> tuple[list[ThreadRecord], str]:
        return await self.records.list_threads(statuses, metadata, assistant_id, page_size, page_token)

    async def delete(self, thread_id: str) -> None:
        """Cancel the thread's runs in flight (wherever they run), then drop the thread, its runs,
        their events and its checkpoints."""
        thread = await self.records.get_thread(thread_id)
        if thread.status == "busy":
            in_flight, _ = await self.records.list_runs(thread_id, ["pending", "running"], 1000, "")
            for run in in_flight:
                await self.runner.cancel(run.run_id, "interrupt", "its thread was deleted", wait=True)
        async with self.records.thread_changing(thread_id):  # no run starts while we delete
            await self.checkpointer.adelete_thread(thread_id)
            await self.records.delete_thread(thread_id)

    async def webhook_payload(self, run_id: str) -> dict:
        """What a run's completion webhook carries: the run as `RunService.Get` answers it (before
        its delivery is known) and its thread's state after it, as `GetState` answers them."""
        from .servicers.convert import run_to_proto, state_to_proto  # the API's JSON shapes
        from .webhooks import message_json

        run = await self.records.get_run(run_id)
        if run is None:
            raise LookupError(f"run {run_id} is gone")
        run_json = message_json(run_to_proto(dataclasses.replace(run, webhook=None, spec={})))
        try:
            state = message_json(state_to_proto(await self.get_state(run.thread_id, None)))
        except GraphrunError:  # its thread is gone, or never got a checkpoint
            state = None
        return {"run": run_json, "state": state}

    async def copy(self, thread_id: str, new_thread_id: str | None) -> ThreadRecord:
        """A new thread with the same checkpoints, metadata and assistant (not the runs)."""
        async with self.records.thread_changing(thread_id):  # no run writes to it while it is copied
            return await self.records.copy_thread(thread_id, new_thread_id)

    async def prune(self, thread_id: str, strategy: str) -> tuple[ThreadRecord | None, int]:
        """Keep only the latest checkpoint of each namespace, or delete the thread; the thread
        afterwards (None when deleted) and how many checkpoints went."""
        before = await self.records.count_checkpoints(thread_id)
        if strategy == "delete":
            await self.delete(thread_id)
            return None, before
        async with self.records.thread_changing(thread_id):
            try:
                await self.checkpointer.aprune([thread_id], strategy="keep_latest")
            except NotImplementedError as exc:  # LangGraph keeps DeltaChannel threads whole
                raise PruneRefused(thread_id, str(exc)) from None
        return await self.records.get_thread(thread_id), before - await self.records.count_checkpoints(thread_id)

    def _assistant(self, thread: ThreadRecord) -> Assistant | None:
        return self.registry.get(thread.graph) if thread.graph else None

    async def _existing_checkpoint(self, thread_id: str, checkpoint_id: str | None) -> None:
        if checkpoint_id and await self.checkpointer.aget_tuple(graph_config(thread_id, checkpoint_id)) is None:
            raise CheckpointNotFound(thread_id, checkpoint_id)

    async def _read_namespace(
        self,
        thread_id: str,
        assistant: Assistant | None,
        checkpoint_id: str | None,
        checkpoint_ns: str,
        subgraphs: bool = False,
    ) -> StateSnapshot:
        """A subgraph's state at `checkpoint_ns`; NOT_FOUND when the thread has no checkpoint there
        (LangGraph would answer an empty state, which cannot be told from a typo)."""
        if assistant is None:  # no run yet: no checkpoints in any namespace
            raise CheckpointNamespaceNotFound(thread_id, checkpoint_ns)
        subgraph_at(assistant, checkpoint_ns)
        snapshot = await read_state(
            assistant.graph, _config(thread_id, checkpoint_id, checkpoint_ns), subgraphs=subgraphs
        )
        if snapshot.metadata is None:  # nothing saved at that address
            if checkpoint_id:
                raise CheckpointNotFound(thread_id, checkpoint_id, checkpoint_ns)
            raise CheckpointNamespaceNotFound(thread_id, checkpoint_ns)
        return snapshot

    async def get_state(
        self, thread_id: str, checkpoint_id: str | None = None, checkpoint_ns: str = "", subgraphs: bool = False
    ) -> dict[str, Any]:
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        if checkpoint_ns:
            return snapshot_to_json(
                await self._read_namespace(thread_id, assistant, checkpoint_id, checkpoint_ns, subgraphs)
            )
        await self._existing_checkpoint(thread_id, checkpoint_id)
        if assistant is None:
            return empty_state()
        snapshot = await read_state(assistant.graph, graph_config(thread_id, checkpoint_id), subgraphs=subgraphs)
        return (
            snapshot_to_json(snapshot)
            if snapshot.config.get("configurable", {}).get("checkpoint_id")
            else empty_state()
        )

    async def get_history(
        self, thread_id: str, page_size: int, page_token: str, checkpoint_ns: str = ""
    ) -> tuple[builtins.list[dict], str]:  # `list` is a method here
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for the default {DEFAULT_PAGE_SIZE})")
        page_size = page_size or DEFAULT_PAGE_SIZE
        before = None
        if page_token:
            try:
                before_id = str(uuid.UUID(base64.urlsafe_b64decode(page_token.encode()).decode()))
            except (binascii.Error, UnicodeDecodeError, ValueError):  # a checkpoint id is a UUID
                raise invalid("page_token", "not a token this server returned") from None
            before = _config(thread_id, before_id, checkpoint_ns)
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        if checkpoint_ns:
            await self._read_namespace(thread_id, assistant, None, checkpoint_ns)
        if assistant is None:
            return [], ""
        config = _config(thread_id, None, checkpoint_ns)
        try:
            snapshots = [
                s async for s in assistant.graph.aget_state_history(config, before=before, limit=page_size + 1)
            ]
        except NOT_THE_GRAPH:
            raise
        except Exception:  # noqa: BLE001 - a checkpoint holds writes the graph refuses (see read_state): one at a time
            saved = [t async for t in self.checkpointer.alist(config, before=before, limit=page_size + 1)]
            snapshots = [await read_state(assistant.graph, t.config) for t in saved]
        states = [snapshot_to_json(s) for s in snapshots]
        token = ""
        if len(states) > page_size:
            states = states[:page_size]
            token = base64.urlsafe_b64encode(states[-1]["checkpoint"]["checkpoint_id"].encode()).decode()
        return states, token

    async def update_state(
        self,
        thread_id: str,
        values: dict | None,
        as_node: str | None,
        checkpoint_id: str | None,
        checkpoint_ns: str = "",
    ) -> dict[str, str]:
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        if assistant is None:
            raise NoGraphForThread(thread_id)
        graph = subgraph_at(assistant, checkpoint_ns) if checkpoint_ns else assistant.graph
        nodes = [n for n in graph.nodes if not n.startswith("__")]
        if as_node and as_node not in nodes:
            where = f"subgraph {recast_checkpoint_ns(checkpoint_ns)!r} of graph" if checkpoint_ns else "graph"
            raise invalid(
                "as_node", f"{where} {assistant.graph_id!r} has no node {as_node!r}; nodes: {', '.join(nodes)}"
            )
        async with self.records.thread_changing(thread_id):  # THREAD_BUSY while a run is in flight
            if checkpoint_ns:  # a namespace no run wrote: an update there would start a history no run reads
                await self._read_namespace(thread_id, assistant, checkpoint_id, checkpoint_ns)
            else:
                await self._existing_checkpoint(thread_id, checkpoint_id)
            try:
                config = await assistant.graph.aupdate_state(
                    _config(thread_id, checkpoint_id, checkpoint_ns),
                    messages_from_json(graph, values),
                    as_node=as_node or None,
                )
            except NOT_THE_GRAPH:
                raise
            except Exception as exc:  # noqa: BLE001 - the graph refused the values (InvalidUpdateError, a reducer raised)
                raise invalid("values", f"{type(exc).__name__}: {exc}") from None
            # The update may have answered the question the thread was waiting on.
            snapshot = await assistant.graph.aget_state(graph_config(thread_id))
            await self.records.set_thread_status(thread_id, "interrupted" if snapshot.interrupts else "idle")
        conf = config["configurable"]
        return {
            "thread_id": thread_id,
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf["checkpoint_id"],
        }
