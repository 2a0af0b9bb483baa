"""A failed task's error as the API shows it: the same text in task events (which get the
exception) and in states read from checkpoints (which get only the exception's repr, the text
LangGraph's serializer stores for it)."""

from __future__ import annotations

import ast
import builtins
import re
from typing import Any


def task_error_text(error: Any) -> str:
    """The exception's message (its type's name when it has none), from the exception or from
    its stored repr (`"ValueError('boom')"` -> `boom`). A live exception is read through its repr
    too, so that both say the same; one whose repr is not of that form shows its `str()` live,
    and the stored text from a checkpoint."""
    if error is None or error == "":
        return ""
    if isinstance(error, BaseException):
        text = _message_in_repr(repr(error))
        text = str(error) if text is None else text
        return text or type(error).__name__
    text = str(error)
    message = _message_in_repr(text)
    return text if message is None else message or text.partition("(")[0]


_EXCEPTION_REPR = re.compile(r"([A-Za-z_][\w.]*)\((.*)\)", re.S)


def _message_in_repr(text: str) -> str | None:
    """What `str(exc)` says of the exception `text` is the repr of (`ValueError('boom')` ->
    `boom`, `KeyError('k')` -> `'k'`); None when text is not of that form."""
    match = _EXCEPTION_REPR.fullmatch(text)
    if match is None:
        return None
    name, inner = match.groups()
    try:
        args = ast.literal_eval(f"({inner},)") if inner.strip() else ()
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return inner  # arguments that are no literals: their text
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        try:
            return str(builtin(*args))  # KeyError's str differs from other exceptions'
        except Exception:  # noqa: BLE001 - a constructor that refuses these arguments: the generic text below
            pass
    return "" if not args else str(args[0]) if len(args) == 1 else str(args)
