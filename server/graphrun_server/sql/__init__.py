"""graphrun's SQL functions as source code: one file per function, named after it.

The run life cycle's functions (graphrun_begin_run, graphrun_finish_run, graphrun_cancel_run,
graphrun_fence, ...) each have their one current definition here, as
`CREATE OR REPLACE FUNCTION`. `storage/database.py` (`migrate`) applies every file at each
start-up, after the versioned migrations (`../migrations/`, which keep tables and indexes), in
the same transaction and under the same advisory lock. Changing a function is editing its file;
a change of its arguments or return type also needs a migration that drops the old one
(`CREATE OR REPLACE` cannot change a return type, and new arguments make a second function).

Names shared with Python are written `{{NAME}}` (inside a string literal: `'{{NAME}}'`) and
stand for `graphrun_server.errors.NAME`: the SQLSTATEs the functions raise (`SQLSTATE_…`) and
the ErrorInfo reasons they store or read (`REASON_…`). They are replaced when the files are
applied, so the database holds plain literals and Python reads the same constants.
"""

from __future__ import annotations

import re
from importlib import resources

from .. import errors

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_SHARED_PREFIXES = ("SQLSTATE_", "REASON_")
_LITERAL = re.compile(r"[A-Za-z0-9_]+")  # what a shared value may hold: safe inside '…' as it is


def shared_names() -> dict[str, str]:
    """What `{{NAME}}` may name: every SQLSTATE_ and REASON_ constant of errors.py."""
    names = {k: v for k, v in vars(errors).items() if k.startswith(_SHARED_PREFIXES) and isinstance(v, str)}
    for name, value in names.items():
        if not _LITERAL.fullmatch(value):
            raise ValueError(f"errors.{name} = {value!r} cannot go into SQL as it is")
    return names


def render(text: str, source: str = "<sql>") -> str:
    """The SQL with every `{{NAME}}` replaced by its value; an unknown name is an error."""
    names = shared_names()

    def value(match: re.Match) -> str:
        try:
            return names[match.group(1)]
        except KeyError:
            raise ValueError(
                f"{source}: {{{{{match.group(1)}}}}} is not a SQLSTATE_ or REASON_ constant of graphrun_server.errors"
            ) from None

    return _PLACEHOLDER.sub(value, text)


def function_files() -> list[tuple[str, str]]:
    """(file name, SQL as written) of every function file, in name order."""
    files = [
        (entry.name, entry.read_text()) for entry in resources.files(__name__).iterdir() if entry.name.endswith(".sql")
    ]
    return sorted(files)


def functions() -> list[tuple[str, str]]:
    """(file name, SQL to execute) of every function file, in name order. Each file defines one
    function, whose body names no function from a file applied later unless it is PL/pgSQL
    (which looks names up when it runs, not when it is created)."""
    return [(name, render(text, name)) for name, text in function_files()]
