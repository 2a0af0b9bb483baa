"""Logging: text or JSON lines, with the run id and thread id on every line about a run.

The ids travel in a context variable: the runner sets it in each run's tasks (and
the servicers in each call's), so any logger below picks them up unasked. Times are
ISO 8601 in UTC. A `--workers` process names itself on every line (`worker`). The one
line on stdout, `graphrun serving on HOST:PORT` (what supervisors and tests wait for),
goes through logging too (`READY`), as JSON when the logs are.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType

from pythonjsonlogger.json import JsonFormatter

# Read-only: a run sets a new mapping (in_run_context), never changes the one it sees.
run_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "graphrun_run_context", default=MappingProxyType({})
)
FIELDS = ("run_id", "thread_id")


READY = logging.getLogger("graphrun.ready")
WORKER_ENV = "GRAPHRUN_WORKER_ID"  # set by --workers for each of its processes (1, 2, …)


class _RunFields(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.worker = os.environ.get(WORKER_ENV, "")

    def filter(self, record: logging.LogRecord) -> bool:
        fields = run_context.get()
        for name in FIELDS:
            setattr(record, name, fields.get(name, ""))
        record.worker = self.worker
        return True


def _utc(record: logging.LogRecord) -> str:
    """`2026-12-06T15:13:39.701Z`."""
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _TextFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, ""))
        if getattr(record, "worker", ""):
            text = f"[worker {record.worker}] {text}"
        return f"{text} [{ids}]" if ids else text


class _JsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)


def _json() -> logging.Formatter:
    return _JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s %(thread_id)s %(worker)s",
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
    )


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr as text (default) or JSON lines (`GRAPHRUN_LOG_FORMAT=json`); the ready
    line to stdout, as its message alone or as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _json() if fmt == "json" else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(_RunFields())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    ready = logging.StreamHandler(sys.stdout)
    ready.setFormatter(_json() if fmt == "json" else logging.Formatter("%(message)s"))
    ready.addFilter(_RunFields())
    READY.handlers, READY.propagate = [ready], False
    READY.setLevel(logging.INFO)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every start at INFO
    # psycopg_pool warns once per connection and attempt while the database is away;
    # storage/availability.py logs the database going and coming back once each instead.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def in_run_context(run_id: str, thread_id: str) -> contextvars.Context:
    """A copy of the current context whose logs name this run (for the run's tasks)."""
    context = contextvars.copy_context()
    context.run(run_context.set, {"run_id": run_id, "thread_id": thread_id})
    return context
