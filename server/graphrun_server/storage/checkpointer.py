"""LangGraph's Postgres checkpointer, made fit for many concurrent runs and replicas.

Two changes to `AsyncPostgresSaver`, nothing else:
- No process-wide lock. Given a pool, the upstream saver still takes one
  `asyncio.Lock` around every query, so all checkpoint I/O of a process runs
  one query at a time (a known LangGraph issue). With a pool each call has its
  own connection; the lock protects nothing.
- Fenced writes. A run's checkpoint writes carry its run id and attempt (in
  `configurable`); each write runs in a transaction that first calls
  `graphrun_fence`, so a replica that lost its run to another (a stalled
  process, a lease that expired) cannot write into the thread any more.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row

FENCE_KEY = "__graphrun_fence"  # configurable key: (run_id, attempt); "__" keeps it out of metadata

_fence: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar("graphrun_fence", default=None)


class FencedPostgresSaver(AsyncPostgresSaver):
    # Called with (run_id, attempt) when a write is refused, so the runner can stop that
    # attempt at once (with async durability LangGraph would otherwise run more nodes first).
    on_fenced: Callable[[str, int], None] | None = None

    def _refused(self, exc: psycopg.Error, fence: tuple[str, int] | None) -> None:
        if fence is not None and exc.sqlstate == "GR001" and self.on_fenced is not None:
            self.on_fenced(*fence)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[Any]:
        fence = _fence.get()
        async with self.conn.connection() as conn:
            if pipeline:
                # One round trip. With autocommit, the statements of a pipeline up to
                # its Sync form one implicit transaction: the fence check and the
                # writes commit together, and a failed fence skips the writes.
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    if fence is not None:
                        await cur.execute("SELECT graphrun_fence(%s, %s)", fence)
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    @contextmanager
    def _fencing(self, config):
        """Run one write under the run's fence (if its config carries one)."""
        fence = config["configurable"].get(FENCE_KEY)
        token = _fence.set(fence)
        try:
            yield
        except psycopg.Error as exc:
            self._refused(exc, fence)
            raise
        finally:
            _fence.reset(token)

    async def aput(self, config, checkpoint, metadata, new_versions):
        with self._fencing(config):
            return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        with self._fencing(config):
            return await super().aput_writes(config, writes, task_id, task_path)
