"""The checkpointer's fence: a replica that no longer owns a run cannot write into its thread."""

import uuid
from dataclasses import dataclass

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from graphrun_server.errors import SQLSTATE_NOT_OWNER
from graphrun_server.storage.checkpointer import RUN_KEY, FencedPostgresSaver, FencedRun, RunCheckpoints


@pytest.fixture
async def saver(server, database_url):  # the server fixture has migrated the database
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False,
                               kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    await pool.open()
    yield FencedPostgresSaver(pool)
    await pool.close()


FAKE_THREADS: list[str] = []


@pytest.fixture(autouse=True)
def _remove_fake_runs(db):
    """The rows below stand for a run on a replica that does not exist (no lease): removed after each
    test, so that no other test (the fuzzer lists every run) finds a thread busy for ever."""
    yield
    if FAKE_THREADS:
        for table in ("graphrun_run", "checkpoint_writes", "checkpoint_blobs", "checkpoints", "graphrun_thread"):
            db.execute(f"DELETE FROM {table} WHERE thread_id::text = ANY(%s)", (FAKE_THREADS,))
        FAKE_THREADS.clear()


def _running_run(db, attempt: int) -> tuple[str, str]:
    thread_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    FAKE_THREADS.append(thread_id)
    db.execute("INSERT INTO graphrun_thread (thread_id, status) VALUES (%s, 'busy')", (thread_id,))
    db.execute("INSERT INTO graphrun_run (run_id, thread_id, assistant_id, status, attempt, multitask_strategy, spec)"
               " VALUES (%s, %s, 'steps', 'running', %s, 'reject', '{}')", (run_id, thread_id, attempt))
    return thread_id, run_id


def _config(thread_id, run_id, attempt):
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", RUN_KEY: FencedRun(run_id, attempt)}}


async def test_the_owning_attempt_writes_and_a_former_one_is_refused(saver, db):
    thread_id, run_id = _running_run(db, attempt=2)
    await saver.aput(_config(thread_id, run_id, 2), empty_checkpoint(), {"source": "input", "step": -1}, {})
    with pytest.raises(psycopg.Error) as caught:
        await saver.aput(_config(thread_id, run_id, 1), empty_checkpoint(), {"source": "loop", "step": 0}, {})
    assert caught.value.sqlstate == SQLSTATE_NOT_OWNER
    with pytest.raises(psycopg.Error):
        await saver.aput_writes({"configurable": {**_config(thread_id, run_id, 1)["configurable"],
                                                  "checkpoint_id": "x"}}, [("log", ["late"])], "task-1")
    rows = db.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,)).fetchone()
    assert rows["n"] == 1  # only the owner's checkpoint
    writes = db.execute("SELECT count(*) AS n FROM checkpoint_writes WHERE thread_id = %s", (thread_id,)).fetchone()
    assert writes["n"] == 0


async def test_writes_without_a_fence_are_not_checked(saver, db):
    thread_id = str(uuid.uuid4())
    FAKE_THREADS.append(thread_id)
    await saver.aput({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, empty_checkpoint(),
                     {"source": "update", "step": 0}, {})
    assert db.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread_id,)).fetchone()["n"] == 1


@pytest.mark.parametrize("size", [3, 10000])  # serialized and loaded on the event loop / in a worker thread
async def test_small_and_large_values_round_trip(saver, db, size):
    from langgraph.checkpoint.base import create_checkpoint

    thread_id, run_id = _running_run(db, attempt=1)
    config = _config(thread_id, run_id, 1)
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"log": [f"entry {i}" for i in range(size)], "count": size}
    checkpoint["channel_versions"] = {"log": "1", "count": "1"}
    stored = await saver.aput(config, create_checkpoint(checkpoint, None, 0), {"source": "loop", "step": 0},
                              {"log": "1", "count": "1"})
    write_config = {"configurable": {**config["configurable"], **stored["configurable"]}}
    await saver.aput_writes(write_config, [("log", [f"write {i}" for i in range(size)])], "task-1")
    got = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    assert got.checkpoint["channel_values"] == {"log": [f"entry {i}" for i in range(size)], "count": size}
    assert got.pending_writes == [("task-1", "log", [f"write {i}" for i in range(size)])]


async def test_a_thread_the_run_created_is_read_from_the_database_once_the_run_wrote(saver, db):
    from graphrun_server.storage.checkpointer import RunCheckpoints

    thread_id, run_id = _running_run(db, attempt=1)
    await saver.aput(_config(thread_id, run_id, 1), empty_checkpoint(), {"source": "input", "step": -1}, {})
    created = RunCheckpoints(new_thread=True)
    config = {"configurable": {**_config(thread_id, run_id, 1)["configurable"], RUN_KEY: FencedRun(run_id, 1, created)}}
    assert await saver.aget_tuple(config) is None  # answered without a query (the thread is not really new here)
    assert await saver.aget_tuple({"configurable": {**config["configurable"], RUN_KEY: FencedRun(run_id, 1)}})
    await saver.aput(config, empty_checkpoint(), {"source": "loop", "step": 0}, {})
    assert (await saver.aget_tuple(config)).metadata["step"] == 0


async def test_a_refused_checkpoint_leaves_none_of_its_blobs(saver, db):
    """The fence is checked by the checkpoint's own INSERT, after its blobs: the refusal undoes them."""
    thread_id, run_id = _running_run(db, attempt=2)
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"log": ["stale"]}
    checkpoint["channel_versions"] = {"log": "1"}
    with pytest.raises(psycopg.Error) as caught:
        await saver.aput(_config(thread_id, run_id, 1), checkpoint, {"source": "loop", "step": 0}, {"log": "1"})
    assert caught.value.sqlstate == SQLSTATE_NOT_OWNER
    for table in ("checkpoints", "checkpoint_blobs"):
        assert db.execute(f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,)).fetchone()["n"] == 0


class Refused(Exception):
    """The database's answer to a run's acceptance: not accepted."""


@dataclass(eq=False)
class RefusedRun(FencedRun):
    """A run started ahead of its acceptance, which the database then refused."""

    async def admitted(self) -> None:
        raise Refused


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_the_first_read_of_a_thread_the_run_creates_waits_for_its_acceptance_unless_the_first_write_does(
        saver, durability):
    """LangGraph runs no node of a run with `sync` durability before its first checkpoint write,
    which waits for the run's acceptance: its first read (of a thread it creates: nothing to read)
    answers at once. With `async` nodes run while that write is on its way, with `exit` it comes
    last: the read waits for the answer, and a refused run goes no further."""
    run = RefusedRun(str(uuid.uuid4()), 1, RunCheckpoints(new_thread=True, write_gates_nodes=durability == "sync"))
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": "", RUN_KEY: run}}
    if durability == "sync":
        assert await saver.aget_tuple(config) is None
    else:
        with pytest.raises(Refused):
            await saver.aget_tuple(config)
