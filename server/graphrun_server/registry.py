"""The graphs this server serves, loaded from a `langgraph.json` project (see project.py).

`{"graphs": {"agent": "./agent.py:graph"}}` maps a graph id to a file path
(relative to the config file) or a module path, and an attribute that is a
compiled graph, a `StateGraph`, or a factory (see factories.py). The server injects
its own checkpointer and Store, so graphs need not (and should not) bring them.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import Any

import pydantic
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from . import context as run_context
from .errors import AssistantNotFound, FieldViolation
from .factories import GraphSource
from .incoming import message_channels, message_from_json, messages_from_json
from .project import Project, import_reference

log = logging.getLogger(__name__)


@dataclass
class Assistant:
    """A served graph (its default assistant's id is the graph id; assistants.py has the others)."""

    graph_id: str
    graph: Pregel  # for schemas and state reads; a run executes `source.for_run(...)`'s
    description: str = ""
    nodes: list[str] = field(default_factory=list)
    source: GraphSource | None = None

    @property
    def assistant_id(self) -> str:
        return self.graph_id

    def schemas(self) -> dict[str, dict]:
        """Input/output/config JSON schemas, for clients in other languages."""
        out = {}
        # `config` is what goes in config.configurable: the context's fields, for clients written
        # before context existed (LangGraph maps a graph's config_schema to its context_schema).
        for key, getter in (
            ("input", "get_input_jsonschema"),
            ("output", "get_output_jsonschema"),
            ("config", "get_context_jsonschema"),
            ("context", "get_context_jsonschema"),
        ):
            try:
                out[key] = getattr(self.graph, getter)()
            except Exception as exc:  # noqa: BLE001 - a schema is a courtesy; never fail the listing
                log.warning("graph %s: no %s schema (%s)", self.graph_id, key, exc)
                out[key] = {}
        return out

    @property
    def context_schema(self) -> type | None:
        return getattr(self.graph, "context_schema", None)

    def run_context(self, context: dict[str, Any] | None, configurable: dict[str, Any]) -> dict[str, Any] | None:
        """The context values a run passes to the graph (see context.py)."""
        return run_context.select(self.context_schema, context, configurable)

    def build_context(self, values: dict[str, Any] | None) -> Any:
        """The object the graph reads as `runtime.context`, from `run_context`'s values."""
        return run_context.build(self.context_schema, values)

    def context_violations(
        self,
        context: dict[str, Any] | None,
        configurable: dict[str, Any],
        path: str = "spec.context",
        *,
        partial: bool = False,
    ) -> list[FieldViolation]:
        """What the graph's context schema refuses in a run's context (`partial`: an assistant's,
        which may leave required fields to its runs)."""
        return run_context.violations(
            self.context_schema, self.run_context(context, configurable), path, partial=partial
        )

    def message_violations(self, values: Any, path: str) -> list[FieldViolation]:
        """What the graph's `add_messages` channels would refuse in values (a role it does not
        know, a message without content, a number): bad input, answered before the run is
        recorded, rather than a run failing at its first step and leaving its thread in ERROR.
        `path` names values in the request (e.g. "spec.input")."""
        if not isinstance(values, dict):
            return []
        violations = []
        for key in message_channels(self.graph):  # other channels: their reducers decide
            if key not in values:
                continue
            given = values[key]
            items, name = (given, f"{path}.{key}[{{}}]") if isinstance(given, list) else ([given], f"{path}.{key}")
            for i, item in enumerate(items):
                if not isinstance(item, (dict, str, list)):  # what JSON can carry that is no message at all
                    violations.append(
                        FieldViolation(
                            name.format(i),
                            f"must be a message (an object with role and content, or a string), not {_json_type(item)}",
                        )
                    )
                    continue
                try:
                    message_from_json(item)
                except Exception as exc:  # noqa: BLE001 - ValueError, ValidationError, a malformed tool call's TypeError...
                    violations.append(FieldViolation(name.format(i), f"is not a message: {_reason(exc)}"))
        return violations

    def messages_from_json(self, values: Any) -> Any:
        """values with the messages clients sent as JSON built as LangChain messages (incoming.py)."""
        return messages_from_json(self.graph, values)

    def as_input(self, values: Any) -> Any:
        """values as the graph takes them as input: LangGraph drops the keys a StateGraph's
        input schema lacks (a Pregel built by hand has no schema: all are kept)."""
        builder = getattr(self.graph, "builder", None)
        schemas = getattr(builder, "schemas", None)
        if not isinstance(values, dict) or not schemas or getattr(builder, "input_schema", None) not in schemas:
            return values
        schema = schemas[builder.input_schema]
        return {k: v for k, v in values.items() if k in schema}


def _reason(exc: Exception) -> str:
    """One line saying why a message was refused."""
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:3])
    return str(exc).split("\n")[0] or type(exc).__name__


def _json_type(value: Any) -> str:
    return (
        "null"
        if value is None
        else "a boolean"
        if isinstance(value, bool)
        else "a number"
        if isinstance(value, (int, float))
        else type(value).__name__
    )


class GraphLoadError(Exception):
    """A graph of the config cannot be loaded; one line naming the graph, its file and the error."""


def _first_paragraph(doc: str | None) -> str:
    return (doc or "").split("\n\n")[0].replace("\n", " ")


def _own_description(obj) -> str:
    """A graph's own docstring: a factory's, or an `@entrypoint` function's (a compiled graph's
    `__doc__` is its class's, which says nothing about this graph)."""
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return _first_paragraph(inspect.getdoc(obj))
    if type(obj) is Pregel and len(obj.nodes) == 1:  # an @entrypoint: one node, its function
        bound = next(iter(obj.nodes.values())).bound
        function = getattr(bound, "afunc", None) or getattr(bound, "func", None)
        return _first_paragraph(inspect.getdoc(function)) if inspect.isfunction(function) else ""
    return ""


class Registry:
    """Graph id → Assistant, loaded once at start-up."""

    def __init__(self, assistants: dict[str, Assistant]):
        self._assistants = dict(sorted(assistants.items()))

    @classmethod
    async def load(cls, project: Project, checkpointer: BaseCheckpointSaver, store: BaseStore | None) -> Registry:
        """Import every graph of the project. A graph that cannot be imported, or whose factory
        fails when called for its schemas, stops the server (GraphLoadError)."""
        assistants = {}
        modules: dict[str, int] = {}  # module -> graphs of the project it holds
        for spec in project.graphs:
            modules[spec.ref.rpartition(":")[0]] = modules.get(spec.ref.rpartition(":")[0], 0) + 1
        for spec in project.graphs:
            try:
                obj, module = import_reference(spec.ref, project.base_dir)
                source = GraphSource(obj, spec.ref, checkpointer, store)
                graph = await source.template()
            except Exception as exc:
                log.debug("graph %r could not be loaded", spec.graph_id, exc_info=True)
                reason = str(exc).split("\n")[0] or type(exc).__name__
                raise GraphLoadError(
                    f"graph {spec.graph_id!r} ({spec.ref}) could not be loaded: {type(exc).__name__}: {reason}"
                ) from exc
            nodes = [n for n in graph.nodes if not n.startswith("__")]
            description = (
                spec.description
                or _own_description(obj)
                or (_first_paragraph(inspect.getdoc(module)) if modules[spec.ref.rpartition(":")[0]] == 1 else "")
            )
            assistants[spec.graph_id] = Assistant(spec.graph_id, graph, description, nodes, source)
            log.info(
                "serving graph %r from %s (nodes: %s%s)",
                spec.graph_id,
                spec.ref,
                ", ".join(nodes),
                "; built per run by its factory" if source.per_run else "",
            )
        return cls(assistants)

    def get(self, assistant_id: str) -> Assistant:
        try:
            return self._assistants[assistant_id]
        except KeyError:
            raise AssistantNotFound(assistant_id) from None

    def all(self) -> list[Assistant]:
        return list(self._assistants.values())
