"""Cron records (graphrun_cron): what each cron runs and when it ticks next.

Lookups are scoped to the caller as threads' are (another caller's cron reads as one that does
not exist). The scheduler's queries (`claim_due`, `finish_tick`, `seconds_until_due`) run
outside any call and see every owner's crons. Why a tick starts exactly one run is told in
crons.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..auth import caller, owner_filter
from ..errors import CronAlreadyExists, CronNotFound, ThreadNotFound
from .queries import Queries
from .records import encode_token, page_after


@dataclass(frozen=True, slots=True)
class CronRecord:
    cron_id: str
    owner: str | None
    schedule: str
    timezone: str
    assistant_id: str
    thread_id: str | None
    spec: dict[str, Any]  # the RunRequest each tick submits, as JSON
    end_time: dt.datetime | None
    paused: bool
    metadata: dict[str, Any]
    next_run_at: dt.datetime | None
    claimed_until: dt.datetime | None
    last_tick_at: dt.datetime | None
    last_run_id: str | None
    last_skip: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


_FIELDS = {f.name for f in fields(CronRecord)}
# What Create sets and Update may change (the rest the scheduler keeps).
WRITABLE = ("schedule", "timezone", "assistant_id", "thread_id", "spec", "end_time", "paused", "metadata")


def _cron(row: dict) -> CronRecord:
    values = {k: v for k, v in row.items() if k in _FIELDS}
    for key in ("cron_id", "thread_id", "last_run_id"):
        if values[key] is not None:
            values[key] = str(values[key])
    return CronRecord(**values)


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if k in ("spec", "metadata") else v for k, v in values.items()}


class CronStore(Queries):
    # -- the API's ----------------------------------------------------------------------

    async def check_thread(self, thread_id: str, owner: str | None) -> None:
        """ThreadNotFound unless the thread exists and is `owner`'s (a cron's runs are its owner's,
        and a run only starts on its caller's thread)."""
        row = await self._one(
            "SELECT 1 AS yes FROM graphrun_thread WHERE thread_id = %s AND (%s::text IS NULL OR owner = %s)",
            (thread_id, owner, owner),
        )
        if row is None:
            raise ThreadNotFound(thread_id)

    async def create(self, cron_id: str, values: dict[str, Any], next_run_at: dt.datetime | None) -> CronRecord:
        columns = ", ".join(WRITABLE)
        try:
            row = await self._one(
                f"INSERT INTO graphrun_cron (cron_id, owner, next_run_at, {columns})"
                f" VALUES (%(cron_id)s, %(owner)s, %(next_run_at)s, {', '.join(f'%({c})s' for c in WRITABLE)})"
                " ON CONFLICT DO NOTHING RETURNING *",
                {"cron_id": cron_id, "owner": caller.get(), "next_run_at": next_run_at, **_params(values)},
            )
        except psycopg.errors.ForeignKeyViolation:  # its thread was deleted meanwhile
            raise ThreadNotFound(values["thread_id"]) from None
        if row is None:
            raise CronAlreadyExists(cron_id)
        return _cron(row)

    async def get(self, cron_id: str) -> CronRecord:
        row = await self._one(
            "SELECT * FROM graphrun_cron WHERE cron_id = %s AND (%s::text IS NULL OR owner = %s)",
            (cron_id, owner_filter(), owner_filter()),
        )
        if row is None:
            raise CronNotFound(cron_id)
        return _cron(row)

    async def update(
        self, cron_id: str, values: dict[str, Any], next_run_at: dt.datetime | None, reschedule: bool
    ) -> CronRecord:
        """Write the cron's new values; with `reschedule`, its next tick too, dropping a claim of
        the former one (the replica holding it finds the tick moved and leaves the cron alone)."""
        assignments = ", ".join(f"{c} = %({c})s" for c in WRITABLE)
        try:
            row = await self._one(
                f"UPDATE graphrun_cron SET {assignments},"
                " next_run_at = CASE WHEN %(reschedule)s THEN %(next_run_at)s ELSE next_run_at END,"
                " claimed_until = CASE WHEN %(reschedule)s THEN NULL ELSE claimed_until END, updated_at = now()"
                " WHERE cron_id = %(cron_id)s AND (%(seen)s::text IS NULL OR owner = %(seen)s) RETURNING *",
                {
                    "cron_id": cron_id,
                    "seen": owner_filter(),
                    "next_run_at": next_run_at,
                    "reschedule": reschedule,
                    **_params(values),
                },
            )
        except psycopg.errors.ForeignKeyViolation:
            raise ThreadNotFound(values["thread_id"]) from None
        if row is None:
            raise CronNotFound(cron_id)
        return _cron(row)

    async def delete(self, cron_id: str) -> None:
        deleted = await self._count(
            "DELETE FROM graphrun_cron WHERE cron_id = %s AND (%s::text IS NULL OR owner = %s)",
            (cron_id, owner_filter(), owner_filter()),
        )
        if deleted == 0:
            raise CronNotFound(cron_id)

    async def list_crons(
        self, assistant_id: str | None, thread_id: str | None, page_size: int, page_token: str
    ) -> tuple[list[CronRecord], str]:
        """The caller's crons, newest first; the token names the last one returned."""
        after = page_after(page_token)
        rows = await self._all(
            """
            SELECT * FROM graphrun_cron
             WHERE (%(owner)s::text IS NULL OR owner = %(owner)s)
               AND (%(assistant_id)s::text IS NULL OR assistant_id = %(assistant_id)s)
               AND (%(thread_id)s::uuid IS NULL OR thread_id = %(thread_id)s::uuid)
               AND (%(after_time)s::timestamptz IS NULL
                    OR (created_at, cron_id) < (%(after_time)s, %(after_id)s::uuid))
             ORDER BY created_at DESC, cron_id DESC
             LIMIT %(limit)s
            """,
            {
                "owner": owner_filter(),
                "assistant_id": assistant_id,
                "thread_id": thread_id,
                "limit": page_size + 1,
                "after_time": after[0] if after else None,
                "after_id": after[1] if after else None,
            },
        )
        crons = [_cron(r) for r in rows[:page_size]]
        token = encode_token(crons[-1].created_at.isoformat(), crons[-1].cron_id) if len(rows) > page_size else ""
        return crons, token

    # -- the scheduler's ------------------------------------------------------------------

    async def claim_due(self, lease: float, limit: int) -> tuple[list[CronRecord], dt.datetime | None]:
        """Claim up to `limit` crons whose next tick is due and that no replica is starting (or whose
        replica's claim lapsed), for `lease` seconds; and the database's time now."""
        rows = await self._all(
            """
            WITH due AS (
                SELECT cron_id FROM graphrun_cron
                 WHERE next_run_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
                 ORDER BY next_run_at
                 LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED
            )
            UPDATE graphrun_cron c SET claimed_until = now() + make_interval(secs => %(lease)s)
              FROM due
             WHERE c.cron_id = due.cron_id
            RETURNING c.*, now() AS now
            """,
            {"lease": lease, "limit": limit},
        )
        return [_cron(r) for r in rows], (rows[0]["now"] if rows else None)

    async def finish_tick(
        self,
        cron_id: str,
        tick: dt.datetime,
        next_run_at: dt.datetime | None,
        run_id: str | None,
        skip: dict[str, Any] | None,
    ) -> bool:
        """Record how the tick at `tick` went and move the cron on to `next_run_at`, unless the tick
        is no longer its next one (an Update moved it, or another replica finished it after this
        one's claim lapsed). Whether it was recorded."""
        recorded = await self._count(
            """
            UPDATE graphrun_cron
               SET next_run_at = %(next)s, claimed_until = NULL, last_tick_at = %(tick)s,
                   last_run_id = coalesce(%(run_id)s::uuid, last_run_id),
                   last_skip = coalesce(%(skip)s, last_skip)
             WHERE cron_id = %(cron_id)s AND next_run_at = %(tick)s
            """,
            {
                "cron_id": cron_id,
                "tick": tick,
                "next": next_run_at,
                "run_id": run_id,
                "skip": Jsonb(skip) if skip else None,
            },
        )
        return recorded == 1

    async def seconds_until_due(self) -> float | None:
        """How long until the earliest tick any replica may take (a claimed one: until its claim
        lapses); None when no cron has a next tick."""
        row = await self._one(
            "SELECT extract(epoch FROM min(greatest(next_run_at, claimed_until)) - now())::float8 AS seconds"
            " FROM graphrun_cron WHERE next_run_at IS NOT NULL"
        )
        return None if row is None or row["seconds"] is None else max(row["seconds"], 0.0)
