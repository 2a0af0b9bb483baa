"""Crons: schedules that start runs, and the scheduler every replica runs for them.

**One run per tick, whatever the number of replicas.**
1. A replica takes a due cron by claiming it (`claimed_until`, in one statement with `FOR UPDATE
   SKIP LOCKED` over crons whose `next_run_at` passed and that no live claim holds): one replica
   claims a tick, the others pass over it.
2. It starts the tick's run through the normal admission (`GraphRunner.submit`, as the cron's
   owner), with the request id `cron:<cron id>:<tick>`: the run's id follows from the owner, the
   cron and the tick (runs/admission.py), so a second attempt at a tick meets the first one's
   run on graphrun_run's primary key and gets that run back instead of making another.
3. It records the tick and moves `next_run_at` on, only where `next_run_at` is still that tick.

A replica that stalls or dies between 1 and 3 holds its claim only until it lapses (the runner's
lease); then another replica claims the same tick (`next_run_at` did not move) and starts it again
under the same run id: it finds the run the first replica began, or begins it. A stalled replica
that wakes up and starts the tick finds that run too, and its record of the tick changes nothing
(`next_run_at` moved). No step needs a transaction held open across a run's admission.

**Missed ticks** (no replica ran, all were busy, the cron's run could not be admitted): never
made up. The replica that finds a cron's tick passed starts one run for that tick and moves the
cron to its first tick after now: however many ticks were missed, they cost one run. A tick
found after the cron's `end_time` starts none. Ticks passing while a cron is paused are skipped.

**Overlap.** A tick on a thread whose previous run is still in flight follows the spec's
multitask strategy like any run: REJECT (the default) skips the tick, recorded in `last_skip`;
ENQUEUE queues it; INTERRUPT and ROLLBACK replace the run in flight. Any refusal of the run
(busy thread, assistant gone, input the thread no longer takes, queue full) skips the tick the
same way; an unreachable database leaves the claim to lapse, and the tick is tried again.

**Wake-ups.** The scheduler sleeps until the earliest next tick of any cron (or the lapse of a
claim), at most `GRAPHRUN_CRON_INTERVAL`, and wakes at once when this replica creates or changes
a cron; a replica sees another's new cron within that interval.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import psycopg

from .auth import caller
from .errors import (
    DatabaseUnavailable,
    FieldViolation,
    GraphrunError,
    InvalidArgument,
    RequestIdReused,
    field_prefix,
)
from .periodic import Periodic
from .runner import GraphRunner, RunRequest
from .schedule import Schedule
from .storage.crons import CronRecord, CronStore

log = logging.getLogger(__name__)

FIELDS = ("schedule", "timezone", "spec", "end_time", "paused", "metadata")
_RESCHEDULING = {"schedule", "timezone", "end_time", "paused"}  # a change of these counts the next tick from now
_DATABASE_ERRORS = (psycopg.OperationalError, DatabaseUnavailable)
CLAIM_BATCH = 10


class Crons:
    """Creating, changing and removing crons: the checks a cron's run gets before it is stored."""

    def __init__(self, store: CronStore, runner: GraphRunner, scheduler: CronScheduler | None = None):
        self.store, self.runner, self.scheduler = store, runner, scheduler

    async def create(self, cron_id: str | None, values: dict[str, Any]) -> CronRecord:
        """A new cron of the caller's; `values` has every field of FIELDS."""
        cron_id = cron_id or str(uuid.uuid4())
        written, next_run_at = await self._checked(cron_id, caller.get(), values, set(FIELDS))
        cron = await self.store.create(cron_id, written, next_run_at)
        self._wake()
        return cron

    async def update(self, cron_id: str, changes: dict[str, Any]) -> CronRecord:
        """Change the fields `changes` holds (a subset of FIELDS), checked as at creation."""
        cron = await self.store.get(cron_id)
        values = {
            "schedule": cron.schedule,
            "timezone": cron.timezone,
            "spec": RunRequest.from_json(cron.spec),
            "end_time": cron.end_time,
            "paused": cron.paused,
            "metadata": cron.metadata,
            **changes,
        }
        written, next_run_at = await self._checked(cron_id, cron.owner, values, set(changes))
        reschedule = bool(_RESCHEDULING & set(changes))
        updated = await self.store.update(cron_id, written, next_run_at if reschedule else None, reschedule)
        self._wake()
        return updated

    async def get(self, cron_id: str) -> CronRecord:
        return await self.store.get(cron_id)

    async def delete(self, cron_id: str) -> None:
        await self.store.delete(cron_id)

    async def list_crons(
        self, assistant_id: str | None, thread_id: str | None, page_size: int, page_token: str
    ) -> tuple[list[CronRecord], str]:
        return await self.store.list_crons(assistant_id, thread_id, page_size, page_token)

    async def _checked(
        self, cron_id: str, owner: str | None, values: dict[str, Any], changed: set[str]
    ) -> tuple[dict[str, Any], dt.datetime | None]:
        """The columns to store and the next tick, once the schedule, the end time and the run (its
        thread, assistant, nodes, context and input, as `RunService.Create` checks them) pass."""
        violations: list[FieldViolation] = []
        schedule = Schedule.parse(values["schedule"], values["timezone"], violations)
        now = dt.datetime.now(dt.UTC)
        end_time: dt.datetime | None = values["end_time"]
        first = schedule.next_after(now) if schedule else None
        if end_time is not None and changed & {"schedule", "timezone", "end_time"}:
            if end_time <= now:
                violations.append(FieldViolation("cron.end_time", "is in the past"))
            elif first is not None and first > end_time:
                violations.append(
                    FieldViolation("cron.end_time", f"comes before the schedule's first tick ({first.isoformat()})")
                )
        if violations:
            raise InvalidArgument(violations)
        req: RunRequest = values["spec"]
        req.cron_id, req.on_disconnect, req.request_id, req.cron_tick = cron_id, "continue", None, None
        if "spec" in changed:  # a cron whose graph went away can still be paused, moved or deleted
            if req.thread_id:
                await self.store.check_thread(req.thread_id, owner)
            with field_prefix("cron."):
                await self.runner.check(req)
        next_run_at = None if values["paused"] or (end_time and first and first > end_time) else first
        written = {
            "schedule": values["schedule"],
            "timezone": schedule.timezone if schedule else "UTC",
            "assistant_id": req.assistant_id,
            "thread_id": req.thread_id,
            "spec": req.to_json(),
            "end_time": end_time,
            "paused": values["paused"],
            "metadata": values["metadata"],
        }
        return written, next_run_at

    def _wake(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()


class CronScheduler(Periodic):
    """Starts the runs of due ticks, on every replica (see the module's docstring)."""

    name = "graphrun-crons"

    def __init__(self, store: CronStore, runner: GraphRunner, interval: float, lease: float):
        self.store, self.runner = store, runner
        self.interval, self.lease = interval, lease

    def start(self):
        super().start()
        self.wake()  # a tick that came due while no replica ran starts at once
        return self

    async def tick(self) -> float | None:
        try:
            while True:
                crons, now = await self.store.claim_due(self.lease, CLAIM_BATCH)
                for cron in crons:
                    await self._fire(cron, now)
                if len(crons) < CLAIM_BATCH:
                    return await self.store.seconds_until_due()
        except Exception as exc:  # noqa: BLE001 - the next round tries again (a claim lapses by itself)
            log.warning("cron round failed: %s", type(exc).__name__)
            return min(self.interval, 5.0)

    async def _fire(self, cron: CronRecord, now: dt.datetime | None) -> None:
        """Start the run of the cron's due tick (or skip it), then move the cron to its next tick."""
        tick = cron.next_run_at
        assert tick is not None and now is not None  # claim_due takes crons with a next tick
        run_id: str | None = None
        skip: dict[str, Any] | None = None
        try:
            following = Schedule(cron.schedule, cron.timezone).next_after(max(now, tick))  # no making up
        except Exception as exc:  # noqa: BLE001 - e.g. a time zone this server's tz database lacks: the cron stops
            following, skip = None, _skip(tick, "INVALID_SCHEDULE", f"the schedule cannot be read: {exc}")
        if cron.end_time is not None and following is not None and following > cron.end_time:
            following = None
        if skip:
            pass
        elif cron.end_time is not None and now > cron.end_time:
            skip = _skip(tick, "END_TIME_PASSED", "the tick was found after the cron's end_time")
        else:
            run_id, skip = await self._start(cron, tick)
        if skip:
            log.info("cron %s: the tick of %s started no run: %s", cron.cron_id, tick.isoformat(), skip["reason"])
        await self.store.finish_tick(cron.cron_id, tick, following, run_id, skip)

    async def _start(self, cron: CronRecord, tick: dt.datetime) -> tuple[str | None, dict[str, Any] | None]:
        """Submit the tick's run as the cron's owner: (its id, None), or (None, why it was refused)."""
        req = RunRequest.from_json(cron.spec)
        req.cron_tick = tick.astimezone(dt.UTC).isoformat()
        req.request_id = f"cron:{cron.cron_id}:{req.cron_tick}"  # the tick's run id follows from it
        token = caller.set(cron.owner)
        try:
            run = await self.runner.submit(req)
            log.debug("cron %s: the tick of %s started run %s", cron.cron_id, tick.isoformat(), run.run_id)
            return run.run_id, None
        except RequestIdReused as exc:  # an attempt before an Update started the tick's run
            return exc.metadata["run_id"], None
        except _DATABASE_ERRORS:
            raise  # the claim lapses; the tick is tried again
        except GraphrunError as exc:
            return None, _skip(tick, exc.reason, exc.message)
        except Exception:  # a bug must not stop the cron: the tick is skipped, its trace logged
            log.exception("cron %s: the tick of %s failed", cron.cron_id, tick.isoformat())
            return None, _skip(tick, "INTERNAL", "internal error; see the server log")
        finally:
            caller.reset(token)


def _skip(tick: dt.datetime, reason: str, message: str) -> dict[str, Any]:
    return {"tick_at": tick.isoformat(), "reason": reason, "message": message}
