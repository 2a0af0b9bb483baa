"""Thread, run and run-event records: graphrun's bookkeeping beside LangGraph's checkpoints.

Every change of a run is one round trip, made atomic by a single statement or a
PL/pgSQL function of graphrun_server/sql/ (graphrun_begin_run, _finish_run,
_cancel_run). PostgreSQL, not process memory, decides who runs what: a partial
unique index allows one running run per thread, claims use SKIP LOCKED, and
every write of a run after it started is fenced by its attempt number.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from ..auth import caller, owner_filter
from ..errors import (
    REASON_THREAD_INTERRUPTED,
    SQLSTATE_THREAD_BUSY,
    SQLSTATE_THREAD_INTERRUPTED,
    SQLSTATE_THREAD_NOT_FOUND,
    ThreadAlreadyExists,
    ThreadBusy,
    ThreadInterrupted,
    ThreadNotFound,
    invalid,
)
from ..events import END, RunEvent
from .checkpointer import Rider
from .queries import Queries


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    thread_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    metadata: dict[str, Any]
    status: str
    assistant_id: str | None
    owner: str | None = None
    ttl_minutes: float | None = None  # its own time-to-live (minutes after `updated_at`), if it has one
    ttl_strategy: str | None = None
    graph_id: str | None = None  # the graph of its latest run (None on threads from before assistants were stored)

    @property
    def graph(self) -> str | None:
        """The graph its state is read with: its latest run's."""
        return self.graph_id or self.assistant_id


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    thread_id: str
    assistant_id: str
    status: str
    attempt: int
    multitask_strategy: str
    on_disconnect: str
    spec: dict[str, Any]
    metadata: dict[str, Any]
    error: dict[str, Any] | None
    queue_position: int
    not_before: dt.datetime
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    cancel_action: str | None
    current_node: str | None
    step: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    owner: str | None = None
    handoffs: int = 0  # clean hand-backs (drain, database outage): executions that did not fail
    webhook: dict[str, Any] | None = None  # its webhook's delivery (graphrun_webhook), where read with it
    graph_id: str | None = None  # the graph it executes (None on runs from before assistants were stored)
    assistant_version: int | None = None  # the version of its assistant it runs

    @property
    def graph(self) -> str:
        """The graph it executes: `assistant_id` names a created assistant or, before those, the graph."""
        return self.graph_id or self.assistant_id

    @property
    def ended(self) -> bool:
        return self.status not in ("pending", "running")


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this replica now executes, with what it needs to continue it."""

    run: RunRecord
    last_sequence: int  # the run's events already stored (from earlier attempts)
    previous_status: str | None  # how the thread's previous run ended
    requested_at: float = field(default_factory=time.monotonic)  # its lease was asked for then: set no earlier


_RUN_FIELDS = {f.name for f in fields(RunRecord)}
# begin_run and finish_run know the run's spec already: not sending it back saves bytes and parsing.
_RUN_COLUMNS_BUT_SPEC = ", ".join(sorted(_RUN_FIELDS - {"spec", "webhook"}))  # webhook: another table

# Two statements, not one with `announce` as a parameter: PostgreSQL plans a prepared statement
# anew on each execution while that plan is cheaper than its generic one, and a parameter that
# switches a CTE off made it so (0.24 ms of planning on each run's acceptance; 0.05 ms now).
# The announced metadata event wakes no one (no NOTIFY graphrun_event): a follower can only find
# the run once this transaction has committed, and then reads the event from the table; a
# notification would only wake every replica's listener for nothing, on each streamed run's start.
# (PostgreSQL executes a data-modifying WITH whether or not the query reads it.)
_BEGIN_RUN = (
    "graphrun_begin_run(%s, %s, %s, %s, %s, %s, %s, %s, make_interval(secs => %s), %s, %s,"
    " make_interval(secs => %s), %s, %s, %s)"
)
_BEGIN = f"SELECT {_RUN_COLUMNS_BUT_SPEC} FROM {_BEGIN_RUN}"
_BEGIN_ANNOUNCED = (
    f"WITH begun AS (SELECT {_RUN_COLUMNS_BUT_SPEC} FROM {_BEGIN_RUN}),"
    " announced AS (INSERT INTO graphrun_run_event (run_id, sequence, kind, data)"
    " SELECT run_id, 1, 'metadata', jsonb_build_object('run_id', run_id::text, 'thread_id', thread_id::text,"
    " 'assistant_id', assistant_id, 'attempt', attempt)"
    " FROM begun WHERE status = 'running' AND attempt = 1 AND lease_owner IS NOT NULL"
    " ON CONFLICT DO NOTHING)"
    " SELECT * FROM begun"
)


def _thread(row: dict) -> ThreadRecord:
    return ThreadRecord(**{**row, "thread_id": str(row["thread_id"])})


def _run(row: dict) -> RunRecord:
    return RunRecord(
        **{k: v for k, v in row.items() if k in _RUN_FIELDS}
        | {"run_id": str(row["run_id"]), "thread_id": str(row["thread_id"])}
    )


# A subgraph event's namespace, stored in its data: graphrun_finish_run and append_events take
# events as three arrays (sequence, kind, data), and SQL cannot unnest an array of arrays.
NAMESPACE_KEY = "__namespace"


def event_rows(events: list[RunEvent]) -> tuple[list[int], list[str], list[Jsonb]]:
    """Events as the three arrays graphrun_finish_run and append_events take.

    The end event is stored without its in-memory `run` record: readers fetch
    the run itself.
    """
    seqs, kinds, data = [], [], []
    for e in events:
        seqs.append(e.sequence)
        kinds.append(e.kind)
        data.append(Jsonb(_stored_data(e)))
    return seqs, kinds, data


def event_batch(events: list[RunEvent]) -> list[list]:
    """Events as `[sequence, kind, data]` triples, stored as `event_rows` stores them."""
    return [[e.sequence, e.kind, _stored_data(e)] for e in events]


def _json_text(value: Any) -> str:
    """JSON-safe `value` as JSON text, by orjson (a fourteenth of `json.dumps`' time on a batch
    of token events, which a replica streaming for many runs writes every few milliseconds). An
    integer beyond 64 bits, which orjson refuses, falls back to `json.dumps`."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def _stored_data(e: RunEvent) -> dict:
    stored = {k: v for k, v in e.data.items() if k != "run"} if e.kind == END else e.data
    return {**stored, NAMESPACE_KEY: list(e.namespace)} if e.namespace else stored


def _stored_event(row: dict) -> RunEvent:
    data = row["data"]
    namespace = data.pop(NAMESPACE_KEY, None) or row["namespace"]
    return RunEvent(row["sequence"], row["kind"], data, row["created_at"].timestamp(), tuple(namespace))


def run_record(row: dict | None, spec: dict[str, Any]) -> RunRecord | None:
    """The record of a run row selected without its spec (`_RUN_COLUMNS_BUT_SPEC`: begin_run's and
    finish_run's answers), given the spec the caller knows. None for no row."""
    return _run({**row, "spec": spec}) if row else None


@contextlib.contextmanager
def _begin_errors(thread_id: str):
    """graphrun_begin_run's refusals as graphrun's errors."""
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate == SQLSTATE_THREAD_NOT_FOUND:
            raise ThreadNotFound(thread_id) from None
        if exc.sqlstate == SQLSTATE_THREAD_BUSY:
            raise ThreadBusy(thread_id, exc.diag.message_detail) from None
        if exc.sqlstate == SQLSTATE_THREAD_INTERRUPTED:
            raise ThreadInterrupted(thread_id) from None
        raise


def encode_token(*parts: Any) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).decode()


def decode_token(token: str, field_path: str) -> list[str]:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(field_path, "not a token this server returned") from None


# A thread idle past its time-to-live: its own, else the default (`%(minutes)s`, NULL for none).
_EXPIRED = "status <> 'busy' AND updated_at + make_interval(secs => 60 * coalesce(ttl_minutes, %(minutes)s)) < now()"

# LangGraph's checkpoint tables (langgraph-checkpoint-postgres) and their columns but thread_id: a
# thread's copy is its rows under another thread id.
_CHECKPOINT_TABLES = (
    ("checkpoints", "checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"),
    ("checkpoint_blobs", "checkpoint_ns, channel, version, type, blob"),
    ("checkpoint_writes", "checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path"),
)


def page_after(page_token: str) -> list | None:
    """The (created_at, id) a page token names: the last row of the previous page."""
    if not page_token:
        return None
    after = decode_token(page_token, "page_token")
    try:
        if len(after) == 2:
            return [dt.datetime.fromisoformat(after[0]), str(uuid.UUID(after[1]))]
    except ValueError:
        pass
    raise invalid("page_token", "not a token this server returned")


def _caller() -> str | None:
    """The caller's identity: the owner of what it creates."""
    return caller.get()


class Records(Queries):
    """Queries on graphrun_thread, graphrun_run and graphrun_run_event.

    Every thread and run lookup is scoped to the authenticated caller of the current
    call (`auth.caller`, like row-level security): another caller's thread or run is
    answered exactly as one that does not exist. Without authentication the caller
    is None and nothing is filtered; the runner's own work (claims, takeovers) runs
    outside any call and is not filtered either.
    """

    # -- threads ----------------------------------------------------------------------

    async def create_thread(
        self, thread_id: str | None, metadata: dict, ttl: tuple[float, str] | None = None
    ) -> ThreadRecord:
        thread_id = thread_id or str(uuid.uuid4())
        owner = _caller()
        if owner is not None:
            metadata = {**metadata, "owner": owner}  # as the seed's contract shows it
        minutes, strategy = ttl or (None, None)
        row = await self._one(
            "INSERT INTO graphrun_thread (thread_id, metadata, owner, ttl_minutes, ttl_strategy)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING *",
            (thread_id, Jsonb(metadata), owner, minutes, strategy),
        )
        if row is None:
            raise ThreadAlreadyExists(thread_id)
        return _thread(row)

    async def get_thread(self, thread_id: str) -> ThreadRecord:
        row = await self._one(
            "SELECT * FROM graphrun_thread WHERE thread_id = %s AND (%s::text IS NULL OR owner = %s)",
            (thread_id, owner_filter(), owner_filter()),
        )
        if row is None:
            raise ThreadNotFound(thread_id)
        return _thread(row)

    async def list_threads(
        self, statuses: list[str], metadata: dict, assistant_id: str | None, page_size: int, page_token: str
    ) -> tuple[list[ThreadRecord], str]:
        """The caller's threads, newest first; the token names the last one returned."""
        after = page_after(page_token)
        owner = owner_filter()
        rows = await self._all(
            f"""
            SELECT * FROM graphrun_thread
             WHERE {"owner = %(owner)s" if owner is not None else "TRUE"}
               AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
               AND (%(metadata)s::jsonb = '{{}}'::jsonb OR metadata @> %(metadata)s::jsonb)
               AND (%(assistant_id)s::text IS NULL OR assistant_id = %(assistant_id)s)
               AND (%(after_time)s::timestamptz IS NULL
                    OR (created_at, thread_id) < (%(after_time)s, %(after_id)s::uuid))
             ORDER BY created_at DESC, thread_id DESC
             LIMIT %(limit)s
            """,
            {
                "owner": owner,
                "statuses": statuses,
                "metadata": Jsonb(metadata),
                "assistant_id": assistant_id,
                "limit": page_size + 1,
                "after_time": after[0] if after else None,
                "after_id": after[1] if after else None,
            },
        )
        threads = [_thread(r) for r in rows[:page_size]]
        token = encode_token(threads[-1].created_at.isoformat(), threads[-1].thread_id) if len(rows) > page_size else ""
        return threads, token

    async def copy_thread(self, source: str, target: str | None) -> ThreadRecord:
        """A new thread of the caller's with `source`'s record and LangGraph's checkpoint rows (all
        namespaces, with their blobs and pending writes), in one transaction. The caller holds
        `thread_changing(source)`, so no run writes to it meanwhile."""
        target = target or str(uuid.uuid4())
        owner = _caller()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                """
                INSERT INTO graphrun_thread (thread_id, metadata, owner, status, assistant_id, ttl_minutes,
                                             ttl_strategy, graph_id)
                SELECT %(target)s, CASE WHEN %(owner)s::text IS NULL THEN metadata
                                        ELSE metadata || jsonb_build_object('owner', %(owner)s::text) END,
                       %(owner)s, CASE WHEN status = 'busy' THEN 'idle' ELSE status END, assistant_id, ttl_minutes,
                       ttl_strategy, graph_id
                  FROM graphrun_thread
                 WHERE thread_id = %(source)s AND (%(seen)s::text IS NULL OR owner = %(seen)s)
                    ON CONFLICT DO NOTHING
                RETURNING *
                """,
                {"target": target, "source": source, "owner": owner, "seen": owner_filter()},
            )
            row = await cur.fetchone()
            if row is None:
                exists = await conn.execute("SELECT 1 FROM graphrun_thread WHERE thread_id = %s", (target,))
                if await exists.fetchone():
                    raise ThreadAlreadyExists(target)
                raise ThreadNotFound(source)
            for table, columns in _CHECKPOINT_TABLES:
                await conn.execute(
                    f"INSERT INTO {table} (thread_id, {columns}) "  # our own names, from _CHECKPOINT_TABLES
                    f"SELECT %s, {columns} FROM {table} WHERE thread_id = %s",
                    (target, source),
                )
        return _thread(row)

    async def expired_threads(self, default: tuple[float, str] | None, limit: int) -> list[tuple[str, str]]:
        """(thread id, strategy) of idle threads whose time-to-live (their own, else `default`:
        minutes and strategy) passed since their last activity, the longest idle first."""
        minutes, strategy = default or (None, "delete")
        rows = await self._all(
            f"""
            SELECT thread_id::text AS thread_id, coalesce(ttl_strategy, %(strategy)s) AS strategy
              FROM graphrun_thread WHERE {_EXPIRED} ORDER BY updated_at LIMIT %(limit)s
            """,
            {"minutes": minutes, "strategy": strategy, "limit": limit},
        )
        return [(r["thread_id"], r["strategy"]) for r in rows]

    async def still_expired(self, thread_id: str, default: tuple[float, str] | None) -> bool:
        """Whether the thread is still idle past its time-to-live (checked again under its lock: a run
        may have come and gone since it was listed)."""
        row = await self._one(
            f"SELECT 1 AS yes FROM graphrun_thread WHERE thread_id = %(thread_id)s AND {_EXPIRED}",
            {"thread_id": thread_id, "minutes": (default or (None,))[0]},
        )
        return row is not None

    async def touch_thread(self, thread_id: str) -> None:
        """Its last activity is now (after a prune by its TTL: the next one comes a TTL later)."""
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE graphrun_thread SET updated_at = now() WHERE thread_id = %s", (thread_id,))

    async def forget_thread(self, thread_id: str) -> None:
        """Delete a thread with its runs, their events and its checkpoints, in one transaction (a
        stateless run's thread once it ended: no run of it is in flight)."""
        async with self.pool.connection() as conn, conn.transaction():
            for table, _columns in _CHECKPOINT_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE thread_id = %s", (thread_id,))
            await conn.execute("DELETE FROM graphrun_thread WHERE thread_id = %s", (thread_id,))

    async def count_checkpoints(self, thread_id: str) -> int:
        row = await self._one("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,))
        return row["n"]

    async def delete_thread(self, thread_id: str) -> None:
        deleted = await self._count(
            "DELETE FROM graphrun_thread WHERE thread_id = %s AND (%s::text IS NULL OR owner = %s)",
            (thread_id, owner_filter(), owner_filter()),
        )
        if deleted == 0:
            raise ThreadNotFound(thread_id)

    # -- runs ---------------------------------------------------------------------------

    @staticmethod
    def begin_run_statement(
        *,
        run_id: str,
        thread_id: str,
        create_thread: bool,
        assistant_id: str,
        graph_id: str | None = None,
        assistant_version: int | None = None,
        multitask_strategy: str,
        on_disconnect: str,
        spec: dict,
        metadata: dict,
        delay: float,
        has_input: bool,
        owner: str | None,
        lease: float,
        announce: bool = False,
    ) -> tuple[str, tuple]:
        """The query that accepts a run (graphrun_begin_run) and its parameters: RUNNING and leased
        to `owner` when it can start at once and owner is given, else PENDING for any replica's workers.

        `assistant_id` is what the run named; `graph_id` (default: the same) the graph it executes.

        With `announce` (a run with stream modes), a run that starts at once has its first event,
        `metadata`, stored in the same transaction (as `runs.execution.metadata_event` makes it):
        a stream's first event is then released when the acceptance is, instead of one write
        later. A run without stream modes (Wait's) stores it with its end, as no one follows it."""
        params = (
            run_id,
            thread_id,
            create_thread,
            assistant_id,
            multitask_strategy,
            on_disconnect,
            Jsonb(spec),
            Jsonb(metadata),
            delay,
            has_input,
            owner,
            lease,
            _caller(),
            graph_id,
            assistant_version,
        )
        return (_BEGIN_ANNOUNCED if announce else _BEGIN), params

    async def begin_run(self, *, thread_id: str, spec: dict, **kwargs) -> RunRecord:
        """Accept a run on its own round trip (see `begin_run_statement`)."""
        with _begin_errors(thread_id):
            row = await self._one(*self.begin_run_statement(thread_id=thread_id, spec=spec, **kwargs))
        return run_record(row, spec)

    async def begun_run(self, rider: Rider, thread_id: str, spec: dict) -> RunRecord:
        """The run a `begin_run_statement` riding on its first checkpoint write accepted."""
        with _begin_errors(thread_id):
            row = await rider.answer
        return run_record(row, spec)

    async def send_alone(self, rider: Rider) -> None:
        """Send a rider whose run will write no checkpoint (it ended, or failed, before its first)."""
        try:
            rider.answered(await self._one(rider.query, rider.params))
        except BaseException as exc:  # the answer is the error: whoever awaits it sees it
            rider.failed(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def claim(self, owner: str, lease: float, run_id: str | None = None) -> Claim | None:
        """Take the oldest runnable run: a pending one first in its thread's queue whose thread
        has nothing running, or a running one whose lease expired (its replica died)."""
        sql = f"""
        WITH candidate AS (
            SELECT r.run_id FROM graphrun_run r
             WHERE ((r.status = 'pending' AND r.not_before <= now()
                     AND NOT EXISTS (SELECT 1 FROM graphrun_run o
                                      WHERE o.thread_id = r.thread_id
                                        AND (o.status = 'running'
                                             OR (o.status = 'pending' AND o.queue_position < r.queue_position))))
                    OR (r.status = 'running' AND r.lease_expires_at < now()
                        -- not while its former owner is writing (see graphrun_fence)
                        AND pg_try_advisory_xact_lock(graphrun_run_lock_key(r.run_id))))
               AND (%(run_id)s::uuid IS NULL OR r.run_id = %(run_id)s::uuid)
             ORDER BY r.queue_position
             LIMIT 1
               FOR UPDATE SKIP LOCKED
        )
        UPDATE graphrun_run r
           SET status = 'running', attempt = r.attempt + 1, lease_owner = %(owner)s,
               lease_expires_at = now() + make_interval(secs => %(lease)s),
               started_at = coalesce(r.started_at, now()), updated_at = now()
          FROM candidate
         WHERE r.run_id = candidate.run_id
        RETURNING r.*,
            (SELECT coalesce(max(e.sequence), 0) FROM graphrun_run_event e WHERE e.run_id = r.run_id) AS last_sequence,
            (SELECT p.status FROM graphrun_run p
              WHERE p.thread_id = r.thread_id AND p.ended_at IS NOT NULL AND p.attempt > 0
                AND coalesce(p.error->>'reason', '') <> '{REASON_THREAD_INTERRUPTED}'
              ORDER BY p.ended_at DESC, p.queue_position DESC LIMIT 1) AS previous_status
        """
        requested_at = time.monotonic()  # the database sets the lease after this
        try:
            row = await self._one(sql, {"owner": owner, "lease": lease, "run_id": run_id})
        except psycopg.errors.UniqueViolation:
            return None  # another replica started a run on the same thread at the same moment
        if row is None:
            return None
        return Claim(_run(row), row["last_sequence"], row["previous_status"], requested_at)

    async def append_events(self, run_id: str, attempt: int, events: list[RunEvent]) -> bool:
        """Store one run's events while it executes (fenced); False if the attempt no longer owns
        the run. See `append_event_groups`."""
        return run_id in await self.append_event_groups({run_id: (attempt, events)})

    async def append_event_groups(self, groups: dict[str, tuple[int, list[RunEvent]]]) -> set[str]:
        """Store the events of several executing runs in one transaction (graphrun_append_events,
        fenced run by run), and wake followers on other replicas. Returns the runs whose attempt
        still owned them (nothing was stored for the others).

        The batch travels as one JSON document (`_json_text`) rather than arrays psycopg would
        write element by element in Python: that was a tenth of a streaming replica's CPU."""
        payload = [[run_id, attempt, event_batch(events)] for run_id, (attempt, events) in groups.items()]
        row = await self._one("SELECT graphrun_append_events(%s::jsonb) AS owned", (_json_text(payload),))
        return {str(run_id) for run_id in (row["owned"] if row else [])}

    @staticmethod
    def finish_run_statement(
        run_id: str,
        attempt: int,
        status: str,
        error: dict | None,
        node: str | None,
        step: int | None,
        events: list[RunEvent],
    ) -> tuple[str, tuple]:
        """The query that records a run's end with its last events (graphrun_finish_run)."""
        seqs, kinds, data = event_rows(events)
        return (
            f"SELECT {_RUN_COLUMNS_BUT_SPEC} FROM graphrun_finish_run("
            "%s, %s, %s, %s, %s, %s, %s::bigint[], %s::text[], %s::jsonb[])",
            (run_id, attempt, status, Jsonb(error) if error else None, node, step, seqs, kinds, data),
        )

    async def finish_run(
        self,
        run_id: str,
        attempt: int,
        status: str,
        error: dict | None,
        node: str | None,
        step: int | None,
        events: list[RunEvent],
        spec: dict[str, Any],
    ) -> RunRecord | None:
        """Record the end with the last events. None: fenced off."""
        row = await self._one(*self.finish_run_statement(run_id, attempt, status, error, node, step, events))
        return run_record(row, spec)

    async def release_run(self, run_id: str, attempt: int) -> bool:
        """Hand a running run back to the queue (shutdown, outage), for a replica to continue;
        a hand-back does not use up one of the run's attempts."""
        row = await self._one(
            """
            WITH released AS (
                UPDATE graphrun_run SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
                       handoffs = handoffs + 1, updated_at = now()
                 WHERE run_id = %s AND attempt = %s AND status = 'running' RETURNING run_id
            )
            SELECT run_id, pg_notify('graphrun_run', run_id::text) AS notified FROM released
            """,
            (run_id, attempt),
        )
        return row is not None

    async def cancel_run(self, run_id: str, action: str, message: str) -> RunRecord | None:
        row = await self._one("SELECT * FROM graphrun_cancel_run(%s, %s, %s)", (run_id, action, message))
        return _run(row) if row and row["run_id"] else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._one(
            "SELECT r.*, to_jsonb(w) AS webhook FROM graphrun_run r"
            " LEFT JOIN graphrun_webhook w USING (run_id)"
            " WHERE r.run_id = %s AND (%s::text IS NULL OR r.owner = %s)",
            (run_id, owner_filter(), owner_filter()),
        )
        return _run(row) if row else None

    async def list_runs(
        self, thread_id: str | None, statuses: list[str], page_size: int, page_token: str, cron_id: str | None = None
    ) -> tuple[list[RunRecord], str]:
        after = page_after(page_token)
        # A cron's runs carry its id in their spec (RunRequest.cron_id; index graphrun_run_by_cron).
        by_cron = "spec ? 'cron_id' AND spec->>'cron_id' = %(cron_id)s" if cron_id else "TRUE"
        rows = await self._all(
            f"""
            SELECT * FROM graphrun_run
             WHERE {by_cron}
               AND (%(thread_id)s::uuid IS NULL OR thread_id = %(thread_id)s::uuid)
               AND (cardinality(%(statuses)s::text[]) = 0 OR status = ANY(%(statuses)s::text[]))
               AND (%(after_time)s::timestamptz IS NULL OR (created_at, run_id) < (%(after_time)s, %(after_id)s::uuid))
               AND (%(owner)s::text IS NULL OR owner = %(owner)s)
             ORDER BY created_at DESC, run_id DESC
             LIMIT %(limit)s
            """,
            {
                "thread_id": thread_id,
                "cron_id": cron_id,
                "statuses": statuses,
                "limit": page_size + 1,
                "owner": owner_filter(),
                "after_time": after[0] if after else None,
                "after_id": after[1] if after else None,
            },
        )
        runs = [_run(r) for r in rows[:page_size]]
        token = encode_token(runs[-1].created_at.isoformat(), runs[-1].run_id) if len(rows) > page_size else ""
        return runs, token

    async def count_pending(self) -> int:
        row = await self._one("SELECT count(*) AS n FROM graphrun_run WHERE status = 'pending'")
        return row["n"]

    async def last_sequence(self, run_id: str) -> int:
        row = await self._one(
            "SELECT coalesce(max(sequence), 0) AS n FROM graphrun_run_event WHERE run_id = %s", (run_id,)
        )
        return row["n"]

    async def read_events(self, run_id: str, after: int) -> list[RunEvent]:
        rows = await self._all(
            "SELECT sequence, kind, data, namespace, created_at FROM graphrun_run_event"
            " WHERE run_id = %s AND sequence > %s ORDER BY sequence",
            (run_id, after),
        )
        return [_stored_event(r) for r in rows]

    async def delete_run_checkpoints(self, thread_id: str, run_id: str) -> int:
        """Remove the checkpoints (and their pending writes) a run wrote: a rollback."""
        row = await self._one("SELECT graphrun_delete_run_checkpoints(%s, %s) AS n", (thread_id, run_id))
        return row["n"]

    @contextlib.asynccontextmanager
    async def thread_changing(self, thread_id: str):
        """Hold the thread's advisory lock exclusively (no run can start meanwhile), and fail
        with THREAD_BUSY if a run is in flight or another change holds it.

        A session lock on a pooled connection: if this process dies, the connection
        closes and the lock goes with it.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(graphrun_thread_lock_key(%s)) AS locked,"
                " (SELECT status FROM graphrun_thread WHERE thread_id = %s"
                "   AND (%s::text IS NULL OR owner = %s)) AS status",
                (thread_id, thread_id, owner_filter(), owner_filter()),
            )
            row = await cur.fetchone()
            if not row["locked"]:
                raise ThreadBusy(thread_id)
            try:
                if row["status"] is None:
                    raise ThreadNotFound(thread_id)
                if row["status"] == "busy":
                    raise ThreadBusy(thread_id)
                yield row["status"]
            finally:
                await conn.execute("SELECT pg_advisory_unlock(graphrun_thread_lock_key(%s))", (thread_id,))

    async def set_thread_status(self, thread_id: str, status: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE graphrun_thread SET status = %s, updated_at = now() WHERE thread_id = %s AND status <> 'busy'",
                (status, thread_id),
            )

    async def prune_events(self, older_than: float) -> int:
        """Delete the events of runs that ended more than `older_than` seconds ago."""
        return await self._count(
            "DELETE FROM graphrun_run_event e USING graphrun_run r WHERE e.run_id = r.run_id"
            " AND r.ended_at < now() - make_interval(secs => %s)",
            (older_than,),
        )
