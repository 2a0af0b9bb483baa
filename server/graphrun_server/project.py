"""A LangGraph project as `langgraph.json` describes it, read the way LangGraph's server reads it.

Loading a project prepares the process before any graph is imported:
- `env` (a `.env` file relative to the config, or an object) is applied. A variable the
  process environment already sets keeps its value: the operator's environment wins
  over the project's defaults, as with python-dotenv and docker compose's `env_file`.
- `dependencies`: a local path (`"."`, `"./src/pkg"`, `"../shared"`) becomes importable
  as LangGraph's build makes it (which installs it): a folder with a `pyproject.toml` or
  `setup.py` provides its packages from where its build finds them (a `src/` layout
  included); a plain folder goes on the import path. Any other entry names a package that
  must already be installed: nothing is downloaded here.
- `graphs`, `store` and `checkpointer` are parsed into what the registry and the Store
  need. Keys that only mean something to LangGraph's image build or HTTP server are
  logged once as ignored.

Every problem is a `ProjectError`: one line naming the key and what to do.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import pathlib
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

log = logging.getLogger(__name__)

DEFAULT_GRAPHS = {"agent": "graphrun_server.example_agent.agent:graph"}

# Keys of langgraph.json that configure LangGraph's image build, HTTP server or UI: nothing
# graphrun does depends on them. (`auth` and `http` are LangGraph Server's HTTP layer; graphrun's
# authentication is configured by GRAPHRUN_* settings.)
IGNORED_KEYS = (
    "python_version",
    "node_version",
    "pip_config_file",
    "pip_installer",
    "dockerfile_lines",
    "base_image",
    "image_distro",
    "http",
    "ui",
    "ui_config",
    "auth",
    "encryption",
    "webhooks",
    "keep_pkg_tools",
    "api_version",
)
KNOWN_KEYS = ("dependencies", "graphs", "env", "store", "checkpointer", "$schema")


class ProjectError(Exception):
    """The project cannot be served; the message is one line saying why and what to do."""


@dataclass
class GraphSpec:
    """One entry of `graphs`: where the graph is and what it is for."""

    graph_id: str
    ref: str  # "./path/file.py:attr" or "package.module:attr"
    description: str = ""


@dataclass(frozen=True)
class ThreadTtl:
    """`checkpointer.ttl` as LangGraph reads it: threads idle for `minutes` get `strategy`."""

    minutes: float | None = None  # `default_ttl`; None: threads live until deleted unless their own TTL says
    strategy: str = "delete"  # or "keep_latest"
    sweep_minutes: float = 5.0  # `sweep_interval_minutes`
    sweep_limit: int = 1000  # threads handled per sweep


@dataclass
class Project:
    """What a `langgraph.json` says graphrun should serve."""

    graphs: list[GraphSpec]
    base_dir: pathlib.Path
    path: pathlib.Path | None = None  # None: the built-in example agent
    store: dict[str, Any] = field(default_factory=dict)  # the `store` object (index, ttl)
    thread_ttl: ThreadTtl | None = None  # `checkpointer.ttl`: the threads' default time-to-live

    def relative(self, ref: str) -> pathlib.Path:
        """A path from the config, resolved against the config's folder."""
        return (self.base_dir / ref).resolve()


def load_project(config_path: str | None) -> Project:
    """Read the config, apply its env and dependencies, and return what it serves.
    Without a config: the example agent."""
    if not config_path:
        return Project([GraphSpec(k, v) for k, v in DEFAULT_GRAPHS.items()], pathlib.Path.cwd())
    path = pathlib.Path(config_path).expanduser().resolve()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"config {path} does not exist (--config / GRAPHRUN_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"config {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProjectError(f"config {path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ProjectError(f"config {path} must be a JSON object")
    project = Project(_graphs(config, path), path.parent, path)
    for key in config:
        if key in IGNORED_KEYS:
            log.info(
                "%s: ignoring %r (it configures LangGraph's own build or HTTP server, not graphrun)", path.name, key
            )
        elif key not in KNOWN_KEYS:
            log.warning("%s: ignoring unknown key %r", path.name, key)
    _apply_env(config.get("env"), project)
    _apply_dependencies(config.get("dependencies", []), project)
    store = config.get("store") or {}
    if not isinstance(store, dict):
        raise ProjectError(f"{path.name}: 'store' must be an object with 'index' and/or 'ttl'")
    project.store = store
    project.thread_ttl = _thread_ttl(config.get("checkpointer"), path)
    return project


def _thread_ttl(checkpointer: Any, path: pathlib.Path) -> ThreadTtl | None:
    """`checkpointer.ttl`: {"strategy", "default_ttl", "sweep_interval_minutes", "sweep_limit"}."""
    if checkpointer is None:
        return None
    if not isinstance(checkpointer, dict):
        raise ProjectError(f"{path.name}: 'checkpointer' must be an object")
    for key in checkpointer:
        if key != "ttl":
            log.info("%s: ignoring checkpointer.%s (graphrun's checkpointer is its own)", path.name, key)
    ttl = checkpointer.get("ttl")
    if ttl is None:
        return None
    if not isinstance(ttl, dict):
        raise ProjectError(f"{path.name}: 'checkpointer.ttl' must be an object")
    strategy = ttl.get("strategy", "delete")
    if strategy not in ("delete", "keep_latest"):
        raise ProjectError(
            f"{path.name}: checkpointer.ttl.strategy must be 'delete' or 'keep_latest', not {strategy!r}"
        )
    numbers = {}
    for key, default in (("default_ttl", None), ("sweep_interval_minutes", 5.0), ("sweep_limit", 1000)):
        value = ttl.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ProjectError(f"{path.name}: checkpointer.ttl.{key} must be a positive number, not {value!r}")
        numbers[key] = value
    return ThreadTtl(
        numbers["default_ttl"], strategy, float(numbers["sweep_interval_minutes"]), int(numbers["sweep_limit"])
    )


def _graphs(config: dict, path: pathlib.Path) -> list[GraphSpec]:
    graphs = config.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ProjectError(f"{path.name}: 'graphs' must be a non-empty object of graph id -> './file.py:attr'")
    specs = []
    for graph_id, value in graphs.items():
        description = ""
        if isinstance(value, dict):  # {"path": ..., "description": ...}
            description = value.get("description") or ""
            value = value.get("path")
        if not isinstance(value, str) or ":" not in value or value.endswith(":") or value.startswith(":"):
            raise ProjectError(
                f"{path.name}: graph {graph_id!r} must be './path/file.py:attr' or "
                f"'package.module:attr' (or an object with 'path'), not {value!r}"
            )
        specs.append(GraphSpec(graph_id, value, str(description)))
    return specs


def _apply_env(env: Any, project: Project) -> None:
    """Set the project's variables that the process environment does not set already."""
    if env is None:
        return
    if isinstance(env, str):
        from dotenv import dotenv_values

        env_file = project.relative(env)
        if not env_file.is_file():
            raise ProjectError(f"{project.path.name}: env file {env_file} (from 'env') does not exist")
        values = dotenv_values(env_file)
    elif isinstance(env, dict):
        values = env
    else:
        raise ProjectError(f"{project.path.name}: 'env' must be a .env file path or an object of variables")
    for name, value in values.items():
        if value is not None and name not in os.environ:
            os.environ[name] = str(value)


def _apply_dependencies(dependencies: Any, project: Project) -> None:
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(f"{project.path.name}: 'dependencies' must be a list of paths and package names")
    missing = []
    for entry in dependencies:
        if entry.startswith((".", "/")):
            folder = project.relative(entry)
            if not folder.is_dir():
                raise ProjectError(f"{project.path.name}: dependency {entry!r} is not a folder ({folder})")
            for root in import_roots(folder):
                if str(root) not in sys.path:
                    sys.path.insert(0, str(root))
            continue
        try:
            requirement = Requirement(entry)
        except InvalidRequirement:
            raise ProjectError(
                f"{project.path.name}: dependency {entry!r} is neither a local path ('./folder') nor a package name"
            ) from None
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(entry)
    if missing:
        quoted = " ".join(f"'{m}'" if any(c in m for c in "<>=!;[ ") else m for m in missing)
        raise ProjectError(
            f"{project.path.name}: dependencies not installed: {', '.join(missing)}; "
            f"install them with: pip install {quoted}"
        )


def import_roots(folder: pathlib.Path) -> list[pathlib.Path]:
    """Where a local dependency's modules are imported from, as its build would package them.

    A project declares where its packages live (setuptools' `package-dir` or
    `packages.find.where`, hatch's `packages`, poetry's `from`); without a declaration the
    build tools look in `src/` when it exists, else in the folder itself. The folder itself
    is always importable too (a `langgraph dev` habit: modules beside langgraph.json).
    """
    roots = [folder]
    pyproject = folder / "pyproject.toml"
    declared: list[str] = []
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ProjectError(f"{pyproject} cannot be read: {exc}") from None
        tool = data.get("tool", {})
        setuptools = tool.get("setuptools", {})
        package_dir = setuptools.get("package-dir", {})
        for name, where in package_dir.items() if isinstance(package_dir, dict) else ():
            if name == "":  # every package under `where`
                declared.append(where)
            elif "." not in name and pathlib.PurePosixPath(where).name == name:  # "pkg" = "src/pkg"
                declared.append(str(pathlib.PurePosixPath(where).parent))
        find = (setuptools.get("packages") or {}) if isinstance(setuptools.get("packages"), dict) else {}
        declared += list(find.get("find", {}).get("where", []))
        wheel = tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        declared += [str(pathlib.PurePosixPath(p).parent) for p in wheel.get("packages", [])]
        declared += [
            p["from"] for p in tool.get("poetry", {}).get("packages", []) if isinstance(p, dict) and "from" in p
        ]
    if not declared and (folder / "src").is_dir():
        declared.append("src")
    for rel in declared:
        root = (folder / rel).resolve()
        if root.is_dir() and root not in roots:
            roots.insert(0, root)
    return roots


def import_reference(ref: str, base_dir: pathlib.Path) -> tuple[Any, Any]:
    """(attribute, module) for a `./path/file.py:attr` (relative to base_dir) or `package.module:attr`
    reference, as langgraph.json writes graphs and embedding functions. A file may import its
    siblings, as under `langgraph dev`. Raises the import's own errors, FileNotFoundError, or
    AttributeError naming the module."""
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or "/" in target:
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = f"graphrun_user_module_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    try:
        return getattr(module, attr), module
    except AttributeError:
        raise AttributeError(f"{target} has no attribute {attr!r}") from None
