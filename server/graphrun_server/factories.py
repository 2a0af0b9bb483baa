"""Where a served graph comes from: a graph object, or a factory called for each run.

`langgraph.json` may point at a compiled graph, a `StateGraph`, or a factory. As in
LangGraph Server, a factory may take nothing, a `RunnableConfig`, a `ServerRuntime`
(`langgraph_sdk.runtime`), or both (by annotation); it may be async, and may return
an (async) context manager yielding the graph, which stays open for the run. A factory
that takes arguments is called for every run with that run's config (its `configurable`,
tags, metadata) and context; one that takes none is called once. The graph it returns
runs with graphrun's checkpointer and Store whatever it brought.

For schemas, node names and state reads the registry keeps one graph built by a call
with an empty config (access context `assistants.read`); a factory must return graphs
of the same shape (nodes, channels) whatever the config, as LangGraph Server requires.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph_sdk.runtime import ServerRuntime, _ExecutionRuntime, _ReadRuntime


def _is_runtime(annotation: Any) -> bool:
    """Is a factory parameter annotated as LangGraph Server's ServerRuntime (or a variant of it)?"""
    if annotation is ServerRuntime:
        return True
    if isinstance(annotation, type):
        return issubclass(annotation, (_ExecutionRuntime, _ReadRuntime))
    origin = typing.get_origin(annotation)
    if origin is ServerRuntime:
        return True
    args = typing.get_args(annotation)
    return bool(origin is not None and args and _is_runtime(args[0]))


def _arguments(factory: Callable) -> Callable[[dict, Any], dict[str, Any]]:
    """How to call a factory: (config, runtime) -> its keyword arguments."""
    params = list(inspect.signature(factory).parameters.values())
    try:
        hints = typing.get_type_hints(factory, localns={"ServerRuntime": ServerRuntime})
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to what the signature says
        hints = {}
    is_runtime = [_is_runtime(hints.get(p.name, p.annotation)) for p in params]
    if not params:
        return lambda config, runtime: {}
    if len(params) == 1:
        name = params[0].name
        return (lambda config, runtime: {name: runtime}) if is_runtime[0] else (lambda config, runtime: {name: config})
    if len(params) == 2 and is_runtime.count(True) == 1:
        runtime_name = params[is_runtime.index(True)].name
        config_name = params[is_runtime.index(False)].name
        return lambda config, runtime: {runtime_name: runtime, config_name: config}
    raise TypeError(
        f"a graph factory takes nothing, a RunnableConfig, a ServerRuntime, or both; "
        f"this one takes ({', '.join(p.name for p in params)})"
    )


class GraphSource:
    """Builds the graph a run executes (see the module docstring)."""

    def __init__(self, obj: Any, ref: str, checkpointer: BaseCheckpointSaver, store: BaseStore | None):
        self._ref, self._checkpointer, self._store = ref, checkpointer, store
        self._factory: Callable | None = None
        self._kwargs: Callable[[dict, Any], dict[str, Any]] | None = None
        self._graph: Pregel | None = None
        if isinstance(obj, (Pregel, StateGraph)):
            self._graph = self._bind(obj)
        elif callable(obj):
            self._factory, self._kwargs = obj, _arguments(obj)
        else:
            raise TypeError(f"{type(obj).__name__} is not a compiled graph, a StateGraph or a graph factory")
        self.per_run = self._factory is not None and bool(inspect.signature(obj).parameters)

    def _bind(self, graph: Any) -> Pregel:
        """The graph with graphrun's checkpointer and Store (replacing any it brought)."""
        if isinstance(graph, StateGraph):
            return graph.compile(checkpointer=self._checkpointer, store=self._store)
        if isinstance(graph, Pregel):
            return graph.copy(update={"checkpointer": self._checkpointer, "store": self._store})
        raise TypeError(f"the factory returned a {type(graph).__name__}, not a compiled graph or a StateGraph")

    async def template(self) -> Pregel:
        """The graph for schemas and state reads (a factory's is built from an empty config, once)."""
        if self._graph is None:
            runtime = _ReadRuntime(access_context="assistants.read", store=self._store)
            async with self._call({"configurable": {}}, runtime) as graph:
                self._graph = graph
        return self._graph

    @contextlib.asynccontextmanager
    async def for_run(self, config: dict[str, Any], context: Any) -> AsyncIterator[Pregel]:
        """The graph one run executes (open for the whole run, when the factory is a context manager)."""
        if not self.per_run:
            yield await self.template()
            return
        runtime = _ExecutionRuntime(access_context="threads.create_run", store=self._store, context=context)
        async with self._call(config, runtime) as graph:
            yield graph

    @contextlib.asynccontextmanager
    async def _call(self, config: dict[str, Any], runtime: Any) -> AsyncIterator[Pregel]:
        made = self._factory(**self._kwargs(config, runtime))
        if hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
            async with made as graph:
                yield self._bind(graph)
        elif hasattr(made, "__enter__") and hasattr(made, "__exit__"):
            with made as graph:
                yield self._bind(graph)
        else:
            yield self._bind(await made if inspect.isawaitable(made) else made)
