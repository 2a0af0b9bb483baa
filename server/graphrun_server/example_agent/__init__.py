"""Bundled example agent: answers building-maintenance questions from a small archive.

`graph` is ready to serve (no checkpointer; the server injects one);
`make_graph(model)` builds a fresh graph, optionally with a custom chat model.
"""

from .agent import graph, make_graph

__all__ = ["graph", "make_graph"]
