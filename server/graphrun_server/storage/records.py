"""Thread and run records: graphrun's bookkeeping beside LangGraph's checkpoints.

Every function is one round trip where it can be: multi-step changes are single
statements with data-modifying CTEs, so they are atomic without an explicit
transaction. The database, not process memory, decides that a thread has at
most one run in flight (a partial unique index), so replicas may share it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from ..errors import ThreadAlreadyExists, ThreadBusy, ThreadNotFound

IN_FLIGHT = ("pending", "running")
# The thread status a run leaves behind, by the run's final status.
THREAD_STATUS_AFTER = {
    "success": "idle",
    "timeout": "idle",
    "cancelled": "idle",
    "interrupted": "interrupted",
    "error": "error",
}


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    status: str
    assistant_id: str | None


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    thread_id: str
    assistant_id: str
    status: str
    attempt: int
    multitask_strategy: str
    spec: dict[str, Any]
    metadata: dict[str, Any]
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


def _thread(row: dict) -> ThreadRecord:
    return ThreadRecord(**{**row, "thread_id": str(row["thread_id"])})


def _run(row: dict) -> RunRecord:
    return RunRecord(**{**row, "run_id": str(row["run_id"]), "thread_id": str(row["thread_id"])})


class Records:
    """Queries on graphrun_thread and graphrun_run."""

    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def create_thread(self, thread_id: str | None, metadata: dict) -> ThreadRecord:
        thread_id = thread_id or str(uuid.uuid4())
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO graphrun_thread (thread_id, metadata) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING *", (thread_id, Jsonb(metadata)))
            row = await cur.fetchone()
        if row is None:
            raise ThreadAlreadyExists(thread_id)
        return _thread(row)

    async def get_thread(self, thread_id: str) -> ThreadRecord:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM graphrun_thread WHERE thread_id = %s", (thread_id,))
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(thread_id)
        return _thread(row)

    async def delete_thread(self, thread_id: str) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM graphrun_thread WHERE thread_id = %s", (thread_id,))
        if cur.rowcount == 0:
            raise ThreadNotFound(thread_id)

    async def begin_run(self, *, run_id: str, thread_id: str, create_thread: bool, assistant_id: str,
                        multitask_strategy: str, spec: dict, metadata: dict) -> RunRecord:
        """Record a pending run and mark its thread busy, in one statement.

        Creates the thread first when create_thread is set. Raises ThreadNotFound,
        or ThreadBusy when the thread already has a run in flight (the partial
        unique index refuses the insert, whichever replica holds the other run).
        """
        sql = """
        WITH created AS (
            INSERT INTO graphrun_thread (thread_id, status, assistant_id)
            SELECT %(thread_id)s, 'busy', %(assistant_id)s WHERE %(create)s
            ON CONFLICT DO NOTHING RETURNING thread_id
        ), existing AS (
            SELECT thread_id FROM graphrun_thread WHERE thread_id = %(thread_id)s FOR UPDATE
        ), target AS (
            SELECT thread_id FROM created UNION ALL SELECT thread_id FROM existing
        ), run AS (
            INSERT INTO graphrun_run (run_id, thread_id, assistant_id, status, multitask_strategy, spec, metadata)
            SELECT %(run_id)s, thread_id, %(assistant_id)s, 'pending', %(strategy)s, %(spec)s, %(metadata)s
            FROM target RETURNING *
        ), busy AS (
            UPDATE graphrun_thread SET status = 'busy', assistant_id = %(assistant_id)s, updated_at = now()
            WHERE thread_id IN (SELECT thread_id FROM existing)
        )
        SELECT * FROM run
        """
        params = {"thread_id": thread_id, "assistant_id": assistant_id, "create": create_thread, "run_id": run_id,
                  "strategy": multitask_strategy, "spec": Jsonb(spec), "metadata": Jsonb(metadata)}
        async with self.pool.connection() as conn:
            try:
                cur = await conn.execute(sql, params)
                row = await cur.fetchone()
            except psycopg.errors.UniqueViolation:
                cur = await conn.execute(
                    "SELECT run_id FROM graphrun_run WHERE thread_id = %s AND status IN ('pending', 'running')",
                    (thread_id,))
                other = await cur.fetchone()
                raise ThreadBusy(thread_id, str(other["run_id"]) if other else None) from None
        if row is None:
            raise ThreadNotFound(thread_id)
        return _run(row)

    async def mark_running(self, run_id: str) -> int:
        """Move a pending run to running and return its new attempt number."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE graphrun_run SET status = 'running', attempt = attempt + 1,"
                " started_at = now(), updated_at = now()"
                " WHERE run_id = %s AND status = 'pending' RETURNING attempt", (run_id,))
            row = await cur.fetchone()
        if row is None:
            raise RuntimeError(f"run {run_id} is not pending")
        return row["attempt"]

    async def finish_run(self, run_id: str, attempt: int, status: str, error: dict | None) -> RunRecord | None:
        """Record a run's final status and free its thread, fenced by the attempt.

        Returns None (and changes nothing) when the run is no longer this
        attempt's to finish: another worker took it over, or it already ended.
        """
        sql = """
        WITH run AS (
            UPDATE graphrun_run SET status = %(status)s, error = %(error)s, ended_at = now(), updated_at = now()
            WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND status IN ('pending', 'running')
            RETURNING *
        ), thread AS (
            UPDATE graphrun_thread SET status = %(thread_status)s, updated_at = now()
            WHERE thread_id IN (SELECT thread_id FROM run)
        )
        SELECT * FROM run
        """
        params = {"run_id": run_id, "attempt": attempt, "status": status,
                  "error": Jsonb(error) if error else None, "thread_status": THREAD_STATUS_AFTER[status]}
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        return _run(row) if row else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT * FROM graphrun_run WHERE run_id = %s", (run_id,))
            row = await cur.fetchone()
        return _run(row) if row else None
