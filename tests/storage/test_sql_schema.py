"""graphrun's SQL as source code: the function files, and the start-up that applies them.

A database created by the migrations as they were before the functions moved to
graphrun_server/sql/ (kept in tests/sql_legacy_migrations/, 0001-0006 of commit 97337d7) must
end up, after this version's start-up, exactly like a database this version creates: same
tables, columns, constraints, indexes and functions.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

import graphrun_server.sql as sql_source
from conftest import scratch_database
from graphrun_server import errors
from graphrun_server.storage.checkpointer import FencedPostgresSaver
from graphrun_server.storage.database import _migration_files, make_pool, migrate

HERE = pathlib.Path(__file__).parents[1]
LEGACY = sorted((HERE / "sql_legacy_migrations").glob("*.sql"))
SERVER = HERE.parent / "server" / "graphrun_server"


# -- the source files -----------------------------------------------------------------------


def test_each_function_file_defines_the_function_it_is_named_after_and_nothing_else():
    files = sql_source.function_files()
    assert len(files) >= 9
    for name, text in files:
        code = re.sub(r"--[^\n]*", "", text)
        defined = re.findall(r"\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(", code, re.IGNORECASE)
        assert [(bool(replace), function) for replace, function in defined] == [(True, name[:-len(".sql")])], name
        assert not re.search(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|TYPE|TRIGGER|VIEW)\b", code, re.IGNORECASE), name


def test_migrations_keep_tables_and_indexes_only():
    for _, name, text in _migration_files():
        code = re.sub(r"--[^\n]*", "", text)
        assert not re.search(r"\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\b", code, re.IGNORECASE), name


def test_sqlstates_and_reasons_appear_in_sql_only_by_name():
    shared = sql_source.shared_names()
    assert {"SQLSTATE_NOT_OWNER", "SQLSTATE_THREAD_NOT_FOUND", "SQLSTATE_THREAD_BUSY",
            "SQLSTATE_THREAD_INTERRUPTED", "REASON_THREAD_INTERRUPTED", "REASON_RUN_TIMEOUT",
            "REASON_RUN_CANCELLED"} <= set(shared)
    used = set()
    for name, text in sql_source.function_files():
        used |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
        code = re.sub(r"\{\{\s*\w+\s*\}\}", "", text)
        for constant, value in shared.items():
            assert f"'{value}'" not in code, f"{name} spells {constant} out: write '{{{{{constant}}}}}'"
        assert not re.search(r"'GR\d{3}'", code), name
    rendered = "\n".join(text for _, text in sql_source.functions())
    assert "{{" not in rendered and "}}" not in rendered
    assert {n for n in shared if n.startswith("SQLSTATE_")} <= used  # every SQLSTATE is raised somewhere
    for value in (errors.SQLSTATE_NOT_OWNER, errors.REASON_THREAD_INTERRUPTED):
        assert f"'{value}'" in rendered


def test_storage_names_sqlstates_by_their_constants():
    for module in ("records.py", "checkpointer.py", "leases.py", "database.py"):
        text = (SERVER / "storage" / module).read_text()
        assert not re.search(r"[\"']GR\d{3}[\"']", text), module
        assert "'THREAD_INTERRUPTED'" not in text and '"THREAD_INTERRUPTED"' not in text, module


def test_an_unknown_name_in_a_sql_file_stops_the_start_up():
    with pytest.raises(ValueError, match="SQLSTATE_NO_SUCH_THING"):
        sql_source.render("SELECT '{{SQLSTATE_NO_SUCH_THING}}'", "x.sql")
    assert sql_source.render("'{{ SQLSTATE_NOT_OWNER }}' '{}'::jsonb", "x.sql") == "'GR001' '{}'::jsonb"


# -- the start-up ---------------------------------------------------------------------------


async def start_up(dsn: str) -> None:
    """What a replica starting on `dsn` does to its schema."""
    pool = make_pool(dsn, max_size=2)
    await pool.open(wait=True, timeout=30)
    try:
        await migrate(pool, FencedPostgresSaver(pool).setup)
    finally:
        await pool.close()


def apply_legacy(dsn: str, upto: int) -> None:
    """The database a replica of commit 97337d7 left: its migrations 1..upto, each in a
    transaction of its own, recorded as it recorded them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS graphrun_schema_migration (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for path in LEGACY:
            version = int(path.name.split("_", 1)[0])
            if version <= upto:
                with conn.transaction():
                    conn.execute(path.read_text(), prepare=False)
                    conn.execute("INSERT INTO graphrun_schema_migration (version, name) VALUES (%s, %s)",
                                 (version, path.name))


def schema(dsn: str) -> dict[str, list]:
    """Everything a start-up defines, as comparable rows."""
    queries = {
        "relations": "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
                     " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i') ORDER BY 1",
        "columns": "SELECT table_name, ordinal_position, column_name, data_type, udt_name, is_nullable,"
                   " column_default, is_identity, identity_generation, is_generated, generation_expression"
                   " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "constraints": "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def"
                       " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
        "functions": "SELECT p.oid::regprocedure::text AS signature, pg_get_functiondef(p.oid) AS def"
                     " FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1",
        "triggers": "SELECT tgrelid::regclass::text AS t, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
        "migrations": "SELECT version, name FROM graphrun_schema_migration ORDER BY 1",
    }
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return {key: conn.execute(query).fetchall() for key, query in queries.items()}


@pytest.fixture(scope="module")
async def fresh(admin_dsn):
    """A database this version created."""
    with scratch_database(admin_dsn) as dsn:
        await start_up(dsn)
        yield dsn


def test_a_fresh_database_has_every_function_of_the_sources(fresh):
    functions = {row["signature"].split("(")[0] for row in schema(fresh)["functions"]}
    assert functions == {name[:-len(".sql")] for name, _ in sql_source.function_files()}


@pytest.mark.parametrize("upto", [6, 3, 1])  # the last release, and databases older still
async def test_an_upgraded_database_ends_up_like_a_fresh_one(admin_dsn, fresh, upto):
    with scratch_database(admin_dsn) as dsn:
        apply_legacy(dsn, upto)
        thread_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
        with psycopg.connect(dsn, autocommit=True) as conn:  # a run the old version accepted
            conn.execute("SELECT graphrun_begin_run(%s, %s, true, 'steps', 'reject', 'cancel', '{}', '{}',"
                         " interval '0', true, 'replica-a', interval '30 seconds')", (run_id, thread_id))
        await start_up(dsn)
        upgraded, expected = schema(dsn), schema(fresh)
        for key in expected:
            assert upgraded[key] == expected[key], key
        with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:  # ended by the new one
            row = conn.execute("SELECT status, handoffs FROM graphrun_finish_run(%s, 1, 'success', NULL, NULL,"
                               " NULL, '{}', '{}', '{}')", (run_id,)).fetchone()
            assert row == {"status": "success", "handoffs": 0}
            assert conn.execute("SELECT status FROM graphrun_thread WHERE thread_id = %s",
                                (thread_id,)).fetchone() == {"status": "idle"}


async def test_starting_again_changes_nothing(fresh, caplog):
    before = schema(fresh)
    with caplog.at_level(logging.INFO, logger="graphrun_server.storage.database"):
        await start_up(fresh)
    assert schema(fresh) == before
    assert not [r for r in caplog.records if r.name == "graphrun_server.storage.database"
                and ("applied migration" in r.getMessage() or r.levelno >= logging.WARNING)]


async def test_replicas_starting_together_migrate_once(admin_dsn, fresh):
    with scratch_database(admin_dsn) as dsn:
        await asyncio.gather(*(start_up(dsn) for _ in range(3)))
        assert schema(dsn) == schema(fresh)


async def test_a_start_up_that_fails_leaves_the_database_as_it_was(admin_dsn, monkeypatch):
    broken = [*sql_source.function_files(), ("zz_broken.sql", "CREATE OR REPLACE FUNCTION zz_broken( AS")]
    monkeypatch.setattr(sql_source, "function_files", lambda: broken)
    with scratch_database(admin_dsn) as dsn:
        with pytest.raises(psycopg.errors.SyntaxError):
            await start_up(dsn)
        with psycopg.connect(dsn) as conn:  # no migration recorded, no table created: all or nothing
            assert conn.execute("SELECT count(*) FROM graphrun_schema_migration").fetchone() == (0,)
            assert conn.execute("SELECT to_regclass('graphrun_run')").fetchone() == (None,)
        monkeypatch.undo()
        await start_up(dsn)  # and the next start-up starts from scratch
        assert len(schema(dsn)["migrations"]) == len(_migration_files())


async def test_a_database_a_newer_version_migrated_keeps_its_functions(admin_dsn, caplog):
    with scratch_database(admin_dsn) as dsn:
        await start_up(dsn)
        newer = ("CREATE OR REPLACE FUNCTION graphrun_fenced(p_run_id uuid, p_attempt integer) RETURNS boolean"
                 " LANGUAGE plpgsql AS $$ BEGIN RETURN true; /* a newer version */ END $$")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(newer)
            conn.execute("INSERT INTO graphrun_schema_migration (version, name) VALUES (9999, '9999_newer.sql')")
        with caplog.at_level(logging.WARNING, logger="graphrun_server.storage.database"):
            await start_up(dsn)
        assert "a newer version" in _definition(dsn, "graphrun_fenced")
        assert any("newer graphrun" in r.getMessage() and "9999" in r.getMessage() for r in caplog.records)
        with psycopg.connect(dsn, autocommit=True) as conn:  # rolled back to this version: its own again
            conn.execute("DELETE FROM graphrun_schema_migration WHERE version = 9999")
        await start_up(dsn)
        assert "a newer version" not in _definition(dsn, "graphrun_fenced")


async def test_a_function_no_file_defines_is_reported_and_left_alone(fresh, caplog):
    with psycopg.connect(fresh, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION graphrun_fence(p_run_id text, p_attempt integer) RETURNS void"
                     " LANGUAGE sql AS $$ SELECT $$")  # as if the signature had changed without a migration
    try:
        with caplog.at_level(logging.WARNING, logger="graphrun_server.storage.database"):
            await start_up(fresh)
        assert any("graphrun_fence(text,integer)" in r.getMessage() for r in caplog.records)
        assert "graphrun_fence(text,integer)" in [r["signature"] for r in schema(fresh)["functions"]]
    finally:
        with psycopg.connect(fresh, autocommit=True) as conn:
            conn.execute("DROP FUNCTION graphrun_fence(text, integer)")


def _definition(dsn: str, function: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pg_get_functiondef(%s::regproc)", (function,)).fetchone()[0]


async def test_a_start_up_does_not_wait_for_transactions_in_the_functions(fresh):
    """Another replica's runs go on while one starts: replacing the functions waits for none of them."""
    run_id, thread_id = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(fresh) as busy:  # a transaction half-way through a run's life cycle
        busy.execute("SELECT graphrun_begin_run(%s, %s, true, 'steps', 'reject', 'cancel', '{}', '{}',"
                     " interval '0', true, 'replica-a', interval '30 seconds')", (run_id, thread_id))
        busy.execute("SELECT graphrun_fence(%s, 1)", (run_id,))
        busy.execute("SELECT graphrun_cancel_run(%s, 'interrupt', 'asked')", (run_id,))
        await asyncio.wait_for(start_up(fresh), 10)
        assert busy.execute("SELECT count(*) FROM graphrun_finish_run(%s, 1, 'cancelled', NULL, NULL, NULL,"
                            " '{}', '{}', '{}')", (run_id,)).fetchone() == (1,)
        busy.rollback()
