"""Logging: text or JSON lines, with the run id and thread id on every line about a run.

The ids travel in a context variable: the runner sets it in each run's tasks (and
the servicers in each call's), so any logger below picks them up unasked.
"""

from __future__ import annotations

import contextvars
import logging
import sys

from pythonjsonlogger.json import JsonFormatter

run_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("graphrun_run_context", default={})
FIELDS = ("run_id", "thread_id")


class _RunFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = run_context.get()
        for name in FIELDS:
            setattr(record, name, fields.get(name, ""))
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, ""))
        return f"{text} [{ids}]" if ids else text


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr as text (default) or JSON lines (`GRAPHRUN_LOG_FORMAT=json`)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s %(thread_id)s",
                                           rename_fields={"levelname": "level", "asctime": "time", "name": "logger"}))
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_RunFields())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every start at INFO
    # psycopg_pool warns once per connection and attempt while the database is away;
    # storage/availability.py logs the database going and coming back once each instead.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def in_run_context(run_id: str, thread_id: str) -> contextvars.Context:
    """A copy of the current context whose logs name this run (for the run's tasks)."""
    context = contextvars.copy_context()
    context.run(run_context.set, {"run_id": run_id, "thread_id": thread_id})
    return context
