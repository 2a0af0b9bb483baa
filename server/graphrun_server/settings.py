"""Every server setting, declared once: its environment variable, its `graphrun serve` option,
its default and what it does.

`Settings.from_env`, the `serve` options and their help, `serve --print-config`, the settings
handed to `--workers`' processes and the README's configuration table all come from `SETTINGS`
(`python -m graphrun_server.settings` prints the table; tests/test_settings.py holds the README
to it). A setting with a `field` lives on `Settings` (`auth.<name>` on its `AuthSettings`); one
without is read where it is used (the example agent's model, OpenTelemetry), and its option sets
the environment variable for that code to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_UNSET = object()


@dataclass(frozen=True)
class Setting:
    env: str
    help: str
    field: str | None = None  # attribute of Settings ("auth.x": of its AuthSettings); None: environment only
    kind: type = str  # str, int, float or bool
    choices: Mapping[str, Any] | None = None  # the words accepted -> the value each means
    default: Any = _UNSET  # environment-only settings: what applies when unset (others: Settings' default)
    secret: bool = False  # never printed
    option: str | None = None  # the `serve` option; None: derived from the variable's name
    bounds: tuple[float, float] | None = None  # numbers: the least and most allowed

    @property
    def flag(self) -> str:
        return self.option or "--" + self.env.removeprefix("GRAPHRUN_").lower().replace("_", "-")

    @property
    def dest(self) -> str:
        return self.field.replace(".", "__") if self.field else self.env.lower()

    def parse(self, raw: str, source: str) -> Any:
        """The value a string means; a string that means none stops the server naming `source`."""
        if self.choices is not None:
            if raw.strip().lower() not in self.choices:
                raise SystemExit(f"{source} must be one of {', '.join(self.choices)}, not {raw!r}")
            return self.choices[raw.strip().lower()]
        if self.kind is bool:
            return raw.strip().lower() in ("1", "true", "yes")
        if self.kind in (int, float):
            noun = "an integer" if self.kind is int else "a number"
            try:
                value = self.kind(raw)
            except ValueError:
                raise SystemExit(f"{source} must be {noun}, not {raw!r}") from None
            if self.bounds and not self.bounds[0] <= value <= self.bounds[1]:
                low, high = (f"{b:g}" for b in self.bounds)
                raise SystemExit(f"{source} must be {noun} from {low} to {high}, not {raw}")
            return value
        return raw

    def write(self, value: Any) -> str:
        """The value as its environment variable spells it (parse(write(v)) == v)."""
        if self.choices is not None:
            return next(word for word, meant in self.choices.items() if meant == value)
        if self.kind is bool:
            return "1" if value else "0"
        return str(value)


SETTINGS: tuple[Setting, ...] = (
    # -- serving
    Setting("GRAPHRUN_HOST", "address to listen on", "host"),
    Setting(
        "GRAPHRUN_PORT",
        "port (0: any free port); a port another process listens on stops the server",
        "port",
        int,
        bounds=(0, 65535),
    ),
    Setting("GRAPHRUN_CONFIG", "a langgraph.json; without it the example agent is served as `agent`", "config"),
    Setting(
        "GRAPHRUN_WORKERS", "server processes sharing the port (needs a fixed port)", "workers", int, bounds=(1, 256)
    ),
    Setting(
        "GRAPHRUN_SHARE_PORT",
        "listen on a port other server processes listen on too (set by --workers for "
        "its processes; for processes you start yourself)",
        "share_port",
        bool,
    ),
    Setting(
        "GRAPHRUN_GRACE_SECONDS",
        "how long shutdown waits for calls in flight",
        "grace_seconds",
        float,
        bounds=(0, 3600),
    ),
    Setting(
        "GRAPHRUN_EVENT_LOOP",
        "`uvloop` (not on Windows) or `asyncio`, the standard loop",
        "event_loop",
        choices={"uvloop": "uvloop", "asyncio": "asyncio"},
    ),
    # -- database
    Setting(
        "GRAPHRUN_DATABASE_URL",
        "PostgreSQL DSN; without it an embedded PostgreSQL is started",
        "database_url",
        secret=True,
    ),
    Setting("GRAPHRUN_DATA_DIR", "data directory of the embedded PostgreSQL", "data_dir"),
    Setting(
        "GRAPHRUN_POOL_SIZE",
        "most pooled database connections (at least 2); the notification listener and "
        "the health check have one each besides",
        "pool_size",
        int,
        bounds=(2, 10_000),
    ),
    Setting(
        "GRAPHRUN_DB_TIMEOUT",
        "seconds a call waits for a database connection, and for each answer from the "
        "database, before it fails UNAVAILABLE (the connection is then closed; see Partitions and failover); "
        "also the notification listener's budget",
        "db_timeout",
        float,
        bounds=(0.1, 600),
    ),
    # -- runs
    Setting(
        "GRAPHRUN_MAX_CONCURRENT_RUNS",
        "most runs executing on this replica at once; beyond it Wait/Stream "
        "get RESOURCE_EXHAUSTED (REPLICA_BUSY) and created runs wait PENDING for any replica",
        "max_concurrent_runs",
        int,
        bounds=(1, 100_000),
    ),
    Setting(
        "GRAPHRUN_MAX_PENDING_RUNS",
        "runs waiting in the database (all replicas) before new ones get RESOURCE_EXHAUSTED",
        "max_pending_runs",
        int,
        bounds=(0, 100_000_000),
    ),
    Setting(
        "GRAPHRUN_LEASE_SECONDS",
        "a run's lease; renewed every third of it; a replica stops a run once two "
        "thirds of it passed, on its own clock, without a renewal that came back; another replica takes the run "
        "over once it lapses",
        "lease_seconds",
        float,
        bounds=(0.5, 3600),
    ),
    Setting(
        "GRAPHRUN_MAX_ATTEMPTS",
        "executions of one run (takeovers included; clean hand-backs not counted) before it ends ERROR",
        "max_attempts",
        int,
        bounds=(1, 100),
    ),
    Setting(
        "GRAPHRUN_MAX_BLOCKING_SECONDS",
        "a run whose node holds the event loop longer ends ERROR (EventLoopBlocked); 0: off",
        "max_blocking_seconds",
        float,
        bounds=(0, 3600),
    ),
    Setting(
        "GRAPHRUN_EVENT_WRITE_INTERVAL",
        "least seconds between two writes of run events (one transaction for every run's new events): "
        "while events keep coming, each write waits this long after the last and takes all that came; "
        "0: write as soon as the last write ends",
        "event_write_interval",
        float,
        bounds=(0, 1),
    ),
    Setting(
        "GRAPHRUN_MESSAGE_CACHE_MB",
        "memory for LangChain messages kept decoded (from checkpoints) and converted (for answers), half "
        "each, in each server process: a turn of a long conversation then decodes and converts only its "
        "new messages; 0: none",
        "message_cache_mb",
        float,
        bounds=(0, 1_000_000),
    ),
    Setting(
        "GRAPHRUN_EVENT_RETENTION_SECONDS",
        "how long a run's events stay after it ends (pruned hourly)",
        "event_retention_seconds",
        float,
        bounds=(0, 365 * 86400),
    ),
    Setting(
        "GRAPHRUN_CRONS",
        "`false`: this replica starts no crons' runs (it still serves CronService; other replicas run them)",
        "crons",
        choices={"true": True, "false": False},
    ),
    Setting(
        "GRAPHRUN_CRON_INTERVAL",
        "the longest the cron scheduler sleeps: it wakes at the next tick it knows of and when this "
        "replica creates or changes a cron, and sees another replica's new cron within this",
        "cron_interval",
        float,
        bounds=(0.05, 3600),
    ),
    # -- security
    Setting("GRAPHRUN_TLS_CERT", "PEM certificate chain: with the key, the server speaks TLS only", "tls_cert"),
    Setting("GRAPHRUN_TLS_KEY", "PEM private key of the certificate", "tls_key"),
    Setting(
        "GRAPHRUN_TLS_CLIENT_CA", "mutual TLS: accept only clients with a certificate this CA signed", "tls_client_ca"
    ),
    Setting("GRAPHRUN_JWT_SECRET", "require bearer JWTs signed with this HS256 secret", "auth.jwt_secret", secret=True),
    Setting(
        "GRAPHRUN_JWT_PUBLIC_KEY_FILE",
        "… or RS256/ES256 JWTs checked with this PEM public key",
        "auth.jwt_public_key_file",
    ),
    Setting("GRAPHRUN_JWKS_FILE", "… or with the keys of this JWKS file", "auth.jwks_file"),
    Setting("GRAPHRUN_JWT_AUDIENCE", "required `aud` of JWTs (`exp` and `sub` are always required)", "auth.audience"),
    Setting("GRAPHRUN_JWT_ISSUER", "required `iss` of JWTs", "auth.issuer"),
    Setting(
        "GRAPHRUN_API_KEYS_FILE",
        'static API keys: a JSON object {"key": "caller name"} (or {"key": {"name": …, "scopes": ["graphrun:read"]}})',
        "auth.api_keys_file",
    ),
    Setting(
        "GRAPHRUN_AUTH_MTLS",
        "a call without a token is the service its verified client certificate names "
        "(the SPIFFE id of its URI SAN, else its subject CN); needs --tls-client-ca",
        "auth.mtls",
        bool,
    ),
    Setting(
        "GRAPHRUN_AUTH_HEALTH",
        "`required`: health and reflection need a token too",
        "auth.open_health",
        choices={"open": True, "required": False},
    ),
    Setting(
        "GRAPHRUN_ALLOW_UNAUTHENTICATED",
        "serve without authentication on a non-loopback address (refused otherwise)",
        "allow_unauthenticated",
        bool,
    ),
    Setting(
        "GRAPHRUN_WEBHOOK_ALLOWED_HOSTS",
        "hosts runs may name in `webhook`, comma-separated (`hooks.example.com`, "
        "`*.example.com`, `*` for any public host); a private or loopback address only when listed by name or "
        "address; unset: webhooks are refused",
        "webhook_allowed_hosts",
    ),
    Setting(
        "GRAPHRUN_WEBHOOK_SECRET",
        "the key of webhooks' HMAC-SHA256 signature (`graphrun-signature`); needed with GRAPHRUN_WEBHOOK_ALLOWED_HOSTS",
        "webhook_secret",
        secret=True,
    ),
    # -- observability
    Setting(
        "GRAPHRUN_LOG_LEVEL",
        "log level",
        "log_level",
        choices={w.lower(): w for w in ("DEBUG", "INFO", "WARNING", "ERROR")},
    ),
    Setting(
        "GRAPHRUN_LOG_FORMAT",
        "`json` for one JSON object a line; lines about a run carry run_id and thread_id either way",
        "log_format",
        choices={"text": "text", "json": "json"},
    ),
    Setting(
        "GRAPHRUN_METRICS_PORT",
        "serve Prometheus metrics on this port (/metrics; 0: any free port); unset: off",
        "metrics_port",
        int,
        bounds=(0, 65535),
    ),
    Setting("GRAPHRUN_METRICS_HOST", "address of the metrics endpoint", "metrics_host"),
    Setting(
        "OTEL_TRACES_EXPORTER",
        "`console` or `otlp` (with opentelemetry-exporter-otlp installed) turns on "
        "traces: a span per call, per run attempt, per node",
        default="none",
        option="--traces-exporter",
    ),
    # -- the example agent
    Setting("GRAPHRUN_CHAT_MODEL", "the example agent's chat model (`provider:model`); unset: the demo model"),
    Setting("GRAPHRUN_DEMO_TOKEN_DELAY_MS", "delay between the demo model's tokens", default="0"),
)


def default_of(setting: Setting) -> Any:
    if setting.field is None:
        return None if setting.default is _UNSET else setting.default
    from .app import Settings  # the dataclass holds the defaults

    owner, _, name = setting.field.rpartition(".")
    defaults = Settings()
    return getattr(getattr(defaults, owner) if owner else defaults, name)


def _shown_default(setting: Setting) -> str:
    value = default_of(setting)
    if value is None or value is False or value == "":
        return "—"  # unset, or off
    text = setting.write(value)
    return text.removesuffix(".0") if isinstance(value, float) else text


# -- reading ---------------------------------------------------------------------------------


def values_from(env: Mapping[str, str], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields of Settings (`auth.x` keys for AuthSettings) from the environment, with the
    options given on the command line (by `dest`) winning."""
    given = given or {}
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.field is None:
            continue
        if given.get(setting.dest) is not None:
            out[setting.field] = given[setting.dest]
        elif env.get(setting.env, "") != "":
            out[setting.field] = setting.parse(env[setting.env], setting.env)
    return out


def apply_environment_only(given: Mapping[str, Any]) -> None:
    """Options of settings read where they are used: set their variables for that code."""
    for setting in SETTINGS:
        if setting.field is None and given.get(setting.dest) is not None:
            os.environ[setting.env] = str(given[setting.dest])


def to_env(settings: Any) -> dict[str, str]:
    """The settings as the variables that mean them (for `--workers`' processes)."""
    out = {}
    for setting in SETTINGS:
        if setting.field is None:
            continue
        owner, _, name = setting.field.rpartition(".")
        value = getattr(getattr(settings, owner) if owner else settings, name)
        if value is not None and not (setting.kind is bool and not value):
            out[setting.env] = setting.write(value)
    return out


# -- the command line ----------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting; absent options leave the environment's value (or the default)."""
    for setting in SETTINGS:
        help_text = f"{setting.help} (env {setting.env}, default {_shown_default(setting)})".replace("%", "%%")
        if setting.kind is bool:
            parser.add_argument(setting.flag, dest=setting.dest, action="store_true", default=None, help=help_text)
            continue
        parser.add_argument(
            setting.flag, dest=setting.dest, metavar=_metavar(setting), help=help_text, type=_option_type(setting)
        )
    parser.add_argument(
        "--print-config", action="store_true", help="print the settings in effect (secrets masked) and exit"
    )


def _metavar(setting: Setting) -> str:
    if setting.choices is not None:
        return "{" + ",".join(setting.choices) + "}"
    if setting.kind is str and setting.env.endswith(("_FILE", "_DIR", "_CERT", "_KEY", "_CA", "_CONFIG")):
        return "PATH"
    return {int: "N", float: "SECONDS" if "SECONDS" in setting.env or "TIMEOUT" in setting.env else "N"}.get(
        setting.kind, "VALUE"
    )


def _option_type(setting: Setting) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            return setting.parse(raw, setting.flag)
        except SystemExit as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{setting.flag} ")) from None

    parse.__name__ = setting.flag
    return parse


def describe(settings: Any, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, value in effect) of every setting, secrets masked, for `--print-config`."""
    env = os.environ if env is None else env
    rows = []
    for setting in SETTINGS:
        if setting.field is None:
            value = env.get(setting.env) or default_of(setting)
        else:
            owner, _, name = setting.field.rpartition(".")
            value = getattr(getattr(settings, owner) if owner else settings, name)
        if value is None or value == "":
            shown = "—"
        elif setting.secret:
            shown = masked_dsn(value) if setting.env == "GRAPHRUN_DATABASE_URL" else "***"
        else:
            shown = setting.write(value) if setting.field else str(value)
        rows.append((setting.env, shown or "—"))
    return rows


def masked_dsn(dsn: str) -> str:
    """A DSN without its password (URL form; a key=value DSN's password=… is masked too)."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return dsn
    return " ".join("password=***" if word.startswith("password=") else word for word in dsn.split())


def print_config(settings: Any, stream=None) -> None:
    for name, value in describe(settings):
        print(f"{name}={value}", file=stream or sys.stdout)


# -- the README's table ------------------------------------------------------------------------


def markdown_table(settings: Iterable[Setting] = SETTINGS) -> str:
    """The README's configuration table of the server's settings."""
    lines = ["| Option (`graphrun serve`) | Environment | Default | Meaning |", "|---|---|---|---|"]
    for setting in settings:
        meaning = setting.help[0].upper() + setting.help[1:]
        lines.append(f"| `{setting.flag}` | `{setting.env}` | {_code(_shown_default(setting))} | {meaning} |")
    return "\n".join(lines)


def _code(text: str) -> str:
    return text if text == "—" else f"`{text}`"


def _fields_are_declared() -> None:
    """Every Settings field has its declaration (checked by the tests)."""
    from .app import Settings

    declared = {s.field for s in SETTINGS if s.field}
    for f in dataclasses.fields(Settings):
        if f.name == "auth":
            continue
        assert f.name in declared, f"Settings.{f.name} has no declaration in settings.SETTINGS"


if __name__ == "__main__":
    print(markdown_table())
