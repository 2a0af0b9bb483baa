"""Assembles and runs a graphrun server: database, graphs, runner, gRPC services.

`App` is what the CLI serves and what the tests start on 127.0.0.1:0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.conninfo import conninfo_to_dict

from graphrun.v1 import (
    assistant_service_pb2,
    assistant_service_pb2_grpc,
    cron_service_pb2,
    cron_service_pb2_grpc,
    run_service_pb2,
    run_service_pb2_grpc,
    store_service_pb2,
    store_service_pb2_grpc,
    thread_service_pb2,
    thread_service_pb2_grpc,
)

from . import input_check, settings as settings_declared, wire
from .assistants import Assistants
from .auth import Authenticator, AuthInterceptor, AuthSettings, check_listen_address
from .crons import Crons, CronScheduler
from .interceptors import DecodeGuard
from .observability import logs, tracing
from .observability.metrics import Metrics
from .project import ProjectError, load_project
from .registry import GraphLoadError, Registry
from .runner import GraphRunner, RunnerSettings
from .servicers import reflection
from .servicers.assistants import AssistantServicer
from .servicers.crons import CronServicer
from .servicers.health import DatabaseHealth
from .servicers.runs import RunServicer
from .servicers.store import StoreServicer
from .servicers.threads import ThreadServicer
from .startup import check_database, read_pem
from .storage.assistants import AssistantRecords
from .storage.availability import Availability
from .storage.checkpointer import FencedPostgresSaver
from .storage.crons import CronStore
from .storage.database import make_pool, migrate, start_embedded
from .storage.notify import Notifications
from .storage.records import Records
from .storage.serde import CachingSerializer
from .storage.store import StoreConfigError, make_store, setup_store, ttl_sweeper
from .thread_ttl import ThreadSweeper
from .threads import Threads
from .watchdog import LoopWatchdog
from .webhooks import WebhookPolicy, WebhookSender

log = logging.getLogger("graphrun")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class Settings:
    """Server settings; each has a GRAPHRUN_* environment variable (see the README)."""

    host: str = "127.0.0.1"
    port: int = 50051
    database_url: str | None = None
    config: str | None = None
    data_dir: str = ".graphrun/pgdata"
    grace_seconds: float = 10.0
    pool_size: int = 20
    db_timeout: float = 5.0  # longest wait for a database connection, and for each answer, before UNAVAILABLE
    max_concurrent_runs: int = 100
    max_pending_runs: int = 10_000
    lease_seconds: float = 30.0
    max_attempts: int = 3
    event_write_interval: float = 0.005
    max_blocking_seconds: float = 5.0  # a run holding the event loop longer fails (0: never)
    message_cache_mb: float = 64.0  # messages kept decoded and converted for the next turn (storage/serde.py, wire.py)
    event_retention_seconds: float = 24 * 3600.0
    crons: bool = True  # run the cron scheduler here (crons.py)
    cron_interval: float = 30.0  # the longest the cron scheduler sleeps between rounds
    workers: int = 1
    share_port: bool = False  # listen on a port other processes listen on too (set for --workers' processes)
    tls_cert: str | None = None  # PEM files; with both, the server speaks TLS only
    tls_key: str | None = None
    tls_client_ca: str | None = None  # require client certificates signed by this CA (mutual TLS)
    auth: AuthSettings = field(default_factory=AuthSettings)
    allow_unauthenticated: bool = False  # listen on a non-loopback address without authentication
    webhook_allowed_hosts: str | None = None  # comma-separated host patterns runs may send webhooks to
    webhook_secret: str | None = None  # signs webhooks (HMAC-SHA256)
    metrics_port: int | None = None  # None: no metrics endpoint
    metrics_host: str = "0.0.0.0"
    log_level: str = "INFO"
    log_format: str = "text"
    event_loop: str = "uvloop"  # uvloop (libuv: ~0.2 ms less per Wait) or asyncio (the standard loop)

    def to_env(self) -> dict[str, str]:
        """These settings as GRAPHRUN_* variables (for worker processes)."""
        return settings_declared.to_env(self)

    @classmethod
    def from_env(cls, given: dict | None = None, **overrides) -> Settings:
        """The settings from GRAPHRUN_* variables, options given on the command line (`given`, by
        their `dest`) and keyword overrides winning in that order (see settings.py)."""
        values = settings_declared.values_from(os.environ, given)
        values.update({k: v for k, v in overrides.items() if v is not None})
        auth = {k.removeprefix("auth."): values.pop(k) for k in list(values) if k.startswith("auth.")}
        if "auth" not in values:
            values["auth"] = AuthSettings(**auth)
        return cls(**values)


@dataclass
class App:
    settings: Settings
    port: int = 0
    server: grpc.aio.Server | None = None
    runner: GraphRunner | None = None
    records: Records | None = None
    _pool: object = None
    _health: DatabaseHealth | None = None
    _notifications: Notifications | None = None
    _maintenance: asyncio.Task | None = None
    _watchdog: LoopWatchdog | None = None
    _embedded: object = None  # the embedded PostgreSQL, when no database URL was given
    tracer_provider: object = None  # OpenTelemetry; None: from OTEL_TRACES_EXPORTER (off by default)
    metrics: Metrics | None = None
    metrics_port: int = 0
    store: object = None  # the long-term Store graphs and StoreService share (storage/store.py)
    store_sweeper: object = None  # deletes the Store's expired items (store.ttl.sweep_interval_minutes)
    thread_sweeper: ThreadSweeper | None = None  # applies threads' time-to-live (thread_ttl.py)
    webhook_sender: WebhookSender | None = None  # delivers completion webhooks (webhooks.py)
    cron_scheduler: CronScheduler | None = None  # starts crons' runs at their ticks (crons.py)
    graph_ids: list[str] = field(default_factory=list)

    async def start(self) -> App:
        s = self.settings
        check_listen_address(s.host, s.auth, s.allow_unauthenticated)  # before touching anything
        webhook_policy = WebhookPolicy(s.webhook_allowed_hosts, s.webhook_secret)
        if s.auth.mtls and not (s.tls_client_ca and s.tls_cert):
            raise SystemExit(
                "--auth-mtls / GRAPHRUN_AUTH_MTLS needs mutual TLS: set --tls-cert, --tls-key and "
                "--tls-client-ca (GRAPHRUN_TLS_CERT, GRAPHRUN_TLS_KEY, GRAPHRUN_TLS_CLIENT_CA)"
            )
        if s.port and not s.share_port:
            check_port_free(s.host, s.port)
        if s.metrics_port:
            check_port_free(s.metrics_host, s.metrics_port, "--metrics-port / GRAPHRUN_METRICS_PORT")
        try:  # the project's env and dependencies apply before anything imports its graphs
            project = load_project(s.config)
        except ProjectError as exc:
            raise SystemExit(str(exc)) from None
        credentials = server_credentials(s)  # unreadable TLS files stop the server before anything starts
        dsn = s.database_url
        if dsn:
            await check_database(dsn, s.db_timeout)
        else:
            self._embedded = await asyncio.to_thread(start_embedded, s.data_dir)
            dsn = self._embedded.get_uri()
        availability = Availability()
        pool = self._pool = make_pool(dsn, max_size=s.pool_size, timeout=s.db_timeout, availability=availability)
        await pool.open(wait=True, timeout=30)
        kept = int(s.message_cache_mb * 2**20 / 2)  # half for decoded messages, half for converted ones
        serde = CachingSerializer(cache_bytes=kept)
        checkpointer = FencedPostgresSaver(pool, serde=serde)
        wire.converted = wire.ConvertedMessages(kept)
        try:
            self.store = make_store(pool, project.store, project.base_dir)

            async def setup() -> None:
                await checkpointer.setup()
                await setup_store(self.store, pool)

            await migrate(pool, setup)
            registry = await Registry.load(project, checkpointer, self.store)
            input_check.prepare(registry.all())
            self.graph_ids = [a.assistant_id for a in registry.all()]
        except (StoreConfigError, GraphLoadError) as exc:
            await self._close_database()
            raise SystemExit(str(exc)) from None
        self.records = records = Records(pool)
        self._notifications = Notifications(dsn, budget=s.db_timeout)
        await self._notifications.start()
        if self.tracer_provider is None:
            self.tracer_provider = tracing.provider_from_env()
        interceptors = [tracing.server_interceptor(self.tracer_provider)] if self.tracer_provider else []
        if s.auth.enabled:
            interceptors.append(AuthInterceptor(Authenticator(s.auth)))
        if s.metrics_port is not None:
            self.metrics = Metrics()
            self.metrics.watch_pool(pool)
            self.metrics.watch_messages(lambda: {"decoded": serde.messages, "converted": wire.converted})
            interceptors.append(self.metrics.interceptor())
        self.runner = GraphRunner(
            registry,
            records,
            checkpointer,
            self._notifications,
            dsn,
            RunnerSettings(
                max_concurrent_runs=s.max_concurrent_runs,
                max_pending_runs=s.max_pending_runs,
                lease_seconds=s.lease_seconds,
                max_attempts=s.max_attempts,
                event_write_interval=s.event_write_interval,
            ),
            metrics=self.metrics,
            tracer=tracing.tracer(self.tracer_provider),
            assistants=Assistants(registry, AssistantRecords(pool), webhook_policy),
        )

        interceptors.append(DecodeGuard())  # innermost: authentication answers first
        server = self.server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                # gRPC core's latency profile: a unary call answers ~0.04 ms sooner here.
                ("grpc.optimization_target", "latency"),
                # gRPC shares ports by default (SO_REUSEPORT): a second server started on the port by
                # mistake would silently take half the connections. Only --workers' processes share.
                ("grpc.so_reuseport", 1 if s.share_port else 0),
            ],
        )
        threads = Threads(registry, records, self.runner)
        self.thread_sweeper = ThreadSweeper(threads, records, pool, project.thread_ttl)
        run_service_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(self.runner, webhook_policy), server)
        self.webhook_sender = WebhookSender(pool, webhook_policy, threads.webhook_payload)
        thread_service_pb2_grpc.add_ThreadServiceServicer_to_server(
            ThreadServicer(threads, project.thread_ttl.minutes if project.thread_ttl else None), server
        )
        assistant_service_pb2_grpc.add_AssistantServiceServicer_to_server(
            AssistantServicer(self.runner.assistants, webhook_policy), server
        )
        store_service_pb2_grpc.add_StoreServiceServicer_to_server(StoreServicer(self.store), server)
        cron_store = CronStore(pool)
        if s.crons:
            self.cron_scheduler = CronScheduler(cron_store, self.runner, s.cron_interval, s.lease_seconds)
        cron_service_pb2_grpc.add_CronServiceServicer_to_server(
            CronServicer(Crons(cron_store, self.runner, self.cron_scheduler), webhook_policy), server
        )
        self._health = DatabaseHealth(dsn, pool, availability)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable(
            server,
            [
                run_service_pb2.DESCRIPTOR.services_by_name["RunService"].full_name,
                thread_service_pb2.DESCRIPTOR.services_by_name["ThreadService"].full_name,
                assistant_service_pb2.DESCRIPTOR.services_by_name["AssistantService"].full_name,
                store_service_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name,
                cron_service_pb2.DESCRIPTOR.services_by_name["CronService"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            ],
        )
        address = f"{s.host}:{s.port}"
        try:
            self.port = (
                server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
            )
        except RuntimeError:  # gRPC's "Failed to bind to address": in use, or not an address of this host
            raise SystemExit(
                f"cannot listen on {address}: the port is in use (or the host is not an address of "
                "this machine); choose another with --port / GRAPHRUN_PORT"
            ) from None
        await server.start()
        await self._health.start()
        await self.runner.start()
        if s.max_blocking_seconds > 0:
            self._watchdog = LoopWatchdog(
                asyncio.get_running_loop(), s.max_blocking_seconds, self.runner.on_loop_blocked
            )
            self._watchdog.start()
        self._maintenance = asyncio.create_task(self._maintain(records), name="graphrun-maintenance")
        if sweeper := ttl_sweeper(self.store, pool):
            self.store_sweeper = sweeper.start()
        self.thread_sweeper.start()
        if webhook_policy.patterns:  # a replica that allows no webhooks sends none (it would refuse every host)
            self.webhook_sender.start()
        if self.cron_scheduler:
            self.cron_scheduler.start()
        if self.metrics:
            self.metrics.watch_loop(asyncio.get_running_loop())
            self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
        return self

    async def _maintain(self, records: Records) -> None:
        """Hourly: delete the events of runs that ended longer ago than the retention period.
        Every 10 s (with metrics on): read the queue depth."""
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - pruned_at >= min(3600.0, self.settings.event_retention_seconds) or not pruned_at:
                    pruned_at = loop.time()
                    if pruned := await records.prune_events(self.settings.event_retention_seconds):
                        log.info("pruned %d run events", pruned)
                if self.metrics:
                    self.metrics.queue.set(await records.count_pending())
            except Exception as exc:  # noqa: BLE001 - maintenance tries again in its next round
                log.warning("maintenance failed: %s", type(exc).__name__)
            await asyncio.sleep(10.0 if self.metrics else min(3600.0, self.settings.event_retention_seconds))

    async def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING and refuse new calls, let runs finish within the grace
        period and hand the rest to other replicas (their streams end UNAVAILABLE), close."""
        grace = self.settings.grace_seconds if grace is None else grace
        if self._maintenance:
            self._maintenance.cancel()
        if self.store_sweeper:
            await self.store_sweeper.stop()
        if self.thread_sweeper:
            await self.thread_sweeper.stop()
        if self.webhook_sender:
            await self.webhook_sender.stop()
        if self.cron_scheduler:
            await self.cron_scheduler.stop()
        if self._health:
            await self._health.drain()
        stopping = asyncio.create_task(self.server.stop(grace)) if self.server else None
        if self.runner:
            await self.runner.drain(grace * 0.9)
        if stopping:
            await stopping
        if self.runner:
            await self.runner.close()
        if self._watchdog:
            self._watchdog.stop()
        if self._notifications:
            await self._notifications.stop()
        await self._close_database()
        if self.metrics:
            self.metrics.close()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()

    async def _close_database(self) -> None:
        if self._pool:
            await self._pool.close()
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.cleanup)

    def summary(self) -> dict[str, str]:
        """What a server operator wants to see at start: where it serves, how it is secured,
        what it serves, where its metrics and database are."""
        s = self.settings
        auth = [
            name
            for name, on in (
                ("JWT HS256", s.auth.jwt_secret),
                ("JWT public key", s.auth.jwt_public_key_file),
                ("JWKS", s.auth.jwks_file),
                ("API keys", s.auth.api_keys_file),
                ("client certificates", s.auth.mtls),
            )
            if on
        ]
        return {
            "address": f"{s.host}:{self.port}",
            "tls": ("mutual" if s.tls_client_ca else "on") if s.tls_cert else "off",
            "authentication": ", ".join(auth) if auth else "off",
            "graphs": ", ".join(self.graph_ids) or "none",
            "metrics": f"http://{s.metrics_host}:{self.metrics_port}/metrics" if self.metrics else "off",
            "database": (f"embedded ({s.data_dir})" if self._embedded else _database_address(s.database_url or "")),
            "event loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        }

    async def serve_forever(self) -> None:
        await self.start()
        # What exists now (modules, compiled graphs, stubs: ~140k objects) lives as long as the
        # process: keep it out of the collector's full passes, which would otherwise walk all of
        # it every thousand runs or so (a ~50 ms pause each time).
        gc.freeze()
        # One machine-readable line on stdout (logs go to stderr): supervisors and tests wait for it.
        logs.READY.info(
            "graphrun serving on %s:%s",
            self.settings.host,
            self.port,
            extra={"address": f"{self.settings.host}:{self.port}"},
        )
        summary = self.summary()
        log.info(
            "serving on %s · %s",
            summary["address"],
            " · ".join(f"{k}: {v}" for k, v in summary.items() if k != "address"),
            extra=summary,
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        log.info("shutting down")
        await self.stop()


def _database_address(dsn: str) -> str:
    """host:port/dbname of a DSN, nothing secret."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "?"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def check_port_free(host: str, port: int, setting: str = "--port / GRAPHRUN_PORT") -> None:
    """Stop, before starting anything, if another process listens on the port (gRPC would fail
    later with a bare RuntimeError, or share the port with another gRPC server)."""
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:
            raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}; check --host / GRAPHRUN_HOST") from None
        except OSError as exc:
            raise SystemExit(
                f"cannot listen on {host}:{port}: {exc.strerror}; choose another port with {setting}"
            ) from None


def server_credentials(s: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files, or None for plaintext."""
    if not (s.tls_cert or s.tls_key or s.tls_client_ca):
        return None
    if not (s.tls_cert and s.tls_key):
        raise SystemExit("TLS needs both GRAPHRUN_TLS_CERT and GRAPHRUN_TLS_KEY (--tls-cert, --tls-key)")
    client_ca = read_pem(s.tls_client_ca, "--tls-client-ca / GRAPHRUN_TLS_CLIENT_CA") if s.tls_client_ca else None
    key = read_pem(s.tls_key, "--tls-key / GRAPHRUN_TLS_KEY")
    chain = read_pem(s.tls_cert, "--tls-cert / GRAPHRUN_TLS_CERT")
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def serve(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)
    loop_factory = event_loop_factory(settings.event_loop)  # a bad name stops here, before any worker
    if settings.workers > 1:
        raise SystemExit(serve_workers(settings))
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(App(settings).serve_forever())


def event_loop_factory(name: str):
    """The event loop to serve on. uvloop is the default where it is installed (not on Windows):
    psycopg's and gRPC's many small waits cost less on it. `asyncio` is the standard loop."""
    if name == "asyncio":
        return None
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("GRAPHRUN_EVENT_LOOP=uvloop, but uvloop is not installed: serving on asyncio's loop")
            return None
        return uvloop.new_event_loop
    raise SystemExit(f"GRAPHRUN_EVENT_LOOP must be 'uvloop' or 'asyncio', not {name!r}")


def serve_workers(settings: Settings) -> int:
    """Run `workers` server processes on one port, to use more than one core.

    gRPC binds with SO_REUSEPORT, so the kernel spreads connections over the
    processes; each is a full replica (PostgreSQL coordinates them as it does
    separate machines). SIGTERM/SIGINT are passed on; the exit code is the worst.
    """
    if settings.port == 0:
        log.error("--workers needs a fixed --port: the processes must share one")
        return 2
    check_port_free(settings.host, settings.port)  # the workers share it with each other only
    env = {**os.environ, **settings.to_env(), "GRAPHRUN_WORKERS": "1", "GRAPHRUN_SHARE_PORT": "1"}
    children = [
        subprocess.Popen([sys.executable, "-m", "graphrun_server"], env={**env, logs.WORKER_ENV: str(i)})
        for i in range(1, settings.workers + 1)
    ]

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(abs(child.wait()) for child in children)
