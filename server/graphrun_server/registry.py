"""The graphs this server serves, loaded from a `langgraph.json`-style config.

`{"graphs": {"agent": "./agent.py:graph"}}` maps a graph id to a file path
(relative to the config file) or a module path, and an attribute that is a
compiled graph, a `StateGraph`, or a factory returning either. The server injects
its own checkpointer, so graphs need not (and should not) bring one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import pathlib
import sys
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import convert_to_messages
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.graph.message import add_messages
from langgraph.pregel import Pregel

from .errors import AssistantNotFound, FieldViolation

log = logging.getLogger(__name__)

DEFAULT_GRAPHS = {"agent": "graphrun_server.example_agent.agent:graph"}


@dataclass
class Assistant:
    """A served graph. Today assistant id == graph id."""

    graph_id: str
    graph: Pregel
    description: str = ""
    nodes: list[str] = field(default_factory=list)

    @property
    def assistant_id(self) -> str:
        return self.graph_id

    def schemas(self) -> dict[str, dict]:
        """Input/output/config JSON schemas, for clients in other languages."""
        out = {}
        for key, getter in (("input", "get_input_jsonschema"), ("output", "get_output_jsonschema"),
                            ("config", "get_context_jsonschema")):
            try:
                out[key] = getattr(self.graph, getter)()
            except Exception as exc:  # a schema is a courtesy; never fail the listing
                log.warning("graph %s: no %s schema (%s)", self.graph_id, key, exc)
                out[key] = {}
        return out

    def message_violations(self, values: Any, path: str) -> list[FieldViolation]:
        """What the graph's `add_messages` channel would refuse in values["messages"] (a role it
        does not know, a message without content, a number): bad input, answered before the
        run is recorded, rather than a run failing at its first step and leaving its thread in
        ERROR. `path` names values in the request (e.g. "spec.input")."""
        if not isinstance(values, dict) or "messages" not in values:
            return []
        if getattr(self.graph.channels.get("messages"), "operator", None) is not add_messages:
            return []  # a channel of the graph's own making: its reducer decides
        given = values["messages"]
        items, name = (given, f"{path}.messages[{{}}]") if isinstance(given, list) else ([given], f"{path}.messages")
        violations = []
        for i, item in enumerate(items):
            if not isinstance(item, (dict, str, list)):  # what JSON can carry that is no message at all
                violations.append(FieldViolation(name.format(i), "must be a message (an object with role and "
                                                 f"content, or a string), not {_json_type(item)}"))
                continue
            try:
                convert_to_messages([item])
            except Exception as exc:  # ValueError, NotImplementedError, a malformed tool call's TypeError...
                reason = str(exc).split("\n")[0] or type(exc).__name__
                violations.append(FieldViolation(name.format(i), f"is not a message: {reason}"))
        return violations

    def as_input(self, values: Any) -> Any:
        """values as the graph takes them as input: LangGraph drops the keys a StateGraph's
        input schema lacks (a Pregel built by hand has no schema: all are kept)."""
        builder = getattr(self.graph, "builder", None)
        schemas = getattr(builder, "schemas", None)
        if not isinstance(values, dict) or not schemas or getattr(builder, "input_schema", None) not in schemas:
            return values
        schema = schemas[builder.input_schema]
        return {k: v for k, v in values.items() if k in schema}


def _json_type(value: Any) -> str:
    return ("null" if value is None else "a boolean" if isinstance(value, bool)
            else "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _load_attr(ref: str, base_dir: pathlib.Path) -> tuple[Any, Any]:
    """Import ref's module and return (attribute, module)."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"graph reference {ref!r} must look like './path/file.py:attr' or 'package.module:attr'")
    if target.endswith(".py") or "/" in target:
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"graph file {path} (from {ref!r}) does not exist")
        # Let the file import its siblings, as `langgraph dev` does.
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = f"graphrun_user_graph_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr), module
    except AttributeError:
        raise AttributeError(f"{target} has no attribute {attr!r} (from {ref!r})") from None


def _compile(obj: Any, checkpointer: BaseCheckpointSaver, ref: str) -> Pregel:
    if isinstance(obj, StateGraph):
        return obj.compile(checkpointer=checkpointer)
    if isinstance(obj, Pregel):
        return obj.copy(update={"checkpointer": checkpointer})
    if callable(obj):
        made = obj() if not inspect.signature(obj).parameters else obj({})
        if inspect.isawaitable(made):
            raise TypeError(f"{ref}: async graph factories are not supported; return the graph directly")
        return _compile(made, checkpointer, ref)
    raise TypeError(f"{ref} is a {type(obj).__name__}, not a compiled graph, StateGraph or factory")


class Registry:
    """Graph id → Assistant, loaded once at start-up."""

    def __init__(self, assistants: dict[str, Assistant]):
        self._assistants = dict(sorted(assistants.items()))

    @classmethod
    def load(cls, config_path: str | None, checkpointer: BaseCheckpointSaver) -> Registry:
        if config_path:
            path = pathlib.Path(config_path).resolve()
            config = json.loads(path.read_text())
            graphs = config.get("graphs")
            if not isinstance(graphs, dict) or not graphs:
                raise ValueError(f"{path}: 'graphs' must be a non-empty object of graph id -> 'file.py:attr'")
            base_dir = path.parent
        else:
            graphs, base_dir = DEFAULT_GRAPHS, pathlib.Path.cwd()
        assistants = {}
        for graph_id, ref in graphs.items():
            description = ""
            if isinstance(ref, dict):  # langgraph.json also allows {"path": ..., "description": ...}
                description = ref.get("description", "")
                ref = ref["path"]
            obj, module = _load_attr(ref, base_dir)
            graph = _compile(obj, checkpointer, ref)
            nodes = [n for n in graph.nodes if not n.startswith("__")]
            description = description or (inspect.getdoc(module) or "").split("\n\n")[0].replace("\n", " ")
            assistants[graph_id] = Assistant(graph_id, graph, description, nodes)
            log.info("serving graph %r from %s (nodes: %s)", graph_id, ref, ", ".join(nodes))
        return cls(assistants)

    def get(self, assistant_id: str) -> Assistant:
        try:
            return self._assistants[assistant_id]
        except KeyError:
            raise AssistantNotFound(assistant_id) from None

    def all(self) -> list[Assistant]:
        return list(self._assistants.values())
