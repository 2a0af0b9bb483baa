"""Bundled building-maintenance archive and a tiny deterministic keyword search.

The example agent must work offline and give reproducible results, so instead
of a vector store we score records with plain keyword matching. German compound
words ("Heizungsanlage", "Wasserleitungen") are handled by substring matching in
both directions plus a very light suffix stemmer ("gewartet" ~ "Wartung").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib.resources import files

__all__ = ["Record", "format_date_de", "load_records", "search"]

_GERMAN_MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)

# Words that carry no meaning for retrieval (question words, articles, fillers).
_STOPWORDS = frozenset(
    """
    aber alle als also am an auch auf aus bei bis das dass dem den der des die
    doch dort durch ein eine einem einen einer eines es für gab gibt hat haben
    hatte im in ist ja kann letzte letzten letztes mal mit nach nicht noch nun
    oder schon seit sich sie sind so und uns vom von vor war waren was wann
    warum welche welcher welches wer werden wie wieder wir wird wo wurde wurden
    zu zuletzt zum zur über
    the and was when what which who how did does last
    """.split()
)
_MIN_TERM_LEN = 3
_MIN_STEM_LEN = 4
_SUFFIXES = ("ungen", "ung", "en", "et", "er", "e", "s", "t")

_WORD_RE = re.compile(r"\w+")


@dataclass(frozen=True)
class Record:
    """One archive entry."""

    id: str
    date: date
    title: str
    text: str
    building: str

    @property
    def date_de(self) -> str:
        """Date in German long form, e.g. "15. Januar 2025"."""
        return format_date_de(self.date)


def format_date_de(value: date) -> str:
    """Format a date like "15. Januar 2025" (locale-independent)."""
    return f"{value.day}. {_GERMAN_MONTHS[value.month - 1]} {value.year}"


@lru_cache(maxsize=1)
def load_records() -> tuple[Record, ...]:
    """Load the bundled records via importlib.resources (works from wheels/zips)."""
    raw = files(__package__).joinpath("archive.json").read_text(encoding="utf-8")
    return tuple(
        Record(
            id=item["id"],
            date=date.fromisoformat(item["date"]),
            title=item["title"],
            text=item["text"],
            building=item.get("building", ""),
        )
        for item in json.loads(raw)
    )


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _terms(query: str) -> list[str]:
    """Meaningful, de-duplicated query words in their original order."""
    seen: dict[str, None] = {}
    for word in _words(query):
        if len(word) >= _MIN_TERM_LEN and word not in _STOPWORDS and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)


def _stem(word: str) -> str:
    """Strip one common German suffix and a "ge-" prefix ("gewartet" -> "wart")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM_LEN:
            word = word[: -len(suffix)]
            break
    if word.startswith("ge") and len(word) - 2 >= _MIN_STEM_LEN:
        word = word[2:]
    return word


def _term_score(term: str, haystack: str, words: list[str], weight: float) -> float:
    """Score one query term against one field; the strongest kind of match wins."""
    if term in haystack:  # "heizung" in "heizungsanlage"
        return 2.0 * weight
    if _stem(term) in haystack:  # "gewartet" ~ "wartung"
        return 1.0 * weight
    # Compound query word that contains a record word: "heizungsanlage" ⊃ "heizung".
    if any(len(w) >= 5 and w not in _STOPWORDS and w in term for w in words):
        return 0.5 * weight
    return 0.0


def _score(terms: list[str], record: Record) -> float:
    title = record.title.lower()
    body = f"{record.text} {record.building}".lower()
    title_words, body_words = _words(title), _words(body)
    return sum(
        max(
            _term_score(term, title, title_words, weight=1.5),
            _term_score(term, body, body_words, weight=1.0),
        )
        for term in terms
    )


def search(query: str, limit: int = 3) -> list[Record]:
    """Return up to `limit` records best matching `query`, best first.

    Ties are broken by newest date, then id, so results are fully deterministic.
    Records with no matching term are never returned.
    """
    terms = _terms(query)
    if not terms or limit <= 0:
        return []
    scored = [(score, record) for record in load_records() if (score := _score(terms, record)) > 0]
    scored.sort(key=lambda pair: (-pair[0], -pair[1].date.toordinal(), pair[1].id))
    return [record for _, record in scored[:limit]]
