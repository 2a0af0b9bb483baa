"""The SQL of a run's life cycle, called directly: graphrun_begin_run, graphrun_finish_run,
graphrun_cancel_run, graphrun_refresh_thread, the fence, and the claim, renewal, release and
event statements of storage/ (Records, RENEW_SQL), each against its contract, in a database
of its own with no server.

Each test starts from empty graphrun tables. Rows stand for runs of replicas that do not
exist ("replica-a", "replica-b"): nothing executes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from conftest import scratch_database
from graphrun_server.errors import (REASON_RUN_CANCELLED, REASON_RUN_TIMEOUT, REASON_THREAD_INTERRUPTED,
                                    SQLSTATE_NOT_OWNER, SQLSTATE_THREAD_BUSY, SQLSTATE_THREAD_INTERRUPTED,
                                    SQLSTATE_THREAD_NOT_FOUND, ThreadBusy, ThreadInterrupted, ThreadNotFound)
from graphrun_server.events import RunEvent
from graphrun_server.storage.checkpointer import FencedPostgresSaver
from graphrun_server.storage.database import make_pool, migrate
from graphrun_server.storage.leases import RENEW_SQL
from graphrun_server.storage.records import Records

CHANNELS = ("graphrun_run", "graphrun_event", "graphrun_cancel")
DONE = "graphrun_test_done"  # sent after each action: every notification it caused came before


@pytest.fixture(scope="module")
async def sql_dsn(admin_dsn):
    """A database of this module's own, migrated as a replica's start-up does."""
    with scratch_database(admin_dsn) as dsn:
        pool = make_pool(dsn, max_size=2)
        await pool.open(wait=True, timeout=30)
        try:
            await migrate(pool, FencedPostgresSaver(pool).setup)
        finally:
            await pool.close()
        yield dsn


@pytest.fixture
def conn(sql_dsn):
    with psycopg.connect(sql_dsn, autocommit=True, row_factory=dict_row) as c:
        c.execute("TRUNCATE graphrun_thread, graphrun_run, graphrun_run_event, graphrun_webhook, graphrun_cron, checkpoints,"
                  " checkpoint_writes")
        yield c


@pytest.fixture
def other(sql_dsn):
    """A second session (another replica, or UpdateState holding a lock)."""
    with psycopg.connect(sql_dsn, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture
async def records(sql_dsn):
    pool = make_pool(sql_dsn, max_size=2)
    await pool.open(wait=True, timeout=30)
    yield Records(pool)
    await pool.close()


class Listener:
    """The notifications graphrun's SQL sends, as another replica hears them."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        for channel in (*CHANNELS, DONE):
            self.conn.execute(f"LISTEN {channel}")

    def heard(self, acting: psycopg.Connection) -> list[tuple[str, str]]:
        """What was sent up to now: `acting` (autocommit) sends a last one of its own after."""
        acting.execute(f"NOTIFY {DONE}")
        heard = []
        for note in self.conn.notifies(timeout=5):
            if note.channel == DONE:
                return heard
            heard.append((note.channel, note.payload))
        raise AssertionError(f"no {DONE} notification within 5 s (heard {heard})")


@pytest.fixture
def listener(sql_dsn):
    listening = Listener(sql_dsn)
    yield listening
    listening.conn.close()


def new_id() -> str:
    return str(uuid.uuid4())


def begin(conn, thread_id: str, *, run_id: str | None = None, create: bool = False, strategy: str = "reject",
          owner: str | None = "replica-a", delay: float = 0.0, has_input: bool = True, lease: float = 30.0,
          caller: str | None = None) -> dict:
    """graphrun_begin_run as Records.begin_run_statement calls it; the run's row."""
    run_id = run_id or new_id()
    rows = conn.execute(
        "SELECT * FROM graphrun_begin_run(%s, %s, %s, 'steps', %s, 'cancel', %s, %s, make_interval(secs => %s),"
        " %s, %s, make_interval(secs => %s), %s)",
        (run_id, thread_id, create, strategy, Jsonb({"input": {}}), Jsonb({}), delay, has_input, owner, lease,
         caller)).fetchall()
    assert len(rows) == 1 and str(rows[0]["run_id"]) == run_id
    return rows[0]


def finish(conn, run_id, attempt: int, status: str = "success", error: dict | None = None, node: str | None = None,
           step: int | None = None, events: list[tuple[int, str, dict]] = ()) -> list[dict]:
    """graphrun_finish_run; its rows (none when the attempt no longer owns the run)."""
    return conn.execute(
        "SELECT * FROM graphrun_finish_run(%s, %s, %s, %s, %s, %s, %s::bigint[], %s::text[], %s::jsonb[])",
        (run_id, attempt, status, Jsonb(error) if error else None, node, step, [e[0] for e in events],
         [e[1] for e in events], [Jsonb(e[2]) for e in events])).fetchall()


def cancel(conn, run_id, action: str = "interrupt", message: str = "cancelled by a test") -> list[dict]:
    return conn.execute("SELECT * FROM graphrun_cancel_run(%s, %s, %s)", (run_id, action, message)).fetchall()


def run(conn, run_id) -> dict | None:
    return conn.execute("SELECT * FROM graphrun_run WHERE run_id = %s", (run_id,)).fetchone()


def thread(conn, thread_id) -> dict | None:
    return conn.execute("SELECT * FROM graphrun_thread WHERE thread_id = %s", (thread_id,)).fetchone()


def events(conn, run_id) -> list[tuple[int, str, dict]]:
    return [(r["sequence"], r["kind"], r["data"]) for r in conn.execute(
        "SELECT * FROM graphrun_run_event WHERE run_id = %s ORDER BY sequence", (run_id,))]


def running(conn, *, attempt: int = 1, owner: str = "replica-a") -> tuple[str, str]:
    """A new thread with a run RUNNING at `attempt` on `owner`: (thread id, run id)."""
    thread_id = new_id()
    row = begin(conn, thread_id, create=True, owner=owner)
    if attempt != 1:
        conn.execute("UPDATE graphrun_run SET attempt = %s WHERE run_id = %s", (attempt, row["run_id"]))
    return thread_id, str(row["run_id"])


def refused(call, *args, **kwargs) -> psycopg.Error:
    """The error `call(*args, **kwargs)` raises."""
    with pytest.raises(psycopg.Error) as caught:
        call(*args, **kwargs)
    return caught.value


def near(moment: dt.datetime, seconds_from_now: float, conn) -> bool:
    now = conn.execute("SELECT now() AS now").fetchone()["now"]
    return abs((moment - now).total_seconds() - seconds_from_now) < 2


# -- graphrun_begin_run ---------------------------------------------------------------------


def test_a_run_on_a_thread_it_creates_starts_running_leased_to_its_replica(conn, listener):
    thread_id = new_id()
    row = begin(conn, thread_id, create=True, owner="replica-a", lease=30)
    assert (row["status"], row["attempt"], row["lease_owner"]) == ("running", 1, "replica-a")
    assert near(row["lease_expires_at"], 30, conn) and row["started_at"] is not None
    assert row["multitask_strategy"] == "reject" and row["handoffs"] == 0
    t = thread(conn, thread_id)
    assert (t["status"], t["assistant_id"], t["owner"], t["metadata"]) == ("busy", "steps", None, {})
    assert listener.heard(conn) == []  # it runs here: no worker needs waking


def test_a_streamed_runs_acceptance_stores_its_metadata_event_and_wakes_no_one(conn, listener):
    # No follower can be waiting: the run cannot be found before this transaction commits.
    run_id, thread_id = new_id(), new_id()
    query, params = Records.begin_run_statement(
        run_id=run_id, thread_id=thread_id, create_thread=True, assistant_id="steps", multitask_strategy="reject",
        on_disconnect="cancel", spec={"input": {}}, metadata={}, delay=0.0, has_input=True, owner="replica-a",
        lease=30.0, announce=True)
    row = conn.execute(query, params).fetchone()
    assert (str(row["run_id"]), row["status"], row["attempt"]) == (run_id, "running", 1)
    stored = conn.execute("SELECT sequence, kind, data FROM graphrun_run_event WHERE run_id = %s", (run_id,)).fetchall()
    assert stored == [{"sequence": 1, "kind": "metadata", "data": {
        "run_id": run_id, "thread_id": thread_id, "assistant_id": "steps", "attempt": 1}}]
    assert listener.heard(conn) == []
    queued_id = new_id()  # a run that waits for a worker has no event yet, and wakes the workers
    query, params = Records.begin_run_statement(
        run_id=queued_id, thread_id=new_id(), create_thread=True, assistant_id="steps", multitask_strategy="reject",
        on_disconnect="cancel", spec={"input": {}}, metadata={}, delay=0.0, has_input=True, owner=None,
        lease=30.0, announce=True)
    assert conn.execute(query, params).fetchone()["status"] == "pending"
    assert conn.execute("SELECT count(*) AS n FROM graphrun_run_event WHERE run_id = %s", (queued_id,)).fetchone()["n"] == 0
    assert listener.heard(conn) == [("graphrun_run", queued_id)]


def test_a_run_without_a_replica_or_with_a_delay_waits_pending_and_wakes_the_workers(conn, listener):
    queued = begin(conn, new_id(), create=True, owner=None)
    assert (queued["status"], queued["attempt"], queued["lease_owner"], queued["started_at"]) == (
        "pending", 0, None, None)
    delayed = begin(conn, new_id(), create=True, owner="replica-a", delay=60)
    assert (delayed["status"], delayed["attempt"]) == ("pending", 0)
    assert near(delayed["not_before"], 60, conn)
    assert listener.heard(conn) == [("graphrun_run", str(queued["run_id"])),
                                    ("graphrun_run", str(delayed["run_id"]))]


def test_an_existing_idle_thread_starts_its_run_at_once(conn):
    thread_id, first = running(conn)
    finish(conn, first, 1)
    row = begin(conn, thread_id)
    assert (row["status"], row["attempt"]) == ("running", 1)
    assert thread(conn, thread_id)["status"] == "busy"


def test_a_thread_that_does_not_exist_is_not_found(conn):
    thread_id = new_id()
    error = refused(lambda: begin(conn, thread_id))
    assert error.sqlstate == SQLSTATE_THREAD_NOT_FOUND
    assert thread(conn, thread_id) is None
    assert conn.execute("SELECT count(*) AS n FROM graphrun_run").fetchone()["n"] == 0


def test_a_thread_belongs_to_the_caller_that_created_it(conn):
    thread_id = new_id()
    row = begin(conn, thread_id, create=True, caller="alice")
    t = thread(conn, thread_id)
    assert (t["owner"], t["metadata"], row["owner"]) == ("alice", {"owner": "alice"}, "alice")
    finish(conn, row["run_id"], 1)
    for create in (False, True):  # another caller's thread reads like one that does not exist
        assert refused(begin, conn, thread_id, create=create, caller="bob").sqlstate == SQLSTATE_THREAD_NOT_FOUND
    assert thread(conn, thread_id)["owner"] == "alice"
    assert begin(conn, thread_id, caller="alice")["status"] == "running"


def test_reject_refuses_a_busy_thread_naming_the_run_in_flight_and_records_nothing(conn, listener):
    thread_id, first = running(conn)
    second = new_id()
    error = refused(lambda: begin(conn, thread_id, run_id=second, strategy="reject"))
    assert error.sqlstate == SQLSTATE_THREAD_BUSY
    assert error.diag.message_detail == first
    assert run(conn, second) is None
    assert run(conn, first)["cancel_action"] is None
    assert thread(conn, thread_id)["status"] == "busy"
    assert listener.heard(conn) == []


def test_reject_names_the_first_run_in_the_queue(conn):
    thread_id = new_id()
    first = begin(conn, thread_id, create=True, owner=None)  # pending, no replica yet
    begin(conn, thread_id, strategy="enqueue", owner=None)
    assert refused(lambda: begin(conn, thread_id)).diag.message_detail == str(first["run_id"])


def test_enqueue_queues_behind_the_run_in_flight(conn, listener):
    thread_id, first = running(conn)
    second = begin(conn, thread_id, strategy="enqueue")
    assert (second["status"], second["attempt"]) == ("pending", 0)
    assert run(conn, first)["status"] == "running" and run(conn, first)["cancel_action"] is None
    assert listener.heard(conn) == [("graphrun_run", str(second["run_id"]))]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
def test_interrupt_and_rollback_stop_every_run_in_flight_then_queue(conn, listener, strategy):
    thread_id, first = running(conn)
    queued = str(begin(conn, thread_id, strategy="enqueue")["run_id"])
    listener.heard(conn)
    newest = begin(conn, thread_id, strategy=strategy)
    # The running run is asked to stop (its replica records its end); the queued one ends here.
    assert (run(conn, first)["status"], run(conn, first)["cancel_action"]) == ("running", strategy)
    ended = run(conn, queued)
    assert (ended["status"], ended["cancel_action"]) == ("cancelled", strategy)
    assert ended["error"] == {"type": "CancelledError", "reason": REASON_RUN_CANCELLED,
                              "message": f"replaced by run {newest['run_id']}"}
    assert (newest["status"], newest["attempt"]) == ("pending", 0)  # the thread is not free yet
    assert thread(conn, thread_id)["status"] == "busy"
    heard = listener.heard(conn)
    assert ("graphrun_cancel", f"{first} {strategy}") in heard
    assert ("graphrun_event", queued) in heard
    assert ("graphrun_run", str(newest["run_id"])) in heard


def test_new_input_for_a_thread_waiting_on_an_interrupt_is_refused_and_a_resume_is_not(conn):
    thread_id, first = running(conn)
    finish(conn, first, 1, status="interrupted")
    assert thread(conn, thread_id)["status"] == "interrupted"
    run_id = new_id()
    error = refused(lambda: begin(conn, thread_id, run_id=run_id, has_input=True))
    assert error.sqlstate == SQLSTATE_THREAD_INTERRUPTED
    assert run(conn, run_id) is None and thread(conn, thread_id)["status"] == "interrupted"
    assert begin(conn, thread_id, has_input=False)["status"] == "running"


def test_no_run_starts_while_the_thread_is_being_changed(conn, other):
    thread_id, first = running(conn)
    finish(conn, first, 1)
    other.execute("SELECT pg_advisory_lock(graphrun_thread_lock_key(%s))", (thread_id,))  # as thread_changing
    try:
        for strategy in ("reject", "enqueue", "interrupt"):
            run_id = new_id()
            error = refused(begin, conn, thread_id, run_id=run_id, strategy=strategy)
            assert error.sqlstate == SQLSTATE_THREAD_BUSY and error.diag.message_detail is None
            assert run(conn, run_id) is None
    finally:
        other.execute("SELECT pg_advisory_unlock(graphrun_thread_lock_key(%s))", (thread_id,))
    assert thread(conn, thread_id)["status"] == "idle"
    assert begin(conn, thread_id)["status"] == "running"


async def test_records_turns_each_refusal_into_its_error(conn, records):
    common = {"create_thread": False, "assistant_id": "steps", "multitask_strategy": "reject",
              "on_disconnect": "cancel", "spec": {}, "metadata": {}, "delay": 0.0, "has_input": True,
              "owner": "replica-a", "lease": 30.0}
    with pytest.raises(ThreadNotFound):
        await records.begin_run(run_id=new_id(), thread_id=new_id(), **common)
    thread_id, first = running(conn)
    with pytest.raises(ThreadBusy) as busy:
        await records.begin_run(run_id=new_id(), thread_id=thread_id, **common)
    assert busy.value.metadata["run_id"] == first
    finish(conn, first, 1, status="interrupted")
    with pytest.raises(ThreadInterrupted):
        await records.begin_run(run_id=new_id(), thread_id=thread_id, **common)


# -- graphrun_finish_run --------------------------------------------------------------------


def test_the_owning_attempt_records_the_end_with_its_last_events(conn, listener):
    thread_id, run_id = running(conn, attempt=2)
    rows = finish(conn, run_id, 2, status="success", node="b", step=3,
                  events=[(1, "values", {"n": 1}), (2, "end", {"status": "success"})])
    assert len(rows) == 1
    ended = run(conn, run_id)
    assert rows[0] == ended
    assert (ended["status"], ended["error"], ended["current_node"], ended["step"]) == ("success", None, "b", 3)
    assert ended["ended_at"] is not None and ended["lease_owner"] is None and ended["lease_expires_at"] is None
    assert events(conn, run_id) == [(1, "values", {"n": 1}), (2, "end", {"status": "success"})]
    assert thread(conn, thread_id)["status"] == "idle"
    assert listener.heard(conn) == [("graphrun_event", run_id)]  # no queued run: no worker woken


def test_a_former_attempt_cannot_finish_the_run(conn, listener):
    thread_id, run_id = running(conn, attempt=2)
    before, thread_before = run(conn, run_id), thread(conn, thread_id)
    assert finish(conn, run_id, 1, status="error", error={"type": "X", "message": "late"},
                  events=[(1, "end", {"status": "error"})]) == []
    assert run(conn, run_id) == before and thread(conn, thread_id) == thread_before
    assert events(conn, run_id) == []
    assert listener.heard(conn) == []


def test_a_run_ends_once(conn):
    _, run_id = running(conn)
    assert len(finish(conn, run_id, 1, status="success")) == 1
    ended = run(conn, run_id)
    assert finish(conn, run_id, 1, status="error", events=[(5, "end", {})]) == []
    assert run(conn, run_id) == ended and events(conn, run_id) == []


def test_a_pending_run_is_not_finished(conn):
    run_id = str(begin(conn, new_id(), create=True, owner=None)["run_id"])
    assert finish(conn, run_id, 0, status="success") == []
    assert run(conn, run_id)["status"] == "pending"


def test_the_end_keeps_node_and_step_it_is_not_given(conn):
    _, run_id = running(conn)
    conn.execute("UPDATE graphrun_run SET current_node = 'a', step = 1 WHERE run_id = %s", (run_id,))
    row = finish(conn, run_id, 1)[0]
    assert (row["current_node"], row["step"]) == ("a", 1)


def test_events_a_lost_flush_stored_are_kept_as_they_are(conn):
    _, run_id = running(conn)
    conn.execute("INSERT INTO graphrun_run_event (run_id, sequence, kind, data) VALUES (%s, 1, 'values', %s)",
                 (run_id, Jsonb({"stored": "first"})))
    finish(conn, run_id, 1, events=[(1, "values", {"stored": "again"}), (2, "end", {})])
    assert events(conn, run_id) == [(1, "values", {"stored": "first"}), (2, "end", {})]


def test_the_end_hands_the_thread_to_the_next_queued_run(conn, listener):
    thread_id, first = running(conn)
    begin(conn, thread_id, strategy="enqueue")
    listener.heard(conn)
    finish(conn, first, 1, status="success")
    assert thread(conn, thread_id)["status"] == "busy"
    assert listener.heard(conn) == [("graphrun_event", first), ("graphrun_run", "")]


@pytest.mark.parametrize("status, thread_status", [
    ("success", "idle"), ("interrupted", "interrupted"), ("error", "error"), ("timeout", "idle"),
    ("cancelled", "idle")])
def test_the_thread_takes_its_status_from_the_run_that_ended(conn, status, thread_status):
    thread_id, run_id = running(conn)
    finish(conn, run_id, 1, status=status)
    assert thread(conn, thread_id)["status"] == thread_status


def test_a_run_refused_for_new_input_leaves_the_thread_waiting_on_its_interrupt(conn):
    """A run queued behind one that then paused on a question, bringing new input, ends ERROR
    with THREAD_INTERRUPTED without running: the thread still waits on the question."""
    thread_id, first = running(conn)
    queued = str(begin(conn, thread_id, strategy="enqueue")["run_id"])
    finish(conn, first, 1, status="interrupted")
    assert thread(conn, thread_id)["status"] == "busy"
    conn.execute("UPDATE graphrun_run SET status = 'running', attempt = 1 WHERE run_id = %s", (queued,))  # claimed
    finish(conn, queued, 1, status="error", error={"type": "ThreadInterrupted", "message": "waiting",
                                                   "reason": REASON_THREAD_INTERRUPTED})
    assert thread(conn, thread_id)["status"] == "interrupted"
    assert conn.execute("SELECT graphrun_refresh_thread(%s) AS queued", (thread_id,)).fetchone()["queued"] is False
    assert thread(conn, thread_id)["status"] == "interrupted"  # derived again: the same


# -- graphrun_cancel_run --------------------------------------------------------------------


@pytest.mark.parametrize("action, status, error_type, reason", [
    ("interrupt", "cancelled", "CancelledError", REASON_RUN_CANCELLED),
    ("rollback", "cancelled", "CancelledError", REASON_RUN_CANCELLED),
    ("timeout", "timeout", "TimeoutError", REASON_RUN_TIMEOUT)])
def test_a_pending_run_ends_here_with_its_end_event(conn, listener, action, status, error_type, reason):
    thread_id = new_id()
    run_id = str(begin(conn, thread_id, create=True, owner=None)["run_id"])
    listener.heard(conn)
    rows = cancel(conn, run_id, action, "stopped by a test")
    ended = run(conn, run_id)
    assert rows == [ended]
    error = {"type": error_type, "reason": reason, "message": "stopped by a test"}
    assert (ended["status"], ended["cancel_action"], ended["error"]) == (status, action, error)
    assert ended["ended_at"] is not None
    assert events(conn, run_id) == [(1, "end", {"status": status, "error": error, "state": None})]
    assert thread(conn, thread_id)["status"] == "idle"
    assert listener.heard(conn) == [("graphrun_event", run_id)]


def test_the_end_event_of_a_handed_back_run_follows_its_stored_events(conn):
    _, run_id = running(conn)
    conn.execute("UPDATE graphrun_run SET status = 'pending', lease_owner = NULL, handoffs = 1 WHERE run_id = %s",
                 (run_id,))
    conn.execute("INSERT INTO graphrun_run_event (run_id, sequence, kind, data)"
                 " SELECT %s, n, 'values', '{}' FROM generate_series(1, 3) n", (run_id,))
    cancel(conn, run_id)
    assert [e[:2] for e in events(conn, run_id)] == [(1, "values"), (2, "values"), (3, "values"), (4, "end")]


def _checkpoint(conn, thread_id: str, checkpoint_id: str, run_id: str) -> None:
    conn.execute("INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)"
                 " VALUES (%s, '', %s, '{}', %s)", (thread_id, checkpoint_id, Jsonb({"run_id": run_id})))
    conn.execute("INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel,"
                 " blob) VALUES (%s, '', %s, 'task', 0, 'log', '')", (thread_id, checkpoint_id))


def _checkpoints(conn, thread_id) -> list[tuple[str, int]]:
    return [(r["checkpoint_id"], r["writes"]) for r in conn.execute(
        "SELECT c.checkpoint_id, (SELECT count(*) FROM checkpoint_writes w WHERE w.thread_id = c.thread_id"
        " AND w.checkpoint_id = c.checkpoint_id) AS writes FROM checkpoints c WHERE c.thread_id = %s"
        " ORDER BY 1", (thread_id,))]


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
def test_rollback_of_a_handed_back_run_deletes_what_it_wrote_and_interrupt_keeps_it(conn, action):
    thread_id, earlier = running(conn)
    _checkpoint(conn, thread_id, "1", earlier)
    finish(conn, earlier, 1)
    run_id = str(begin(conn, thread_id)["run_id"])
    _checkpoint(conn, thread_id, "2", run_id)
    conn.execute("UPDATE graphrun_run SET status = 'pending', lease_owner = NULL WHERE run_id = %s", (run_id,))
    cancel(conn, run_id, action)
    assert _checkpoints(conn, thread_id) == ([("1", 1)] if action == "rollback" else [("1", 1), ("2", 1)])


def test_delete_run_checkpoints_removes_only_that_runs_checkpoints_and_writes(conn):
    thread_id, other_thread, run_id, other_run = new_id(), new_id(), new_id(), new_id()
    _checkpoint(conn, thread_id, "1", run_id)
    _checkpoint(conn, thread_id, "2", run_id)
    _checkpoint(conn, thread_id, "3", other_run)
    _checkpoint(conn, other_thread, "1", run_id)  # the same run id on another thread: not this one's
    n = conn.execute("SELECT graphrun_delete_run_checkpoints(%s, %s) AS n", (thread_id, run_id)).fetchone()["n"]
    assert n == 2
    assert _checkpoints(conn, thread_id) == [("3", 1)] and _checkpoints(conn, other_thread) == [("1", 1)]


@pytest.mark.parametrize("action", ["interrupt", "rollback", "timeout"])
def test_a_running_run_is_only_asked_to_stop(conn, listener, action):
    thread_id, run_id = running(conn)
    rows = cancel(conn, run_id, action)
    asked = run(conn, run_id)
    assert rows == [asked]
    assert (asked["status"], asked["cancel_action"], asked["ended_at"], asked["error"]) == (
        "running", action, None, None)
    assert events(conn, run_id) == [] and thread(conn, thread_id)["status"] == "busy"
    assert listener.heard(conn) == [("graphrun_cancel", f"{run_id} {action}")]


@pytest.mark.parametrize("status", ["success", "error", "interrupted", "timeout", "cancelled"])
def test_cancelling_a_run_that_ended_changes_nothing(conn, listener, status):
    thread_id, run_id = running(conn)
    finish(conn, run_id, 1, status=status, events=[(1, "end", {"status": status})])
    ended, thread_before = run(conn, run_id), thread(conn, thread_id)
    listener.heard(conn)
    for action in ("interrupt", "rollback", "timeout"):
        assert cancel(conn, run_id, action) == [ended]
    assert run(conn, run_id) == ended and thread(conn, thread_id) == thread_before
    assert events(conn, run_id) == [(1, "end", {"status": status})]
    assert listener.heard(conn) == []


def test_cancelling_an_unknown_run_returns_nothing(conn, listener):
    assert cancel(conn, new_id()) == []
    assert listener.heard(conn) == []


# -- graphrun_refresh_thread ----------------------------------------------------------------


def test_a_thread_is_busy_while_a_run_is_in_flight(conn):
    thread_id, run_id = running(conn)
    conn.execute("UPDATE graphrun_thread SET status = 'idle' WHERE thread_id = %s", (thread_id,))
    assert conn.execute("SELECT graphrun_refresh_thread(%s, 'error') AS q", (thread_id,)).fetchone()["q"] is True
    assert thread(conn, thread_id)["status"] == "busy"
    finish(conn, run_id, 1)
    assert conn.execute("SELECT graphrun_refresh_thread(%s, 'error') AS q", (thread_id,)).fetchone()["q"] is False
    assert thread(conn, thread_id)["status"] == "error"  # the status given is the latest run's


def test_runs_that_never_executed_do_not_decide_the_threads_status(conn):
    thread_id, first = running(conn)
    finish(conn, first, 1, status="error")
    never = str(begin(conn, thread_id, owner=None)["run_id"])  # pending, then cancelled: attempt 0
    cancel(conn, never)
    assert run(conn, never)["status"] == "cancelled"
    assert thread(conn, thread_id)["status"] == "error"


# -- the fence ------------------------------------------------------------------------------


def test_the_fence_lets_the_owning_attempt_through_and_refuses_any_other(conn):
    _, run_id = running(conn, attempt=2)
    conn.execute("SELECT graphrun_fence(%s, 2)", (run_id,))
    assert conn.execute("SELECT graphrun_fenced(%s, 2) AS ok", (run_id,)).fetchone()["ok"] is True
    for attempt in (1, 3):
        for function in ("graphrun_fence", "graphrun_fenced"):
            error = refused(conn.execute, f"SELECT {function}(%s, %s)", (run_id, attempt))
            assert error.sqlstate == SQLSTATE_NOT_OWNER
    assert refused(lambda: conn.execute("SELECT graphrun_fence(%s, 1)", (new_id(),))).sqlstate == SQLSTATE_NOT_OWNER


def test_the_fence_refuses_a_run_that_is_not_running(conn):
    _, handed_back = running(conn)
    conn.execute("UPDATE graphrun_run SET status = 'pending' WHERE run_id = %s", (handed_back,))
    _, ended = running(conn)
    finish(conn, ended, 1)
    for run_id in (handed_back, ended):
        assert refused(conn.execute, "SELECT graphrun_fence(%s, 1)", (run_id,)).sqlstate == SQLSTATE_NOT_OWNER


def test_a_refused_fence_undoes_the_write_it_guards(conn):
    thread_id, run_id = running(conn, attempt=2)
    fenced_insert = ("INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint, metadata)"
                     " SELECT %s, '', %s, '{}', '{}' WHERE graphrun_fenced(%s, %s)")
    conn.execute(fenced_insert, (thread_id, "ok", run_id, 2))
    assert refused(lambda: conn.execute(fenced_insert, (thread_id, "late", run_id, 1))).sqlstate == \
        SQLSTATE_NOT_OWNER
    assert [c for c, _ in _checkpoints(conn, thread_id)] == ["ok"]


async def test_a_write_in_progress_holds_off_a_takeover_which_then_fences_it_out(conn, other, records):
    _, run_id = running(conn)
    conn.execute("UPDATE graphrun_run SET lease_expires_at = now() - interval '1 second' WHERE run_id = %s",
                 (run_id,))
    with other.transaction():  # the old owner's write, not committed yet
        other.execute("SELECT graphrun_fenced(%s, 1)", (run_id,))
        assert await records.claim("replica-b", 30.0, run_id) is None
        assert run(conn, run_id)["attempt"] == 1
    claim = await records.claim("replica-b", 30.0, run_id)
    assert claim is not None and (claim.run.attempt, claim.run.lease_owner) == (2, "replica-b")
    assert refused(lambda: other.execute("SELECT graphrun_fence(%s, 1)", (run_id,))).sqlstate == SQLSTATE_NOT_OWNER


def test_lock_keys_are_fixed_per_id_and_differ_between_runs_and_threads(conn):
    same = new_id()
    row = conn.execute("SELECT graphrun_run_lock_key(%(id)s) AS r1, graphrun_run_lock_key(%(id)s) AS r2,"
                       " graphrun_thread_lock_key(%(id)s) AS t, graphrun_run_lock_key(%(other)s) AS o,"
                       " hashtextextended('graphrun-run:' || %(id)s, 0) AS expected",
                       {"id": same, "other": new_id()}).fetchone()
    assert row["r1"] == row["r2"] == row["expected"]  # other replicas' versions compute the same lock
    assert len({row["r1"], row["t"], row["o"]}) == 3


# -- claims, renewals, hand-backs, events (statements of storage/) ---------------------------


def _expire(conn, run_id) -> None:
    conn.execute("UPDATE graphrun_run SET lease_expires_at = now() - interval '1 second' WHERE run_id = %s",
                 (run_id,))


async def test_a_claim_takes_the_oldest_runnable_run(conn, records):
    busy_thread, _ = running(conn)  # lease still valid: not runnable
    blocked = str(begin(conn, busy_thread, strategy="enqueue")["run_id"])  # behind a running run
    later = str(begin(conn, new_id(), create=True, owner=None, delay=60)["run_id"])  # not before a minute
    thread_id = new_id()
    first = str(begin(conn, thread_id, create=True, owner=None)["run_id"])
    begin(conn, thread_id, strategy="enqueue", owner=None)  # second in its thread's queue
    claim = await records.claim("replica-b", 30.0)
    assert claim is not None and claim.run.run_id == first
    assert (claim.run.status, claim.run.attempt, claim.run.lease_owner) == ("running", 1, "replica-b")
    assert near(claim.run.lease_expires_at, 30, conn) and claim.run.started_at is not None
    assert (claim.last_sequence, claim.previous_status) == (0, None)
    assert await records.claim("replica-b", 30.0) is None  # the second waits for the first; the rest too
    assert run(conn, blocked)["status"] == run(conn, later)["status"] == "pending"


async def test_a_claim_takes_over_a_run_whose_lease_expired(conn, records):
    thread_id, earlier = running(conn)
    finish(conn, earlier, 1, status="interrupted")
    run_id = str(begin(conn, thread_id, has_input=False)["run_id"])
    conn.execute("INSERT INTO graphrun_run_event (run_id, sequence, kind, data) VALUES (%s, 1, 'values', '{}'),"
                 " (%s, 2, 'values', '{}')", (run_id, run_id))
    assert await records.claim("replica-b", 30.0) is None  # its lease holds
    _expire(conn, run_id)
    claim = await records.claim("replica-b", 30.0)
    assert claim is not None and claim.run.run_id == run_id
    assert (claim.run.attempt, claim.run.lease_owner) == (2, "replica-b")
    assert (claim.last_sequence, claim.previous_status) == (2, "interrupted")
    assert refused(lambda: conn.execute("SELECT graphrun_fence(%s, 1)", (run_id,))).sqlstate == SQLSTATE_NOT_OWNER


async def test_a_claim_passes_over_a_run_another_replica_claims(conn, other, records):
    first = str(begin(conn, new_id(), create=True, owner=None)["run_id"])
    second = str(begin(conn, new_id(), create=True, owner=None)["run_id"])
    with other.transaction():
        other.execute("SELECT 1 FROM graphrun_run WHERE run_id = %s FOR UPDATE", (first,))
        claim = await records.claim("replica-b", 30.0)
    assert claim is not None and claim.run.run_id == second


async def test_a_hand_back_is_fenced_and_does_not_count_as_an_attempt(conn, records, listener):
    _, run_id = running(conn, attempt=2)
    before = run(conn, run_id)
    assert await records.release_run(run_id, 1) is False
    assert run(conn, run_id) == before
    assert listener.heard(conn) == []
    assert await records.release_run(run_id, 2) is True
    released = run(conn, run_id)
    assert (released["status"], released["attempt"], released["handoffs"]) == ("pending", 2, 1)
    assert released["lease_owner"] is None and released["lease_expires_at"] is None
    assert listener.heard(conn) == [("graphrun_run", run_id)]


def test_a_renewal_keeps_only_the_leases_this_replica_still_holds(conn):
    _, mine = running(conn, attempt=2, owner="replica-a")
    _, taken_over = running(conn, attempt=3, owner="replica-b")
    _, ended = running(conn, owner="replica-a")
    finish(conn, ended, 1)
    _expire(conn, mine)
    cancel(conn, mine, "rollback")
    rows = conn.execute(RENEW_SQL, {"lease": 30.0, "owner": "replica-a", "ids": [mine, taken_over, ended],
                                    "attempts": [2, 2, 1], "nodes": ["n", "m", None], "steps": [4, 5, None]}
                        ).fetchall()
    assert rows == [{"run_id": mine, "cancel_action": "rollback"}]  # with the cancel asked of it
    renewed = run(conn, mine)
    assert near(renewed["lease_expires_at"], 30, conn) and (renewed["current_node"], renewed["step"]) == ("n", 4)
    assert run(conn, taken_over)["current_node"] is None


async def test_events_are_stored_by_the_owning_attempt_only(conn, records, listener):
    _, run_id = running(conn, attempt=2)
    assert await records.append_events(run_id, 1, [RunEvent(1, "values", {"late": True})]) is False
    assert events(conn, run_id) == [] and listener.heard(conn) == []
    assert await records.append_events(run_id, 2, [RunEvent(1, "values", {"n": 1})]) is True
    assert await records.append_events(run_id, 2, [RunEvent(1, "values", {"n": 9})]) is True  # a retried flush
    assert events(conn, run_id) == [(1, "values", {"n": 1})]
    assert listener.heard(conn) == [("graphrun_event", run_id)]  # only for the flush that stored something


async def test_one_group_write_stores_each_run_fenced_on_its_own(conn, records, listener):
    _, mine = running(conn, attempt=2)
    _, taken_over = running(conn, attempt=3)
    _, ended = running(conn)
    finish(conn, ended, 1)
    listener.heard(conn)  # what the set-up said
    owned = await records.append_event_groups({
        mine: (2, [RunEvent(1, "values", {"n": 1}), RunEvent(2, "custom", {"c": 2}, namespace=("sub:1",))]),
        taken_over: (2, [RunEvent(1, "values", {"stale": True})]),
        ended: (1, [RunEvent(1, "values", {"late": True})]),
    })
    assert owned == {mine}
    assert events(conn, mine) == [(1, "values", {"n": 1}), (2, "custom", {"c": 2, "__namespace": ["sub:1"]})]
    assert events(conn, taken_over) == [] and events(conn, ended) == []
    assert listener.heard(conn) == [("graphrun_event", mine)]


def test_a_stale_attempts_group_beside_the_owners_stores_nothing(conn, listener):
    """The fence holds group by group, not run by run: a stale attempt's events for a run
    stay out even beside the owning attempt's in the same write."""
    _, run_id = running(conn, attempt=2)
    listener.heard(conn)
    owned = conn.execute("SELECT graphrun_append_events(%s) AS owned", (Jsonb([
        [run_id, 1, [[1, "values", {"stale": True}], [2, "values", {"stale": True}]]],
        [run_id, 2, [[1, "values", {"n": 1}]]],
    ]),)).fetchone()["owned"]
    assert [str(r) for r in owned] == [run_id]
    assert events(conn, run_id) == [(1, "values", {"n": 1})]
    assert listener.heard(conn) == [("graphrun_event", run_id)]


class _Attempt:
    """An attempt's events as the event writer sees them (as runs/state.py's ActiveRun gives them)."""

    def __init__(self, run_id: str, attempt: int, events: list[RunEvent]):
        self.run_id, self.attempt, self.events, self.stored_up_to, self.was_lost = run_id, attempt, events, 0, False
        self.answered = asyncio.Event()

    def unstored(self) -> list[RunEvent]:
        return [e for e in self.events if e.sequence > self.stored_up_to]

    def events_stored(self, sequence: int) -> None:
        self.stored_up_to = sequence
        self.answered.set()

    def fenced_off(self) -> None:
        self.was_lost, self.lost_calls = True, getattr(self, "lost_calls", 0) + 1
        self.answered.set()


async def test_the_event_writer_stores_every_marked_runs_events_in_one_write(conn, records, listener):
    """Runs attached together go out in one write; each attempt learns what was stored of its
    events, or that its run is another attempt's; a detached attempt's events are not written."""
    from graphrun_server.storage.event_writer import EventWriter

    _, first = running(conn)
    _, second = running(conn, attempt=2)
    _, third = running(conn)
    writer = EventWriter(records, 0.0)
    ones = [_Attempt(first, 1, [RunEvent(1, "values", {"n": 1})]),
            _Attempt(second, 2, [RunEvent(1, "values", {"n": 2}), RunEvent(2, "custom", {"c": 2})])]
    detached = _Attempt(third, 1, [RunEvent(1, "values", {"n": 3})])
    try:
        for attempt in (*ones, detached):
            writer.attach(attempt)
        await writer.detach(third, 1)
        await asyncio.gather(*(a.answered.wait() for a in ones))
        stale = _Attempt(second, 1, [RunEvent(3, "values", {"stale": True})])
        writer.attach(stale)  # an older attempt of `second` (as after this replica re-claimed its own run)
        await stale.answered.wait()
    finally:
        await writer.close()
    assert [a.stored_up_to for a in ones] == [1, 2] and not any(a.was_lost for a in ones)
    assert stale.was_lost and stale.stored_up_to == 0
    assert events(conn, first) == [(1, "values", {"n": 1})]
    assert events(conn, second) == [(1, "values", {"n": 2}), (2, "custom", {"c": 2})]
    assert events(conn, third) == []
    assert sorted(listener.heard(conn)) == sorted([("graphrun_event", first), ("graphrun_event", second)])


class _GatedRecords:
    """Records whose event writes wait at a gate (to hold one in flight) and are counted."""

    def __init__(self, records: Records):
        self.records, self.writes = records, 0
        self.entered, self.gate = asyncio.Event(), asyncio.Event()

    async def append_event_groups(self, groups):
        self.writes += 1
        self.entered.set()
        await self.gate.wait()
        return await self.records.append_event_groups(groups)


async def test_an_attempt_the_write_found_lost_is_not_written_again(conn, records):
    from graphrun_server.storage.event_writer import EventWriter

    _, run_id = running(conn, attempt=2)
    _, other = running(conn)
    gated = _GatedRecords(records)
    gated.gate.set()
    writer = EventWriter(gated, 0.0)
    stale = _Attempt(run_id, 1, [RunEvent(1, "values", {"stale": True})])
    live = _Attempt(other, 1, [RunEvent(1, "values", {"n": 1})])
    try:
        writer.attach(stale)
        await stale.answered.wait()
        stale.events.append(RunEvent(2, "values", {"stale": True}))
        writer.mark(stale)  # its log keeps marking it until it has stopped
        writer.attach(live)  # the next write: it would carry the lost attempt's events again
        await live.answered.wait()
    finally:
        await writer.close()
    assert stale.lost_calls == 1 and live.stored_up_to == 1 and gated.writes == 2


async def test_detaching_an_attempt_waits_for_its_write_in_flight_even_once_replaced(conn, records):
    """Settling an attempt that a newer attempt on this replica replaced still waits for the
    write of its events that is out: nothing of the attempt is written once it settles."""
    from graphrun_server.storage.event_writer import EventWriter

    _, run_id = running(conn, attempt=2)
    gated = _GatedRecords(records)
    writer = EventWriter(gated, 0.0)
    older = _Attempt(run_id, 1, [RunEvent(1, "values", {"stale": True})])
    newer = _Attempt(run_id, 2, [RunEvent(1, "values", {"n": 1})])
    try:
        writer.attach(older)
        await gated.entered.wait()  # older's write is out
        writer.attach(newer)
        detaching = asyncio.ensure_future(writer.detach(run_id, 1))
        await asyncio.sleep(0)
        assert not detaching.done()
        gated.gate.set()
        await detaching
        assert older.answered.is_set() and older.was_lost
        await newer.answered.wait()
    finally:
        await writer.close()
    assert newer.stored_up_to == 1 and events(conn, run_id) == [(1, "values", {"n": 1})]


async def test_pruning_removes_the_events_of_runs_that_ended_long_ago(conn, records):
    _, old = running(conn)
    finish(conn, old, 1, events=[(1, "end", {})])
    conn.execute("UPDATE graphrun_run SET ended_at = now() - interval '2 hours' WHERE run_id = %s", (old,))
    _, recent = running(conn)
    finish(conn, recent, 1, events=[(1, "end", {})])
    _, in_flight = running(conn)
    conn.execute("INSERT INTO graphrun_run_event (run_id, sequence, kind, data) VALUES (%s, 1, 'values', '{}')",
                 (in_flight,))
    assert await records.prune_events(3600) == 1
    assert events(conn, old) == [] and len(events(conn, recent)) == len(events(conn, in_flight)) == 1
