"""Created assistants and their versions: graphrun_assistant (the current version's fields) and
graphrun_assistant_version (every version, never changed once written).

Why versions are rows of their own: a run may pin one, and Update must not change what a pinned
run executes; SetLatest copies a version back as the current one. Lookups are scoped to the
caller as threads are (`auth.owner_filter`): another caller's assistant reads exactly like one
that does not exist. The graphs' default assistants are not stored (assistants.py makes them
from the registry).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from ..auth import caller, owner_filter
from ..errors import AssistantAlreadyExists, AssistantNotFound, AssistantVersionNotFound
from .queries import Queries

# What a version of an assistant says (graphrun_assistant and graphrun_assistant_version both hold them).
FIELDS = ("graph_id", "name", "description", "config", "context", "metadata", "webhook")
_JSON_FIELDS = {"config", "context", "metadata"}
_COLUMNS = ", ".join(FIELDS)
_SEEN = "(%(seen)s::text IS NULL OR a.owner = %(seen)s)"  # the caller's, or any for an admin / no auth


@dataclass(frozen=True, slots=True)
class AssistantRecord:
    """An assistant at one version: its current one, or one of ListVersions'."""

    assistant_id: str
    graph_id: str
    version: int = 1
    name: str = ""
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook: str | None = None
    created_at: dt.datetime | None = None  # of the assistant; of the version, for a version
    updated_at: dt.datetime | None = None  # when its current version last changed (not on a version)
    owner: str | None = None

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}


def _record(row: dict) -> AssistantRecord:
    known = set(AssistantRecord.__dataclass_fields__)
    return AssistantRecord(**{k: v for k, v in row.items() if k in known} | {"assistant_id": str(row["assistant_id"])})


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    """A version's fields as query parameters."""
    return {k: Jsonb(fields[k]) if k in _JSON_FIELDS else fields[k] for k in FIELDS}


class AssistantRecords(Queries):
    """Queries on graphrun_assistant and graphrun_assistant_version."""

    async def create(self, assistant_id: str, fields: dict[str, Any]) -> AssistantRecord:
        """The assistant at version 1, owned by the caller; the assistant and its first version in
        one statement. AssistantAlreadyExists when the id is taken."""
        row = await self._one(
            f"""
            WITH created AS (
                INSERT INTO graphrun_assistant (assistant_id, owner, {_COLUMNS})
                VALUES (%(assistant_id)s, %(owner)s, %(graph_id)s, %(name)s, %(description)s, %(config)s,
                        %(context)s, %(metadata)s, %(webhook)s)
                    ON CONFLICT DO NOTHING
                RETURNING *
            ), first AS (
                INSERT INTO graphrun_assistant_version (assistant_id, version, created_at, {_COLUMNS})
                SELECT assistant_id, version, created_at, {_COLUMNS} FROM created
            )
            SELECT * FROM created
            """,
            {"assistant_id": assistant_id, "owner": caller.get(), **_values(fields)},
        )
        if row is None:
            raise AssistantAlreadyExists(assistant_id)
        return _record(row)

    async def get(self, assistant_id: str) -> AssistantRecord:
        """The assistant at its current version."""
        row = await self._one(
            f"SELECT a.* FROM graphrun_assistant a WHERE a.assistant_id = %(id)s AND {_SEEN}",
            {"id": assistant_id, "seen": owner_filter()},
        )
        if row is None:
            raise AssistantNotFound(assistant_id)
        return _record(row)

    async def get_version(self, assistant_id: str, version: int) -> AssistantRecord:
        """One version of the assistant (one round trip: which of the two is missing, too)."""
        row = await self._one(
            f"""
            SELECT a.assistant_id, a.owner, v.version, v.created_at, {", ".join(f"v.{c}" for c in FIELDS)},
                   v.assistant_id IS NOT NULL AS found
              FROM graphrun_assistant a
              LEFT JOIN graphrun_assistant_version v ON v.assistant_id = a.assistant_id AND v.version = %(version)s
             WHERE a.assistant_id = %(id)s AND {_SEEN}
            """,
            {"id": assistant_id, "version": version, "seen": owner_filter()},
        )
        if row is None:
            raise AssistantNotFound(assistant_id)
        if not row["found"]:
            raise AssistantVersionNotFound(assistant_id, version)
        return _record(row)

    async def list_assistants(
        self, graph_id: str | None, metadata: dict[str, Any], limit: int, after: list | None
    ) -> list[AssistantRecord]:
        """The caller's assistants, newest first, after (created_at, assistant_id) `after`."""
        rows = await self._all(
            f"""
            SELECT a.* FROM graphrun_assistant a
             WHERE {_SEEN}
               AND (%(graph_id)s::text IS NULL OR a.graph_id = %(graph_id)s)
               AND (%(metadata)s::jsonb = '{{}}'::jsonb OR a.metadata @> %(metadata)s::jsonb)
               AND (%(after_time)s::timestamptz IS NULL
                    OR (a.created_at, a.assistant_id) < (%(after_time)s, %(after_id)s::uuid))
             ORDER BY a.created_at DESC, a.assistant_id DESC
             LIMIT %(limit)s
            """,
            {
                "seen": owner_filter(),
                "graph_id": graph_id,
                "metadata": Jsonb(metadata),
                "after_time": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit,
            },
        )
        return [_record(r) for r in rows]

    async def update(self, assistant_id: str, change: Callable[[AssistantRecord], dict[str, Any]]) -> AssistantRecord:
        """Write the next version (the highest so far plus one) with the fields `change` makes of
        the current one, and make it current. `change` runs under the assistant's row lock, so two
        updates never build on the same version; what it raises rolls everything back."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT a.* FROM graphrun_assistant a WHERE a.assistant_id = %(id)s AND {_SEEN} FOR UPDATE",
                {"id": assistant_id, "seen": owner_filter()},
            )
            row = await cur.fetchone()
            if row is None:
                raise AssistantNotFound(assistant_id)
            fields = change(_record(row))
            cur = await conn.execute(
                f"""
                WITH added AS (
                    INSERT INTO graphrun_assistant_version (assistant_id, version, {_COLUMNS})
                    SELECT %(id)s, max(version) + 1, %(graph_id)s, %(name)s, %(description)s, %(config)s,
                           %(context)s, %(metadata)s, %(webhook)s
                      FROM graphrun_assistant_version WHERE assistant_id = %(id)s
                    RETURNING version, created_at
                )
                UPDATE graphrun_assistant a
                   SET ({_COLUMNS}, version, updated_at) =
                       (%(graph_id)s, %(name)s, %(description)s, %(config)s, %(context)s, %(metadata)s,
                        %(webhook)s, added.version, added.created_at)
                  FROM added
                 WHERE a.assistant_id = %(id)s
                RETURNING a.*
                """,
                {"id": assistant_id, **_values(fields)},
            )
            row = await cur.fetchone()
            assert row is not None  # the row is locked: the update finds it
            return _record(row)

    async def delete(self, assistant_id: str) -> None:
        """The assistant and all its versions. Runs keep what they ran (their effective spec)."""
        deleted = await self._count(
            f"DELETE FROM graphrun_assistant a WHERE a.assistant_id = %(id)s AND {_SEEN}",
            {"id": assistant_id, "seen": owner_filter()},
        )
        if deleted == 0:
            raise AssistantNotFound(assistant_id)

    async def list_versions(self, assistant_id: str, limit: int, before: int | None) -> list[AssistantRecord]:
        """The assistant's versions, newest first, below version `before`."""
        await self.get(assistant_id)  # NOT_FOUND for an unknown (or another caller's) assistant
        rows = await self._all(
            f"""
            SELECT assistant_id, version, created_at, {_COLUMNS} FROM graphrun_assistant_version
             WHERE assistant_id = %(id)s AND (%(before)s::integer IS NULL OR version < %(before)s)
             ORDER BY version DESC
             LIMIT %(limit)s
            """,
            {"id": assistant_id, "before": before, "limit": limit},
        )
        return [_record(r) for r in rows]

    async def set_latest(self, assistant_id: str, version: int) -> AssistantRecord:
        """Make an existing version the current one (its fields back into graphrun_assistant)."""
        row = await self._one(
            f"""
            UPDATE graphrun_assistant a
               SET ({_COLUMNS}, version, updated_at) =
                   ({", ".join(f"v.{c}" for c in FIELDS)}, v.version, now())
              FROM graphrun_assistant_version v
             WHERE a.assistant_id = %(id)s AND {_SEEN} AND v.assistant_id = a.assistant_id AND v.version = %(version)s
            RETURNING a.*
            """,
            {"id": assistant_id, "version": version, "seen": owner_filter()},
        )
        if row is None:
            await self.get(assistant_id)  # NOT_FOUND for the assistant itself first
            raise AssistantVersionNotFound(assistant_id, version)
        return _record(row)
