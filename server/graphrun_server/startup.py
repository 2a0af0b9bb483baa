"""Start-up checks that turn a misconfiguration into one line naming the setting.

Each runs before the server touches anything it would have to undo, and raises SystemExit with
a message that says what is wrong and which option or variable to change; `graphrun serve`
prints it on stderr and exits non-zero, with no traceback.
"""

from __future__ import annotations

import asyncio
import pathlib

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .settings import masked_dsn

DATABASE_SETTING = "--database-url / GRAPHRUN_DATABASE_URL"


async def check_database(dsn: str, timeout: float) -> None:
    """Connect once, within `timeout`: a malformed DSN, a missing database, bad credentials or an
    unreachable host stop the server with PostgreSQL's own reason (the pool would retry for
    its whole open timeout and end in a bare PoolTimeout)."""
    try:
        conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise SystemExit(
            f"{masked_dsn(dsn)!r} is not a PostgreSQL DSN ({_first_line(exc)}); fix {DATABASE_SETTING}"
        ) from None
    try:
        async with asyncio.timeout(timeout):
            connection = await psycopg.AsyncConnection.connect(dsn, connect_timeout=max(2, round(timeout)))
        await connection.close()
    except TimeoutError:
        raise SystemExit(
            f"cannot connect to the database {masked_dsn(dsn)}: no answer within {timeout:g} s "
            f"(GRAPHRUN_DB_TIMEOUT); check {DATABASE_SETTING}"
        ) from None
    except psycopg.Error as exc:
        raise SystemExit(
            f"cannot connect to the database {masked_dsn(dsn)}: {_first_line(exc)}; check {DATABASE_SETTING}"
        ) from None


def read_pem(path: str, setting: str) -> bytes:
    """A TLS file's bytes; a file that cannot be read stops the server naming the setting."""
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror}; check {setting}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
