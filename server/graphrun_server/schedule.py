"""Cron expressions in IANA time zones: when a cron's ticks are (cronsim, which follows Debian's
cron, daylight-saving changes included).

A cron's ticks are computed here and nowhere else; the database only stores the next one
(`graphrun_cron.next_run_at`, UTC), so every replica agrees on it whatever its own time zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from cronsim import CronSim, CronSimError

from .errors import FieldViolation

MAX_EXPRESSION = 256
# Debian cron's shorthands (cronsim reads plain expressions only).
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class Schedule:
    """A cron expression (5 fields, or 6 with seconds first) read in a time zone."""

    def __init__(self, expression: str, timezone: str = "UTC"):
        self.expression = expression
        self.timezone = timezone or "UTC"
        self._expr = ALIASES.get(expression.strip().lower(), expression)
        self._zone = zoneinfo.ZoneInfo(self.timezone)
        CronSim(self._expr, dt.datetime.now(self._zone))  # a bad expression raises CronSimError here

    @classmethod
    def parse(
        cls, expression: str, timezone: str, violations: list[FieldViolation], prefix: str = "cron."
    ) -> Schedule | None:
        """The schedule, or None with what is wrong added to `violations` (naming `<prefix>schedule`
        and `<prefix>timezone`)."""
        bad = len(violations)
        if timezone and (len(timezone) > 64 or timezone not in _zones()):
            violations.append(FieldViolation(f"{prefix}timezone", f"{timezone[:64]!r} is not an IANA time zone name"))
        if not expression.strip():
            violations.append(FieldViolation(f"{prefix}schedule", "is required"))
        elif len(expression) > MAX_EXPRESSION:
            violations.append(FieldViolation(f"{prefix}schedule", f"is longer than {MAX_EXPRESSION} characters"))
        if len(violations) > bad:
            return None
        try:
            schedule = cls(expression, timezone)
        except CronSimError as exc:
            violations.append(FieldViolation(f"{prefix}schedule", f"not a cron expression: {exc}"))
            return None
        if schedule.next_after(dt.datetime.now(dt.UTC)) is None:
            violations.append(FieldViolation(f"{prefix}schedule", "matches no time in the next 50 years"))
            return None
        return schedule

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first tick strictly after `moment` (UTC), or None if there is none in 50 years."""
        try:
            tick = next(CronSim(self._expr, moment.astimezone(self._zone)))
        except StopIteration:
            return None
        return tick.astimezone(dt.UTC)
