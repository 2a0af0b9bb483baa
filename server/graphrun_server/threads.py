"""Thread operations: records plus the checkpointed state LangGraph keeps for them."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from .errors import CheckpointNotFound, NoGraphForThread, invalid
from .registry import Assistant, Registry
from .runner import GraphRunner, graph_config
from .snapshots import NOT_THE_GRAPH, empty_state, read_state, snapshot_to_json
from .storage.records import Records, ThreadRecord

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10




class Threads:
    def __init__(self, registry: Registry, records: Records, runner: GraphRunner):
        self.registry = registry
        self.records = records
        self.runner = runner
        self.checkpointer = runner.checkpointer

    async def create(self, thread_id: str | None, metadata: dict) -> ThreadRecord:
        return await self.records.create_thread(thread_id, metadata)

    async def get(self, thread_id: str) -> ThreadRecord:
        return await self.records.get_thread(thread_id)

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

    def _assistant(self, thread: ThreadRecord) -> Assistant | None:
        return self.registry.get(thread.assistant_id) if thread.assistant_id else None

    async def _existing_checkpoint(self, thread_id: str, checkpoint_id: str | None) -> None:
        if checkpoint_id and await self.checkpointer.aget_tuple(graph_config(thread_id, checkpoint_id)) is None:
            raise CheckpointNotFound(thread_id, checkpoint_id)

    async def get_state(self, thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        await self._existing_checkpoint(thread_id, checkpoint_id)
        if assistant is None:
            return empty_state()
        snapshot = await read_state(assistant.graph, graph_config(thread_id, checkpoint_id))
        return snapshot_to_json(snapshot) if snapshot.config.get("configurable", {}).get("checkpoint_id") else empty_state()

    async def get_history(self, thread_id: str, page_size: int, page_token: str) -> tuple[list[dict], str]:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for the default {DEFAULT_PAGE_SIZE})")
        page_size = page_size or DEFAULT_PAGE_SIZE
        before = None
        if page_token:
            try:
                before_id = str(uuid.UUID(base64.urlsafe_b64decode(page_token.encode()).decode()))
            except (binascii.Error, UnicodeDecodeError, ValueError):  # a checkpoint id is a UUID
                raise invalid("page_token", "not a token this server returned") from None
            before = graph_config(thread_id, before_id)
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        if assistant is None:
            return [], ""
        config = graph_config(thread_id)
        try:
            snapshots = [s async for s in
                         assistant.graph.aget_state_history(config, before=before, limit=page_size + 1)]
        except NOT_THE_GRAPH:
            raise
        except Exception:  # a checkpoint holds writes the graph refuses (see read_state): one at a time
            saved = [t async for t in self.checkpointer.alist(config, before=before, limit=page_size + 1)]
            snapshots = [await read_state(assistant.graph, t.config) for t in saved]
        states = [snapshot_to_json(s) for s in snapshots]
        token = ""
        if len(states) > page_size:
            states = states[:page_size]
            token = base64.urlsafe_b64encode(states[-1]["checkpoint"]["checkpoint_id"].encode()).decode()
        return states, token

    async def update_state(self, thread_id: str, values: dict | None, as_node: str | None,
                           checkpoint_id: str | None) -> dict[str, str]:
        thread = await self.records.get_thread(thread_id)
        assistant = self._assistant(thread)
        if assistant is None:
            raise NoGraphForThread(thread_id)
        if as_node and as_node not in assistant.nodes:
            raise invalid("as_node", f"graph {assistant.graph_id!r} has no node {as_node!r}; "
                                     f"nodes: {', '.join(assistant.nodes)}")
        async with self.records.thread_changing(thread_id):  # THREAD_BUSY while a run is in flight
            await self._existing_checkpoint(thread_id, checkpoint_id)
            try:
                config = await assistant.graph.aupdate_state(graph_config(thread_id, checkpoint_id),
                                                             assistant.messages_from_json(values),
                                                             as_node=as_node or None)
            except NOT_THE_GRAPH:
                raise
            except Exception as exc:  # the graph refused the values (InvalidUpdateError, a reducer raised)
                raise invalid("values", f"{type(exc).__name__}: {exc}") from None
            # The update may have answered the question the thread was waiting on.
            snapshot = await assistant.graph.aget_state(graph_config(thread_id))
            await self.records.set_thread_status(thread_id, "interrupted" if snapshot.interrupts else "idle")
        conf = config["configurable"]
        return {"thread_id": thread_id, "checkpoint_ns": conf.get("checkpoint_ns", ""),
                "checkpoint_id": conf["checkpoint_id"]}
