"""What every store of graphrun's (runs and threads, assistants, crons) runs its statements with."""

from __future__ import annotations

from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool


class Queries:
    """A statement on a pooled connection of its own, answered as dict rows."""

    def __init__(self, pool: AsyncConnectionPool[Any]):
        # The pool's connections make dict rows (database.make_pool); its type does not say so.
        self.pool = cast("AsyncConnectionPool[AsyncConnection[DictRow]]", pool)

    async def _one(self, sql: str, params: Any = None) -> dict | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def _all(self, sql: str, params: Any = None) -> list[dict]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _count(self, sql: str, params: Any = None) -> int:
        """How many rows the statement (an UPDATE or DELETE) touched."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount
