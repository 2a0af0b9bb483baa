"""The long-term Store every graph gets: LangGraph's `AsyncPostgresStore` on graphrun's database.

Graphs reach it as LangGraph Server gives it to them (`store: BaseStore` node parameters,
`runtime.store`); `StoreService` exposes it over gRPC. All replicas share it, since it
lives in the database. The `store` object of `langgraph.json` configures it:
- `index` (`embed`, `dims`, `fields`): semantic search through pgvector. `embed` is a
  LangChain embeddings provider (`"openai:text-embedding-3-small"`, needs the `langchain`
  package and the provider's) or a local function (`"./embeddings.py:embed"`, relative to
  the config, taking a list of texts and returning a list of vectors).
- `ttl` (`default_ttl` minutes, `refresh_on_read`, `sweep_interval_minutes`). With
  `sweep_interval_minutes`, every replica runs a `TTLSweeper`; a PostgreSQL advisory lock lets
  one replica at a time delete the expired items.

Numeric filters (`{"score": {"$gte": 10}}`) compare numbers as numbers, as LangGraph documents
and its in-memory store does; its PostgreSQL store compares them as text (so 9 >= 10,
langgraph issue #7684), which `GraphrunStore` corrects.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import pathlib
from typing import Any, ClassVar

from langgraph.store.postgres import AsyncPostgresStore

from ..periodic import Periodic, one_replica
from ..project import import_reference

log = logging.getLogger(__name__)


class StoreConfigError(Exception):
    """The `store` section cannot be used; the message is one line saying why and what to do."""


def index_config(index: Any, base_dir: pathlib.Path) -> dict[str, Any] | None:
    """LangGraph's PostgresIndexConfig from `store.index`, its `embed` resolved."""
    if index is None:
        return None
    if not isinstance(index, dict) or "embed" not in index or "dims" not in index:
        raise StoreConfigError("store.index must be an object with 'embed' and 'dims' (and optionally 'fields')")
    dims = index["dims"]
    if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
        raise StoreConfigError(f"store.index.dims must be a positive integer, not {dims!r}")
    fields = index.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise StoreConfigError('store.index.fields must be a list of JSON paths (e.g. ["text", "$"])')
    config = {k: v for k, v in index.items() if k not in ("embed",)}
    config["embed"] = _embeddings(index["embed"], base_dir)
    return config


def _embeddings(embed: Any, base_dir: pathlib.Path):
    """`./file.py:func` / `package.module:func` (a function or an Embeddings object), or a
    LangChain provider id such as `openai:text-embedding-3-small`."""
    from langchain_core.embeddings import Embeddings
    from langgraph.store.base import ensure_embeddings

    if not isinstance(embed, str) or ":" not in embed:
        raise StoreConfigError(f"store.index.embed must be 'provider:model' or './file.py:function', not {embed!r}")
    target = embed.rpartition(":")[0]
    is_file = target.endswith(".py") or "/" in target
    if not is_file and not ("." in target and importlib.util.find_spec(target.split(".")[0]) is not None):
        # provider:model
        try:
            from langchain.embeddings import init_embeddings
        except ImportError:
            raise StoreConfigError(
                f"store.index.embed {embed!r} names a LangChain embeddings provider, which needs "
                "the langchain package: pip install langchain (and the provider's package), "
                "or use './file.py:function'"
            ) from None
        try:
            return init_embeddings(embed)
        except Exception as exc:
            raise StoreConfigError(f"store.index.embed {embed!r}: {exc}") from exc
    try:
        function, _ = import_reference(embed, base_dir)
    except (FileNotFoundError, AttributeError) as exc:
        raise StoreConfigError(f"store.index.embed: {exc}") from exc
    except Exception as exc:
        raise StoreConfigError(f"store.index.embed: importing {target} failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(function, Embeddings):
        return function
    if not callable(function):
        raise StoreConfigError(f"store.index.embed: {embed} is not a function or Embeddings object")
    return ensure_embeddings(function)


def ttl_config(ttl: Any) -> dict[str, Any] | None:
    """LangGraph's TTLConfig from `store.ttl`."""
    if ttl is None:
        return None
    if not isinstance(ttl, dict):
        raise StoreConfigError("store.ttl must be an object (default_ttl, refresh_on_read, sweep_interval_minutes)")
    for key in ("default_ttl", "sweep_interval_minutes"):
        value = ttl.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise StoreConfigError(f"store.ttl.{key} must be a positive number of minutes, not {value!r}")
    if not isinstance(ttl.get("refresh_on_read", True), bool):
        raise StoreConfigError("store.ttl.refresh_on_read must be true or false")
    unknown = set(ttl) - {"default_ttl", "refresh_on_read", "sweep_interval_minutes"}
    if unknown:
        raise StoreConfigError(f"store.ttl has unknown keys: {', '.join(sorted(unknown))}")
    default = ttl.get("default_ttl")
    if default is not None and default != int(default):  # LangGraph stores TTLs in an integer column
        log.warning(
            "store.ttl.default_ttl %s: LangGraph keeps an item's TTL in whole minutes, so a read that "
            "refreshes it restarts it from %d minutes",
            default,
            round(default),
        )
    return dict(ttl)


class GraphrunStore(AsyncPostgresStore):
    """LangGraph's `AsyncPostgresStore`, with numeric filters compared as numbers.

    LangGraph builds `value->>key > 'str(operand)'` for `$gt`/`$gte`/`$lt`/`$lte`: a text
    comparison, under which 9 >= 10 (langgraph issue #7684). With a number as the operand, a
    value that is a JSON number is compared numerically and any other value does not match
    (the CASE keeps PostgreSQL from casting a string to numeric); other operands keep
    LangGraph's text comparison, and `$eq`/`$ne` its jsonb equality.
    """

    _NUMERIC: ClassVar[dict[str, str]] = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

    def _get_filter_condition(self, key: str, op: str, value: Any) -> tuple[str, list]:
        if op in self._NUMERIC and isinstance(value, (int, float)) and not isinstance(value, bool):
            return (
                f"CASE WHEN jsonb_typeof(value->%s) = 'number' "
                f"THEN (value->>%s)::numeric {self._NUMERIC[op]} %s::numeric ELSE false END"
            ), [key, key, value]
        return super()._get_filter_condition(key, op, value)


def make_store(pool, store: dict[str, Any], base_dir: pathlib.Path) -> GraphrunStore:
    """The Store on graphrun's pool (each operation takes its own connection: no process-wide lock)."""
    unknown = set(store) - {"index", "ttl"}
    if unknown:
        raise StoreConfigError(f"store has unknown keys: {', '.join(sorted(unknown))} (expected index, ttl)")
    return GraphrunStore(pool, index=index_config(store.get("index"), base_dir), ttl=ttl_config(store.get("ttl")))


async def setup_store(store: AsyncPostgresStore, pool) -> None:
    """LangGraph's own migrations for the Store (run under graphrun's migration lock). A semantic
    index needs pgvector, which the embedded PostgreSQL bundles; another server may lack it."""
    if store.index_config:
        async with pool.connection() as conn:
            row = await (
                await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS ok")
            ).fetchone()
        if not row["ok"]:
            raise StoreConfigError(
                "store.index needs the pgvector extension, which this PostgreSQL server does not have: install it "
                "(e.g. apt-get install postgresql-<version>-pgvector, or the pgvector/pgvector image), or serve "
                "without a database URL to use the embedded PostgreSQL, which bundles it"
            )
    await store.setup()


# Any fixed 64-bit number other than the migration lock's (storage/database.py): held by the
# replica sweeping the Store's expired items.
SWEEP_LOCK = 0x6772_7374_6F72_6531  # "grstore1"


class TTLSweeper(Periodic):
    """Every `interval` seconds, delete the Store's expired items: on one replica at a time.

    Each replica runs one; a sweep takes `SWEEP_LOCK` (`one_replica`), so when several replicas'
    sweeps coincide, one deletes and the others skip that round. LangGraph's own sweeper
    (`start_ttl_sweeper`) has no such lock: every replica would sweep.
    """

    name = "graphrun-store-ttl-sweep"

    def __init__(self, store: AsyncPostgresStore, pool, interval: float):
        self.store, self.pool, self.interval = store, pool, interval
        self._waiters: list[asyncio.Future] = []

    async def next_sweep(self) -> int | None:
        """The outcome of the next sweep this sweeper attempts (see `sweep`)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    async def tick(self) -> None:
        outcome = await self.sweep()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(outcome)

    async def sweep(self) -> int | None:
        """Delete the expired items unless another replica is sweeping: the number deleted, or
        None when another replica held the lock or the sweep failed (logged by error type)."""
        try:
            async with one_replica(self.pool, SWEEP_LOCK) as locked:
                if not locked:
                    log.debug("store TTL sweep skipped: another replica is sweeping")
                    return None
                deleted = await self.store.sweep_ttl()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("store TTL sweep failed: %s", type(exc).__name__)
            return None
        log.log(logging.INFO if deleted else logging.DEBUG, "store TTL sweep deleted %d expired items", deleted)
        return deleted


def ttl_sweeper(store: AsyncPostgresStore, pool) -> TTLSweeper | None:
    """A sweeper for `store.ttl.sweep_interval_minutes`, or None when it sets none."""
    minutes = (store.ttl_config or {}).get("sweep_interval_minutes")
    return TTLSweeper(store, pool, float(minutes) * 60) if minutes else None
