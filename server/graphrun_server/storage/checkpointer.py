"""LangGraph's Postgres checkpointer, made fit for many concurrent runs and replicas.

Four changes to `AsyncPostgresSaver` and one translation, nothing else:
- No process-wide lock. Given a pool, the upstream saver still takes one
  `asyncio.Lock` around every query, so all checkpoint I/O of a process runs
  one query at a time (a known LangGraph issue). With a pool each call has its
  own connection; the lock protects nothing.
- Fenced writes. A run's checkpoint writes carry its run id and attempt (its
  `CheckpointedRun.fence`); the INSERT of each write checks them (`graphrun_fenced`,
  in its WHERE clause: no extra statement), so a replica that lost its run to
  another (a stalled process, a lease that expired) cannot write into the
  thread any more.
- Writes are serialized, and pending writes loaded, on the event loop. Upstream hands
  each to a worker thread; the thread hop (a wake-up, a GIL hand-over, a loop
  wake-up) costs more than most of them, and the work holds the GIL either way, so
  the loop waits for it in a thread too unless it takes longer than Python's switch
  interval (5 ms). Only values that large still go to a thread, where the loop gets
  the GIL back between slices. `aput` and `aput_writes` are upstream's
  (langgraph-checkpoint-postgres 3.2) but for that choice.
- Runs are known. A run's config carries the run (a `CheckpointedRun`, under
  `RUN_KEY`): the saver waits for its acceptance before its first read or write
  (not a read of the thread it created when its first write keeps its nodes from running:
  durability `sync`), and for what the runner holds it for before going on past them,
  records in its `RunCheckpoints` what each write stored (so the runner can
  answer with the final state without reading it back), answers the first read
  of a thread the run itself created without a query (there is nothing to read
  yet), sends its acceptance (a `Rider`) in the pipeline of its first write or ahead of
  its first read (`read_ahead`: as the run is submitted), its end in the transaction of
  its last write, and tells it when a write was refused.

And one translation: a database that cannot be reached (a lost connection, no
connection within the pool's timeout) raises `DatabaseUnavailable`, so the
runner can tell an outage, which it waits out, from a graph's own failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from langgraph.checkpoint.base import WRITES_IDX_MAP, get_checkpoint_id, get_serializable_checkpoint_metadata
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..errors import SQLSTATE_NOT_OWNER, DatabaseUnavailable

RUN_KEY = "__graphrun_run"  # configurable key: the CheckpointedRun; "__" keeps it out of checkpoint metadata

# Serialize on the event loop when the values hold at most this many items (a list
# or dict counts its length, anything else 1), and load a read's pending writes there when they
# are at most this many: ~2 ms for chat messages (~2 us each), below the switch interval after
# which a thread would give the loop the GIL back.
INLINE_ITEMS = 1024
# Load a checkpoint's pending writes on the event loop when they are at most this many bytes
# (~20 ns a byte for chat messages: ~1.3 ms).
INLINE_LOAD_BYTES = 64 * 1024


def _fenced(sql: str) -> str:
    """Upstream's `INSERT ... VALUES (%s, ...)` as `INSERT ... SELECT %s, ... WHERE graphrun_fenced(%s, %s)`:
    the row is written only if the run's attempt still owns the run (else GR001 aborts the
    write's transaction, with everything else in its pipeline)."""
    fenced, count = re.subn(
        r"VALUES\s*\(((?:%s,\s*)*%s)\)", r"SELECT \1 WHERE graphrun_fenced(%s::uuid, %s::integer)", sql
    )
    if count != 1:  # upstream changed its SQL: fail at start-up, not with unfenced writes
        raise RuntimeError(f"cannot fence this checkpoint statement: {sql}")
    return fenced


def _items(values: Iterable[Any]) -> int:
    """A cheap size estimate: serialization time grows with the number of objects."""
    return sum(len(v) if isinstance(v, (list, tuple, dict, set)) else 1 for v in values)


async def _dump(dump: Callable[..., list], values: Iterable[Any], *args: Any) -> list:
    """Run a serialization inline when its values are few, else in a worker thread."""
    if _items(values) <= INLINE_ITEMS:
        return dump(*args)
    return await asyncio.to_thread(dump, *args)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """The row a checkpoint write stored, as `aget_tuple` would read it back."""

    thread_id: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    created_at: str
    metadata: dict[str, Any]


@dataclass(eq=False)
class Rider:
    """A statement that rides in the pipeline of a run's first checkpoint read or write.

    A run sends its acceptance (graphrun_begin_run) this way: on a thread it creates, with
    its first write (one transaction with that checkpoint, so both are stored or neither);
    on an existing thread, ahead of the read LangGraph makes first, sent as the run is
    submitted (`read_ahead`) so that LangGraph's set-up overlaps the round trip. One round trip
    either way. If the run ends before reading or writing a checkpoint, it is sent on its own.
    """

    query: str
    params: tuple
    answer: asyncio.Future  # the statement's first row, or its error
    sent: bool = False
    sending: asyncio.Task | None = None  # the write carrying it (kept alive if its caller is cancelled)
    taken_at: float = 0.0  # monotonic time it was taken for sending: the run's lease is set after this
    reads: tuple | None = None  # the read (`_read_key`) it was sent ahead of, until LangGraph makes it

    def take(self) -> bool:
        """Claim the sending of it (once)."""
        if self.sent:
            return False
        self.sent, self.taken_at = True, time.monotonic()
        return True

    def answered(self, row: dict | None) -> None:
        if not self.answer.done():
            self.answer.set_result(row)

    def failed(self, exc: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


@dataclass
class RunCheckpoints:
    """What one run wrote into its thread's root namespace (subgraphs' writes are not recorded)."""

    new_thread: bool = False  # the run created its thread (and this is its first attempt)
    # Its nodes run only after its first checkpoint write, which waits for its acceptance
    # (durability `sync`): its first read need not wait too. With `async` LangGraph runs nodes
    # while that write is on its way, with `exit` it comes last.
    write_gates_nodes: bool = False
    finished: dict | None = None  # the answer of its end's statement (`finish`), committed with its last checkpoint
    latest: StoredCheckpoint | None = None  # its last checkpoint (writes are stored in order)
    written: set[str] = field(default_factory=set)  # checkpoints that got pending writes
    writing: int = 0  # its writes (subgraphs' included) on their way to the database
    _settled: asyncio.Event | None = None

    @contextlib.contextmanager
    def in_flight(self):
        """Count a write while it is on its way (see `settled`)."""
        self.writing += 1
        try:
            yield
        finally:
            self.writing -= 1
            if not self.writing and self._settled is not None:
                self._settled.set()

    async def settled(self) -> None:
        """Until none of the run's writes is on its way. A cancellation that reaches LangGraph as
        it leaves the graph stops it waiting for the writes it started, not the writes."""
        while self.writing:
            self._settled = self._settled or asyncio.Event()
            self._settled.clear()
            await self._settled.wait()

    def knows_empty(self, config) -> bool:
        """True when the thread certainly has no checkpoint yet: the run created it and has not
        written. (No one else writes into a thread while a run holds it: it is BUSY.)"""
        return (
            self.new_thread
            and self.latest is None
            and not self.written
            and not config["configurable"].get("checkpoint_id")
        )

    def stored(self, config, checkpoint, metadata: dict[str, Any]) -> None:
        conf = config["configurable"]
        self.latest = StoredCheckpoint(
            str(conf["thread_id"]), checkpoint["id"], conf.get("checkpoint_id"), checkpoint["ts"], metadata
        )


class CheckpointedRun(Protocol):
    """What the saver asks of the run whose checkpoints it reads and writes.

    LangGraph hands a checkpointer nothing but the config, so the run travels in
    `configurable` (under RUN_KEY, into its subgraphs' configs too), as this one object.
    The runner's attempt (runs/state.py `ActiveRun`) is one; `FencedRun` is the plainest.
    """

    @property
    def fence(self) -> tuple[str, int]:
        """(run id, attempt): each write is stored only while this attempt owns the run."""
        ...

    @property
    def checkpoints(self) -> RunCheckpoints:
        """Where the saver records what the run's writes in its root namespace stored."""
        ...

    @property
    def rider(self) -> Rider | None:
        """The run's acceptance, when it rides on the run's first checkpoint read or write."""
        ...

    async def admitted(self) -> None:
        """Return once the database accepted the run (at once if it has): none of its
        checkpoints, nor its subgraphs', is read or written before (a run may start early)."""
        ...

    async def may_proceed(self) -> None:
        """Return once the run may go on past its first read or write: it was accepted
        (`admitted`), and whatever the runner holds it for meanwhile is over (its Stream's first
        event going out: LangGraph's steps would hold the event loop)."""
        ...

    def finish(self, checkpoint: dict) -> tuple[str, tuple] | None:
        """The statement (query, parameters) recording the run's end, if `checkpoint`, about to be
        written, certainly is its last; it then goes in that checkpoint's transaction."""
        ...

    def fenced_off(self) -> None:
        """A write of the run was refused (GR001): another attempt owns it now."""
        ...


@dataclass(eq=False)
class FencedRun:
    """A run that is only fenced: accepted already, no rider, its end recorded apart."""

    run_id: str
    attempt: int
    checkpoints: RunCheckpoints = field(default_factory=RunCheckpoints)
    rider: Rider | None = None

    @property
    def fence(self) -> tuple[str, int]:
        return self.run_id, self.attempt

    async def admitted(self) -> None:
        return None

    async def may_proceed(self) -> None:
        return None

    def finish(self, checkpoint: dict) -> tuple[str, tuple] | None:
        return None

    def fenced_off(self) -> None:
        return None


def _run(config) -> CheckpointedRun | None:
    return config["configurable"].get(RUN_KEY)


def _read_key(config) -> tuple:
    """What `aget_tuple(config)` reads: a thread's namespace, at a checkpoint or its latest."""
    configurable = config["configurable"]
    return configurable["thread_id"], configurable.get("checkpoint_ns", ""), get_checkpoint_id(config)


def _recorder(config) -> RunCheckpoints | None:
    """The run's record of its root namespace's writes (None for a subgraph's write)."""
    run = _run(config)
    return run.checkpoints if run is not None and not config["configurable"].get("checkpoint_ns") else None


def _fence(config) -> tuple[str, int] | None:
    run = _run(config)
    return run.fence if run is not None else None


def _retrieved(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


async def _may_proceed(config) -> None:
    """Wait until the run may go on (see `CheckpointedRun.may_proceed`)."""
    if (run := _run(config)) is not None:
        await run.may_proceed()


def _in_flight(config):
    """A write of a run (or of its subgraphs), counted while on its way."""
    run = _run(config)
    return run.checkpoints.in_flight() if run is not None else contextlib.nullcontext()


@asynccontextmanager
async def _pipeline(conn: psycopg.AsyncConnection) -> AsyncIterator[Any]:
    """A cursor in a pipeline; a statement's error raised inside the block (psycopg reads the
    answers that have come while it sends the next statement) is raised once the pipeline has
    ended. Ending it with that error still in flight made psycopg log `error ignored terminating
    <AsyncPipeline>: pipeline aborted` at WARNING, for a refused acceptance (a thread waiting on
    an interrupt, a busy one) or a fenced-off write: a run's ordinary refusal read as trouble."""
    failed: psycopg.Error | None = None
    try:
        async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
            try:
                yield cur
            except psycopg.Error as exc:
                failed = exc
    except psycopg.Error:
        if failed is None:
            raise
    if failed is not None:
        raise failed


class FencedPostgresSaver(AsyncPostgresSaver):
    FENCED_UPSERT_CHECKPOINTS_SQL = _fenced(AsyncPostgresSaver.UPSERT_CHECKPOINTS_SQL)
    FENCED_UPSERT_CHECKPOINT_WRITES_SQL = _fenced(AsyncPostgresSaver.UPSERT_CHECKPOINT_WRITES_SQL)
    FENCED_INSERT_CHECKPOINT_WRITES_SQL = _fenced(AsyncPostgresSaver.INSERT_CHECKPOINT_WRITES_SQL)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[Any]:
        try:
            async with self.conn.connection() as conn:
                if pipeline:
                    # One round trip. With autocommit, the statements of a pipeline up to
                    # its Sync form one implicit transaction: the fence check and the
                    # writes commit together, and a failed fence undoes the writes.
                    async with _pipeline(conn) as cur:
                        yield cur
                else:
                    async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                        yield cur
        except psycopg.OperationalError as exc:  # includes the pool's timeout
            raise DatabaseUnavailable() from exc

    @staticmethod
    @contextmanager
    def _fencing(config):
        """Tell the run at once when a write of it was refused, so that it stops before running
        more nodes (with async durability LangGraph would otherwise go on first)."""
        try:
            yield
        except psycopg.Error as exc:
            if exc.sqlstate == SQLSTATE_NOT_OWNER and (run := _run(config)) is not None:
                run.fenced_off()
            raise

    def read_ahead(self, config, rider: Rider) -> None:
        """Send `rider` now, ahead of the read of `config` (its latest checkpoint, or the one it
        names) that a run's LangGraph makes first, in one pipeline: the answer waits for that read
        (`aget_tuple`), and the run's set-up overlaps their round trip."""
        if rider.take():
            rider.reads = _read_key(config)
            rider.sending = asyncio.ensure_future(self._aget_tuple(config, rider))
            rider.sending.add_done_callback(_retrieved)  # its error is the answer's, too

    async def aget_tuple(self, config):
        run, recorder = _run(config), _recorder(config)
        rider = run.rider if run is not None and recorder is not None else None
        if rider is not None and recorder.knows_empty(config):
            return None  # a thread the run creates: its acceptance rides on its first write
        if rider is not None:
            # LangGraph reads first, before any node runs: the run's acceptance goes ahead of that
            # read in one pipeline (unless it was sent ahead already). Its answer must arrive even
            # if this read is cancelled.
            self.read_ahead(config, rider)
        if rider is not None and rider.reads is not None:  # the run's first read of its thread
            ahead, rider.reads = rider.reads == _read_key(config), None  # any later read reads afresh
            if ahead and rider.sending is not None:
                try:
                    value = await asyncio.shield(rider.sending)
                finally:
                    await run.admitted()  # NotAdmitted if the database refused or queued the run
                await run.may_proceed()  # before loading what it read: that holds the event loop
                if value is not None and value["checkpoint"]["v"] < 4 and value["parent_checkpoint_id"]:
                    return await super().aget_tuple(config)  # upstream migrates its pending sends
                return None if value is None else await self._load_checkpoint_tuple(value)
        if recorder is not None and recorder.knows_empty(config):
            if run is not None and not recorder.write_gates_nodes:
                await run.admitted()  # nothing else would keep its nodes from running before the answer
            return None  # a thread the run creates: nothing to read
        if run is not None:  # a run not yet accepted waits here
            await run.admitted()
        return await super().aget_tuple(config)

    async def _aget_tuple(self, config, rider: Rider) -> dict | None:
        """Upstream's query of `aget_tuple` (its row, not yet loaded), with a rider ahead of it in
        the same pipeline: one round trip, one transaction, the read seeing the run accepted."""
        configurable = config["configurable"]
        args: tuple[Any, ...] = (configurable["thread_id"], configurable.get("checkpoint_ns", ""))
        if checkpoint_id := get_checkpoint_id(config):
            args, where = (*args, checkpoint_id), "WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s"
        else:
            where = "WHERE thread_id = %s AND checkpoint_ns = %s ORDER BY checkpoint_id DESC LIMIT 1"
        try:
            async with self._cursor(pipeline=True) as cur:
                answer = cur.connection.cursor(row_factory=dict_row)
                await answer.execute(rider.query, rider.params)
                read = cur.connection.cursor(binary=True, row_factory=dict_row)  # read after the Sync
                await read.execute(self.SELECT_SQL + where, args)
            rider.answered(await answer.fetchone())
        except BaseException as exc:
            rider.failed(exc)
            raise
        return await read.fetchone()

    async def _load_checkpoint_tuple(self, value):
        """Upstream's, but a checkpoint's pending writes, when few and small (most reads have
        none), are loaded on the event loop, as the sync saver does, instead of in a worker thread:
        its hop (a wake-up, a GIL hand-over, a loop wake-up) cost every read of a thread more
        than the loading."""
        writes = value["pending_writes"] or ()
        if len(writes) <= INLINE_ITEMS and sum(len(w[3] or b"") for w in writes) <= INLINE_LOAD_BYTES:
            return PostgresSaver._load_checkpoint_tuple(self, value)
        return await super()._load_checkpoint_tuple(value)

    async def aput(self, config, checkpoint, metadata, new_versions):
        run, recorder = _run(config), _recorder(config)
        with self._fencing(config), _in_flight(config):
            if run is not None and recorder is not None and (rider := run.rider) is not None and rider.take():
                # The run's acceptance goes with this write. Its answer must arrive even if
                # this write is cancelled: the run waits for it to know whether it may go on.
                rider.sending = asyncio.ensure_future(self._aput(config, checkpoint, metadata, new_versions, rider))
                rider.sending.add_done_callback(_retrieved)  # its error is the answer's, too
                return await asyncio.shield(rider.sending)
            await _may_proceed(config)
            return await self._aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        await _may_proceed(config)
        with self._fencing(config), _in_flight(config):
            return await self._aput_writes(config, writes, task_id, task_path)

    async def _aput(self, config, checkpoint, metadata, new_versions, rider: Rider | None = None):
        """Upstream's `aput`, serializing through `_dump`, fenced in the checkpoint's INSERT; a
        rider goes first in the same pipeline (one transaction)."""
        configurable = config["configurable"]
        fence = _fence(config)
        thread_id, checkpoint_ns = configurable["thread_id"], configurable["checkpoint_ns"]
        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        # Primitive values stay inline in the checkpoint row; the others go to the blobs table.
        blob_values = {}
        for k, v in checkpoint["channel_values"].items():
            if isinstance(v, _DeltaSnapshot):
                blob_values[k] = copy["channel_values"].pop(k)
                copy["channel_values"][k] = True
            elif not (v is None or isinstance(v, (str, int, float, bool))):
                blob_values[k] = copy["channel_values"].pop(k)
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        run, recorder = _run(config), _recorder(config)
        finish = run.finish(checkpoint) if run is not None and recorder is not None else None
        try:
            async with self._cursor(pipeline=True) as cur:
                if rider is not None:
                    answer = cur.connection.cursor(row_factory=dict_row)
                    await answer.execute(rider.query, rider.params)
                if blob_versions := {k: v for k, v in new_versions.items() if k in blob_values}:
                    await cur.executemany(
                        self.UPSERT_CHECKPOINT_BLOBS_SQL,
                        await _dump(
                            self._dump_blobs, blob_values.values(), thread_id, checkpoint_ns, blob_values, blob_versions
                        ),
                    )
                row = (
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    configurable.get("checkpoint_id"),
                    Jsonb(copy),
                    Jsonb(stored_metadata),
                )
                if fence is None:
                    await cur.execute(self.UPSERT_CHECKPOINTS_SQL, row)
                else:
                    await cur.execute(self.FENCED_UPSERT_CHECKPOINTS_SQL, (*row, *fence))
                if finish is not None:  # the run's end, in the same transaction as its last checkpoint
                    ended = cur.connection.cursor(row_factory=dict_row)
                    await ended.execute(*finish)
            if rider is not None:
                rider.answered(await answer.fetchone())
            finished = await ended.fetchone() if finish is not None else None
        except BaseException as exc:
            if rider is not None:
                rider.failed(exc)
            raise
        if recorder is not None:
            recorder.stored(config, checkpoint, stored_metadata)
            if finished is not None:
                recorder.finished = finished
        return {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint["id"]}
        }

    async def _aput_writes(self, config, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str):
        """Upstream's `aput_writes`, serializing through `_dump`, fenced in each row's INSERT."""
        upsert = all(w[0] in WRITES_IDX_MAP for w in writes)
        configurable = config["configurable"]
        params = await _dump(
            self._dump_writes,
            (v for _, v in writes),
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if (fence := _fence(config)) is None:
            query = self.UPSERT_CHECKPOINT_WRITES_SQL if upsert else self.INSERT_CHECKPOINT_WRITES_SQL
        else:
            query = self.FENCED_UPSERT_CHECKPOINT_WRITES_SQL if upsert else self.FENCED_INSERT_CHECKPOINT_WRITES_SQL
            params = [(*row, *fence) for row in params]
        if (recorder := _recorder(config)) is not None:
            recorder.written.add(configurable["checkpoint_id"])
        async with self._cursor(pipeline=True) as cur:
            await cur.executemany(query, params)
