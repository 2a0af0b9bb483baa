"""This module provides example tools for web scraping and search functionality.

The template's search calls Tavily; this copy answers from the run's context and the
environment instead, so a test can see both reach the tool.
"""

import os
from typing import Any, Callable, List, Optional

from langgraph.runtime import get_runtime

from react_agent.context import Context


async def search(query: str) -> Optional[dict[str, Any]]:
    """Search for general web results."""
    runtime = get_runtime(Context)
    return {"query": query, "max_results": runtime.context.max_search_results,
            "source": os.environ.get("SEARCH_SOURCE")}


TOOLS: List[Callable[..., Any]] = [search]
