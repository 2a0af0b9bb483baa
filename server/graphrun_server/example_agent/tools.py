"""LangChain tools exposed to the example agent."""

from __future__ import annotations

from langchain_core.tools import tool

from .archive import search

NO_RESULTS = "Keine Einträge gefunden."


@tool
def search_archives(query: str) -> str:
    """Search the building-maintenance archive (Wartungsarchiv) by keywords.

    Use this for any question about past maintenance, inspections, repairs or
    tests of building equipment, e.g. Heizung, Aufzug, Dachrinnen, Rauchmelder,
    Brandschutz, Wasserleitungen, Elektro-Prüfung (DGUV V3), Lüftungsanlage.
    Pass the user's question or its key nouns (German works best) as `query`.

    Returns up to three matching records, best first, one per line, formatted as
    "[n] Archiv: <title> (<date>) – <text> Ort: <building>", or
    "Keine Einträge gefunden." if nothing matches.
    """
    records = search(query, limit=3)
    if not records:
        return NO_RESULTS
    return "\n".join(
        f"[{n}] Archiv: {r.title} ({r.date_de}) – {r.text} Ort: {r.building}." for n, r in enumerate(records, start=1)
    )


TOOLS = [search_archives]
