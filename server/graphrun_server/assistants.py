"""Assistants: a graph with a configuration of its own (config, context, webhook), as in
LangGraph Server. One graph, several configured agents: another prompt, model or tool set.

Each served graph keeps its default assistant, whose id is the graph id (version 1, nothing
configured); it follows the project's `langgraph.json` and cannot be changed. Assistants made
with `AssistantService.Create` are stored with every version (storage/assistants.py); `Update`
writes the next version and makes it current, `SetLatest` makes an older one current again.

A run names either kind (`resolve`): it executes the assistant's graph with the assistant's
config and context under its own, merged as LangGraph merges them, and the assistant's webhook
unless it names one. That effective request is what the run stores, so a takeover on another
replica runs the same thing even if the assistant changed meanwhile.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from .errors import (
    AssistantAlreadyExists,
    AssistantNotFound,
    AssistantVersionNotFound,
    FieldViolation,
    GraphNotServed,
    InvalidArgument,
    invalid,
)
from .registry import Assistant, Registry
from .runs.request import RunRequest
from .storage.assistants import AssistantRecord, AssistantRecords
from .storage.records import decode_token, encode_token, page_after
from .webhooks import WebhookPolicy

_GRAPHS_DONE = "graphs"  # a List page token naming how many default assistants were returned


def merge_config(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """A run's config over its assistant's, as LangGraph merges configs: `configurable` key by
    key (the run's win), `tags` concatenated (duplicates dropped), `recursion_limit` the run's if
    it sets one."""
    merged: dict[str, Any] = {}
    configurable = {**base.get("configurable", {}), **own.get("configurable", {})}
    if configurable:
        merged["configurable"] = configurable
    tags = list(dict.fromkeys([*base.get("tags", []), *own.get("tags", [])]))
    if tags:
        merged["tags"] = tags
    limit = own.get("recursion_limit", base.get("recursion_limit"))
    if limit is not None:
        merged["recursion_limit"] = limit
    return merged


def merge_context(
    graph: Assistant, base: dict[str, Any], own: dict[str, Any] | None, own_configurable: dict[str, Any]
) -> dict[str, Any] | None:
    """A run's context over its assistant's, key by key. A run without a context contributes the
    fields of the schema it sent in `configurable` (how clients older than context send them)."""
    if not base:
        return own
    if own is None:
        own = graph.run_context(None, own_configurable) or {}
    return {**base, **own}


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class Assistants:
    """The graphs' default assistants and the stored ones, for AssistantService and for runs."""

    def __init__(self, registry: Registry, records: AssistantRecords, webhooks: WebhookPolicy | None = None):
        self.registry = registry
        self.records = records
        self.webhooks = webhooks or WebhookPolicy(None, None)
        self._graphs = {a.graph_id: a for a in registry.all()}

    # -- lookups ----------------------------------------------------------------------------

    def graph(self, graph_id: str) -> Assistant | None:
        """The served graph, or None when this server does not serve it (any more)."""
        return self._graphs.get(graph_id)

    @staticmethod
    def default(graph: Assistant) -> AssistantRecord:
        """A graph's default assistant: its id is the graph id, and it configures nothing."""
        return AssistantRecord(
            assistant_id=graph.graph_id, graph_id=graph.graph_id, name=graph.graph_id, description=graph.description
        )

    def is_default(self, assistant_id: str) -> bool:
        return assistant_id in self._graphs

    def _stored_id(self, assistant_id: str) -> str:
        """A created assistant's id in its canonical form; NOT_FOUND for anything that cannot be one."""
        canonical = _uuid(assistant_id)
        if canonical is None:
            raise AssistantNotFound(assistant_id)
        return canonical

    async def get(self, assistant_id: str) -> AssistantRecord:
        if graph := self._graphs.get(assistant_id):
            return self.default(graph)
        return await self.records.get(self._stored_id(assistant_id))

    async def get_version(self, assistant_id: str, version: int | None) -> AssistantRecord:
        """The assistant at `version` (None: its current one)."""
        if version is None:
            return await self.get(assistant_id)
        if graph := self._graphs.get(assistant_id):
            if version != 1:
                raise AssistantVersionNotFound(assistant_id, version)
            return self.default(graph)
        return await self.records.get_version(self._stored_id(assistant_id), version)

    async def list_assistants(
        self, graph_id: str | None, metadata: dict[str, Any], page_size: int, page_token: str
    ) -> tuple[list[AssistantRecord], str]:
        """One page: the default assistants first (by graph id), then the caller's created ones,
        newest first. The token names where the next page starts in one list or the other."""
        defaults = [self.default(g) for g in self._graphs.values() if not metadata and graph_id in (None, g.graph_id)]
        offset, after = 0, None
        if page_token:
            parts = decode_token(page_token, "page_token")
            if parts[0] == _GRAPHS_DONE and len(parts) == 2 and parts[1].isdigit():
                offset = int(parts[1])
            else:
                offset, after = len(defaults), page_after(page_token)
        page = defaults[offset : offset + page_size]
        if offset + len(page) < len(defaults):
            return page, encode_token(_GRAPHS_DONE, offset + len(page))
        room = page_size - len(page)
        stored = await self.records.list_assistants(graph_id, metadata, room + 1, after)
        if room == 0:  # the page is full of defaults: is there anything after them?
            return page, encode_token(_GRAPHS_DONE, len(defaults)) if stored else ""
        page += stored[:room]
        token = ""
        if len(stored) > room:
            last = stored[room - 1]
            token = encode_token(last.created_at.isoformat() if last.created_at else "", last.assistant_id)
        return page, token

    async def list_versions(
        self, assistant_id: str, page_size: int, page_token: str
    ) -> tuple[list[AssistantRecord], str]:
        """The assistant's versions, newest first; a default assistant has its one."""
        before = None
        if page_token:
            parts = decode_token(page_token, "page_token")
            if len(parts) != 1 or not parts[0].isdigit():
                raise invalid("page_token", "not a token this server returned")
            before = int(parts[0])
        if graph := self._graphs.get(assistant_id):
            return ([] if before is not None else [self.default(graph)]), ""
        versions = await self.records.list_versions(self._stored_id(assistant_id), page_size + 1, before)
        token = encode_token(versions[page_size - 1].version) if len(versions) > page_size else ""
        return versions[:page_size], token

    # -- changes ----------------------------------------------------------------------------

    def _changeable(self, assistant_id: str) -> str:
        if assistant_id in self._graphs:
            raise invalid(
                "assistant_id",
                f"is graph {assistant_id!r}'s default assistant, which follows the graph and cannot be "
                "changed; create an assistant of the graph (AssistantService.Create) to configure it",
            )
        return self._stored_id(assistant_id)

    def _check(self, fields: dict[str, Any], given: set[str]) -> None:
        """What the graph refuses in an assistant's fields: a graph it does not serve, a context its
        schema refuses. A context may leave out fields the schema requires: runs add them (the
        run's whole context is checked when it starts). `given`: the fields the request set (a
        field carried over from the current version is named as such)."""
        graph = self._graphs.get(fields["graph_id"])
        if graph is None:
            served = ", ".join(self._graphs) or "none"
            raise invalid(
                "graph_id", f"{fields['graph_id'][:64]!r} is not a graph this server serves; graphs: {served}"
            )
        violations = graph.context_violations(fields["context"] or None, {}, path="context", partial=True)
        if violations and "context" not in given:
            violations = [
                FieldViolation(v.field, f"(the current version's, under graph {graph.graph_id!r}) {v.description}")
                for v in violations
            ]
        if violations:
            raise InvalidArgument(violations)

    async def create(self, assistant_id: str | None, fields: dict[str, Any]) -> AssistantRecord:
        """A new assistant at version 1 (`assistant_id`: a UUID, or None for a new one)."""
        self._check(fields, set(fields))
        if assistant_id is not None and assistant_id in self._graphs:
            raise AssistantAlreadyExists(assistant_id)
        return await self.records.create(assistant_id or str(uuid.uuid4()), fields)

    async def update(self, assistant_id: str, changes: dict[str, Any]) -> AssistantRecord:
        """The next version: the current one's fields with `changes` (the fields the request set)
        over them, made current."""
        stored_id = self._changeable(assistant_id)

        def change(current: AssistantRecord) -> dict[str, Any]:
            fields = {**current.fields(), **changes}
            self._check(fields, set(changes))
            return fields

        return await self.records.update(stored_id, change)

    async def delete(self, assistant_id: str) -> None:
        await self.records.delete(self._changeable(assistant_id))

    async def set_latest(self, assistant_id: str, version: int) -> AssistantRecord:
        return await self.records.set_latest(self._changeable(assistant_id), version)

    # -- runs -------------------------------------------------------------------------------

    async def resolve(self, req: RunRequest) -> tuple[Assistant, RunRequest]:
        """The graph a run executes and the request it stores: the assistant's version (its current
        one unless the run pins one) under the run's own config, context and webhook."""
        record = await self.get_version(req.assistant_id, req.assistant_version)
        graph = self._graphs.get(record.graph_id)
        if graph is None:
            raise GraphNotServed(record.assistant_id, record.graph_id)
        effective = dataclasses.replace(
            req, assistant_id=record.assistant_id, graph_id=graph.graph_id, assistant_version=record.version
        )
        if record.config:
            effective.config = merge_config(record.config, req.config)
        effective.context = merge_context(graph, record.context, req.context, req.config.get("configurable", {}))
        if req.webhook is None and record.webhook and req.on_completion != "delete":
            try:
                self.webhooks.check(record.webhook, "spec.assistant_id")
            except InvalidArgument as exc:
                raise invalid(
                    "spec.assistant_id",
                    f"its webhook is refused: {exc.violations[0].description}; update the assistant or "
                    "name another spec.webhook",
                ) from None
            effective.webhook = record.webhook
        return graph, effective
