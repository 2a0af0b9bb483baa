"""Generate the blocking client, client/graphrun/_sync.py, from the asyncio one, _async.py.

The client is written once, as `AsyncClient`; `Client` is the same code with `async` and
`await` dropped, grpc's blocking channel for `grpc.aio`'s, and `Iterator` for `AsyncIterator`
(as `unasync` does for httpcore). Both build their requests and read their responses with
the same functions (`_convert.py`), so the two cannot drift apart.

    python scripts/gen_sync_client.py          # after editing _async.py
    python scripts/gen_sync_client.py --check  # fail if _sync.py is stale (tests/test_client_parity.py)

The rewrite is textual and line by line, so _async.py keeps to what it can translate: no
`(await x).attr` (write `response = await x` first), no asyncio-only calls. Whatever it leaves
behind (`async`, `await`, `aio`, `asyncio`) fails the generation, naming the line.
"""

from __future__ import annotations

import argparse
import ast
import io
import pathlib
import re
import sys
import tokenize

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASYNC = ROOT / "client" / "graphrun" / "_async.py"
SYNC = ROOT / "client" / "graphrun" / "_sync.py"

HEADER = "# Generated from _async.py by scripts/gen_sync_client.py: edit _async.py instead, then run the script.\n"

SYNC_DOCSTRING = '''"""`Client`: graphrun over a blocking grpc channel, for scripts and threads.

Generated from `_async.py` (`AsyncClient`), the client's one implementation; see
scripts/gen_sync_client.py. Built on grpc's own blocking channel rather than by driving
`AsyncClient` on a private event loop: no hidden loop or thread, and it works inside code
that already runs an event loop (from a worker thread).
"""'''

# Sentences of _async.py's docstrings that hold only for asyncio, and what the blocking client
# says instead. Each must occur (a rewritten docstring must be rewritten here too).
PHRASES = {
    "A graphrun client for asyncio code.": "A blocking graphrun client with the methods of `AsyncClient`.",
}

# Applied in order to every line (code, comments and docstrings alike).
RULES = [
    (re.compile(r"\basync (def|for|with) "), r"\1 "),
    (re.compile(r"\bawait "), ""),
    (re.compile(r"\bAsyncIterator\b"), "Iterator"),
    (re.compile(r"\bAsyncIterable\b"), "Iterable"),
    (re.compile(r"\bAsyncClient\b"), "Client"),
    (re.compile(r"\b__aenter__\b"), "__enter__"),
    (re.compile(r"\b__aexit__\b"), "__exit__"),
    (re.compile(r"\bgrpc\.aio\."), "grpc."),
    (re.compile(r"\basyncio\.sleep\b"), "time.sleep"),
    (re.compile(r"^import asyncio$"), "import time"),
]
LEFTOVER = re.compile(r"\b(async|await|aio|asyncio|anext|aclose)\b")
# An async generator cannot `yield from`; the sync one should.
YIELD_EACH = re.compile(r"^( *)for (\w+) in (.+):\n\1    yield \2\n", re.M)
FROM_IMPORT = re.compile(r"^from (\S+) import ([\w, ]+)$")


def _rewrite(text: str) -> str:
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def _aligned_lines(source: str) -> dict[int, tuple[int, int]]:
    """Continuation lines aligned with an opening bracket (`def f(a,\\n      b)`): line -> the
    bracket's (line, column). Removing `async ` moves the bracket, so they must move with it."""
    aligned: dict[int, tuple[int, int]] = {}
    stack: list[tuple[int, int, bool]] = []  # open brackets: line, column, followed on its line
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    last_line = 0
    for index, token in enumerate(tokens):
        (row, col), kind = token.start, token.type
        new_line = row != last_line and kind not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
        if new_line and stack and stack[-1][2] and col == stack[-1][1] + 1:
            aligned[row] = stack[-1][:2]
        if kind not in (tokenize.NL, tokenize.NEWLINE):
            last_line = token.end[0]
        if kind == tokenize.OP and token.string in "([{":
            following = next(t for t in tokens[index + 1 :] if t.type != tokenize.COMMENT)
            stack.append((row, col, following.type not in (tokenize.NL, tokenize.NEWLINE)))
        elif kind == tokenize.OP and token.string in ")]}":
            stack.pop()
    return aligned


def _sorted_import(line: str) -> str:
    """`from x import B, A` with its names in isort's order (constants, classes, the rest)."""
    match = FROM_IMPORT.match(line)
    if not match:
        return line
    names = [n.strip() for n in match[2].split(",")]
    rank = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))
    return f"from {match[1]} import {', '.join(rank)}"


def generate(source: str, phrases: dict[str, str] | None = None) -> str:
    """_sync.py's text for _async.py's `source`."""
    protected: list[str] = []
    for phrase, replacement in (PHRASES if phrases is None else phrases).items():
        if phrase not in source:
            raise SystemExit(f"gen_sync_client: {phrase!r} no longer occurs in _async.py; update PHRASES")
        source = source.replace(phrase, f"@@{len(protected)}@@")
        protected.append(replacement)

    docstring = ast.parse(source).body[0]
    if not (isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant) and docstring.lineno == 1):
        raise SystemExit("gen_sync_client: _async.py must start with its docstring")
    body_start = docstring.end_lineno or 1  # the module docstring is replaced whole, by SYNC_DOCSTRING

    old_lines = source.splitlines()
    aligned = _aligned_lines(source)
    new_lines: list[str] = []
    shift: dict[int, int] = {}  # line -> how far its start moved right (negative: left)
    for row, line in enumerate(old_lines[body_start:], start=body_start + 1):
        new = _rewrite(line)
        if row in aligned:
            bracket_row, bracket_col = aligned[row]
            column = len(_rewrite(old_lines[bracket_row - 1][:bracket_col])) + shift.get(bracket_row, 0) + 1
            new = " " * column + _rewrite(line.lstrip())
            shift[row] = column - (len(line) - len(line.lstrip()))
        if new != line:
            new = _sorted_import(new)
        leftover = LEFTOVER.search(new)
        if leftover:
            raise SystemExit(
                f"gen_sync_client: _async.py:{row} keeps {leftover[0]!r} after the rewrite: {line.strip()}"
            )
        new_lines.append(new)

    text = YIELD_EACH.sub(r"\1yield from \3\n", "\n".join(new_lines) + "\n")
    for number, replacement in enumerate(protected):
        text = text.replace(f"@@{number}@@", replacement)
    return HEADER + SYNC_DOCSTRING + "\n" + text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed _sync.py is stale")
    opts = parser.parse_args()
    fresh = generate(ASYNC.read_text())
    if opts.check:
        if SYNC.read_text() != fresh:
            print(f"{SYNC.relative_to(ROOT)} is stale: run python scripts/gen_sync_client.py", file=sys.stderr)
            return 1
        return 0
    SYNC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
