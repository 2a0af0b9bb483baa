"""The PostgreSQL connection: an embedded server when no DSN is given, a pool, migrations and SQL functions."""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import select
import stat
import time
from importlib import resources

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .. import sql as sql_source
from .availability import Availability
from .bounded import BoundedAsyncConnection, connection_class, link_params, unbounded

log = logging.getLogger(__name__)

# Any fixed 64-bit number: the advisory lock replicas take while migrating.
_MIGRATION_LOCK = 0x6772_6170_6872_756E  # "graphrun"


def start_embedded(data_dir: str | os.PathLike):
    """Start (or reuse) an embedded PostgreSQL in data_dir; return its handle (`.get_uri()`,
    `.cleanup()` stops it once no other process uses it).

    pgserver ships PostgreSQL binaries in a wheel. It listens on a Unix socket
    only and is stopped when the last process using it exits. As root it runs
    PostgreSQL as a `pgserver` user and opens traverse permission on every parent
    of data_dir, so keep data_dir somewhere harmless (the default is ./.graphrun).
    """
    import warnings

    path = pathlib.Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    modes = {parent: parent.stat().st_mode for parent in path.parents}
    with warnings.catch_warnings():
        # pgserver's lock file falls back to /tmp without XDG_RUNTIME_DIR, with a warning: that is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported lazily: only the embedded mode needs it

        server = pgserver.get_server(path, cleanup_mode="stop")
    if os.name == "posix" and os.geteuid() == 0:  # what pgserver widens, it widens only as root
        _traverse_only(modes)
    log.info("embedded PostgreSQL running in %s", path)
    return server


def _traverse_only(modes: dict[pathlib.Path, int]) -> None:
    """Undo what pgserver widened beyond traverse. As root it gives every parent of the data
    directory g+rx,o+rx so that its `pgserver` user can reach the data; reaching needs only x:
    each parent gets back its own mode plus g+x,o+x, and nobody may list what it holds."""
    traverse = stat.S_IXGRP | stat.S_IXOTH
    for parent, mode in modes.items():
        try:
            if parent.stat().st_mode != mode | traverse:
                parent.chmod(stat.S_IMODE(mode) | traverse)
        except OSError:  # not ours to change (pgserver could not either): leave it
            pass


class Pool(AsyncConnectionPool):
    """psycopg's pool, with a deadline for each call and minus connections the server closed
    while they sat idle.

    A call waits at most the pool's `timeout` for a connection, and the first round trip on
    it gets what is left of that (at least `min(1 s, timeout / 2)`), so a call that needs the
    database fails within `timeout` plus that slack, whether it found a pooled connection
    (that then never answered) or waited for one (see storage/bounded.py).

    A connection that PostgreSQL terminated or a proxy cut while idle in the pool
    has the server's goodbye (an error message, or EOF) waiting on its socket:
    poll() sees that without a round trip, where psycopg's `check_connection`
    costs one query per checkout. Such a connection is closed and the pool
    replaces it; the caller gets a live one and never sees the error.

    A call gets the connection returned last, not (as psycopg's pool does) the one idle
    longest: a run's round trips then go to the PostgreSQL backends that just ran, whose
    processes and caches are warm, instead of each one to the coldest of the pool (an A/B of
    a `Wait`, 4 rounds of 200 each: -0.19 ms on the trivial graph, -0.22 ms a chat turn). The
    connections idle longest stay at the other end, where the pool's shrinking (`max_idle`)
    closes them.
    """

    async def _get_ready_connection(self, timeout: float | None):
        conn = await super()._get_ready_connection(timeout)  # the one idle longest (psycopg_pool 3.2-3.3)
        if conn is not None and self._pool:
            self._pool.appendleft(conn)  # back where it was
            conn = self._pool.pop()  # the one returned last
        return conn

    async def getconn(self, timeout: float | None = None):
        budget = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        while (left := deadline - time.monotonic()) > 0:
            conn = await super().getconn(left)
            if not _hung_up(conn):
                conn.bound_next(max(deadline - time.monotonic(), min(1.0, budget / 2)))
                return conn
            log.info("discarding a database connection the server closed while it was idle")
            await conn.close()
            await self.putconn(conn)  # the pool sees it closed and opens another
        raise PoolTimeout(f"no usable database connection within {budget:g} s")


def _hung_up(conn: psycopg.AsyncConnection) -> bool:
    """Did the server send something to a connection no query is running on (so: close it)?"""
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def make_pool(dsn: str, *, max_size: int = 20, timeout: float = 5.0, availability: Availability | None = None) -> Pool:
    """A pool whose connections suit both graphrun's queries and AsyncPostgresSaver.

    The saver needs autocommit and dict rows. prepare_threshold=0 (as LangGraph's
    docs set it) prepares every statement on its first use, so each of a run's
    round trips skips parsing and planning; behind a transaction-pooling proxy
    this needs one that tracks prepared statements (PgBouncer >= 1.21 with
    max_prepared_statements).
    `timeout` bounds every wait for a connection and every round trip (storage/bounded.py),
    so a call fails with UNAVAILABLE soon after the database goes away instead of hanging.
    Reconnecting backs off 1 s, 2 s, then gives up after `timeout`: the next call (or
    health's check, see servicers/health.py) starts a fresh attempt at once, so the pool is
    back within moments of the database, however long the outage lasted.
    """
    if max_size < 2:  # migrating holds one connection while the checkpointer's set-up takes another
        raise SystemExit(f"GRAPHRUN_POOL_SIZE must be at least 2, not {max_size}")
    return Pool(
        dsn,
        min_size=2,
        max_size=max_size,
        open=False,
        timeout=timeout,
        reconnect_timeout=max(timeout, 3.0),
        connection_class=connection_class(timeout, availability),
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, **link_params(dsn, timeout)},
        name="graphrun",
    )


def _migration_files() -> list[tuple[int, str, str]]:
    files = []
    for entry in resources.files("graphrun_server").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            files.append((version, entry.name, entry.read_text()))
    return sorted(files)


# graphrun's functions in the current schema that this start-up did not (re)define: a function
# whose file is gone, or an old signature a migration should have dropped. Run in the
# transaction that applied the files: whatever it created or replaced has its xmin.
_ORPHANS = """
SELECT p.oid::regprocedure::text AS function FROM pg_proc p
 WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'graphrun\\_%'
   AND p.xmin <> pg_current_xact_id()::xid
 ORDER BY 1
"""


async def migrate(pool: AsyncConnectionPool, checkpointer_setup) -> None:
    """Bring the database's schema and functions to this version, once per start-up.

    In one transaction: graphrun's versioned migrations not applied yet (tables, indexes; in
    order, each recorded in graphrun_schema_migration), then every function file of
    `graphrun_server/sql/` (`CREATE OR REPLACE`), so a fresh database and an upgraded one end
    up alike and replicas never see new tables with old functions. Then the checkpointer's own
    migrations. A database already migrated by a newer graphrun (it records a migration this
    one does not know) keeps its functions: an older replica restarting during a rolling
    upgrade must not put its own back.

    An advisory lock makes concurrent replicas starting together take turns. It is
    taken with pg_try_advisory_lock in a loop, not by waiting inside pg_advisory_lock:
    a session waiting inside a statement holds a snapshot, and the checkpointer's
    CREATE INDEX CONCURRENTLY in the lock holder would wait for that snapshot forever.
    """
    with unbounded(pool.connection_class):  # an index built on a large table may take minutes
        await _migrate(pool, checkpointer_setup)


async def _migrate(pool: AsyncConnectionPool, checkpointer_setup) -> None:
    async with pool.connection() as conn:
        while not (await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_MIGRATION_LOCK,))).fetchone())[
            "ok"
        ]:
            await asyncio.sleep(0.1)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS graphrun_schema_migration ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM graphrun_schema_migration")
            applied = {row["version"] for row in await cur.fetchall()}
            migrations = _migration_files()
            newer = sorted(applied - {version for version, _, _ in migrations})
            pending = [(version, name, sql) for version, name, sql in migrations if version not in applied]
            orphans: list[str] = []
            async with conn.transaction():
                for version, name, sql in pending:
                    await conn.execute(sql, prepare=False)
                    await conn.execute(
                        "INSERT INTO graphrun_schema_migration (version, name) VALUES (%s, %s)", (version, name)
                    )
                if not newer:
                    for _name, sql in sql_source.functions():
                        await conn.execute(sql, prepare=False)
                    orphans = [row["function"] for row in await (await conn.execute(_ORPHANS)).fetchall()]
            for _version, name, _sql in pending:
                log.info("applied migration %s", name)
            if newer:
                log.warning(
                    "the database was migrated by a newer graphrun (migrations %s): its SQL functions "
                    "are left as that version defined them",
                    ", ".join(map(str, newer)),
                )
            elif orphans:
                log.warning(
                    "functions no file of graphrun_server/sql defines are still in the database: %s "
                    "(a changed signature needs a migration that drops the old one)",
                    ", ".join(orphans),
                )
            await checkpointer_setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


class Prober:
    """Answers whether the database is up, on a connection of its own, within `budget` seconds.

    Not through the pool: under a burst of runs every pooled connection can be busy for
    seconds, which says nothing about the database, and a replica that reported itself
    unhealthy then would be taken out of service, or restarted with its runs, for being busy.
    """

    def __init__(self, dsn: str, budget: float = 1.0):
        self._dsn, self._budget = dsn, budget
        self._conn: BoundedAsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def ping(self) -> bool:
        """True when the database answers a trivial query within the budget (all of it: connecting
        included). A connection the database closed meanwhile (an idle timeout, a restart) gets one
        retry on a fresh one, within the same budget."""
        async with self._lock:
            deadline = time.monotonic() + self._budget
            for _ in range(2):
                try:
                    if self._conn is None or self._conn.closed:
                        # Cancelling a connection attempt sends nothing to the server: wait_for is safe here.
                        self._conn = await asyncio.wait_for(
                            BoundedAsyncConnection.connect(
                                self._dsn, autocommit=True, **link_params(self._dsn, self._budget)
                            ),
                            max(deadline - time.monotonic(), 0.001),
                        )
                        self._conn.budget = self._budget
                    self._conn.bound_next(max(deadline - time.monotonic(), 0.001))
                    await self._conn.execute("SELECT 1")
                    return True
                except Exception as exc:  # noqa: BLE001 - psycopg errors, OSError, TimeoutError
                    log.debug("database ping failed: %s", type(exc).__name__)
                    await self._drop()
                    if time.monotonic() >= deadline:
                        break
            return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
