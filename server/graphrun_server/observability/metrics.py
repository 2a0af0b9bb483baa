"""Prometheus metrics, on an HTTP port of their own (`GRAPHRUN_METRICS_PORT`).

Each server has its own registry (several servers may share a process in tests).
RPC figures come from a server interceptor; run figures from the runner; pool
figures are read from psycopg_pool when Prometheus scrapes; the event loop's lag from a
timer on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..bounded_cache import BoundedCache
from ..interceptors import wrap

_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LOOP_LAG_INTERVAL = 0.25  # seconds between two measurements of the loop's lag


def _code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    code = context.code()
    if code is not None:
        return code.name if isinstance(code, grpc.StatusCode) else str(code)
    if exc is None:
        return "OK"
    return "CANCELLED" if isinstance(exc, asyncio.CancelledError) else "UNKNOWN"


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.rpcs = Counter(
            "graphrun_rpc_requests", "RPCs handled, by method and status code", ["method", "code"], registry=r
        )
        self.rpc_seconds = Histogram(
            "graphrun_rpc_duration_seconds", "RPC duration, by method", ["method"], buckets=_RPC_BUCKETS, registry=r
        )
        self.streams = Gauge("graphrun_active_streams", "Open server-streaming calls (Stream, Join)", registry=r)
        self.runs = Counter(
            "graphrun_runs_finished", "Runs that ended on this replica, by final status", ["status"], registry=r
        )
        self.run_seconds = Histogram(
            "graphrun_run_duration_seconds", "Run execution time on this replica", buckets=_RUN_BUCKETS, registry=r
        )
        self.executing = Gauge("graphrun_runs_executing", "Runs executing on this replica", registry=r)
        self.queue = Gauge("graphrun_queue_depth", "Runs pending in the database (all replicas)", registry=r)
        self.pool = Gauge("graphrun_db_pool_connections", "Database pool connections, by state", ["state"], registry=r)
        self.loop_lag = Histogram(
            "graphrun_event_loop_lag_seconds",
            "How late the event loop ran a timer that was due (measured every 0.25 s)",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self._http = None
        self._lag_timer: asyncio.TimerHandle | None = None

    def watch_pool(self, pool) -> None:
        def stat(key: str):
            return lambda: pool.get_stats().get(key, 0)

        self.pool.labels("open").set_function(stat("pool_size"))
        self.pool.labels("idle").set_function(stat("pool_available"))
        self.pool.labels("waiting").set_function(stat("requests_waiting"))

    def watch_messages(self, caches: Callable[[], dict[str, BoundedCache]]) -> None:
        """Report the kept messages (`GRAPHRUN_MESSAGE_CACHE_MB`): how many are kept, and how many
        reads and conversions found theirs kept (hit) or did the work (miss), by cache (`decoded`:
        storage/serde.py, `converted`: wire.py). `caches` gives each cache at each scrape."""
        self.registry.register(_MessageCaches(caches))

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Measure the event loop's lag: how late a timer runs. Every run, stream and call of the
        replica shares the loop, and gRPC's Python server takes up new calls on it, one at a time:
        a loop that has more work than it can do takes calls up late, and gRPC cancels a call it
        has held 30 s without the server taking it up (the caller sees CANCELLED)."""

        def beat(due: float) -> None:
            now = loop.time()
            self.loop_lag.observe(max(0.0, now - due))
            self._lag_timer = loop.call_at(now + LOOP_LAG_INTERVAL, beat, now + LOOP_LAG_INTERVAL)

        due = loop.time() + LOOP_LAG_INTERVAL
        self._lag_timer = loop.call_at(due, beat, due)

    def run_finished(self, status: str, seconds: float) -> None:
        self.runs.labels(status).inc()
        self.run_seconds.observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics; returns the bound port."""
        try:
            self._http, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise SystemExit(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}; choose another port with "
                "--metrics-port / GRAPHRUN_METRICS_PORT"
            ) from None
        return self._http.server_port

    def close(self) -> None:
        if self._lag_timer is not None:
            self._lag_timer.cancel()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def interceptor(self) -> grpc.aio.ServerInterceptor:
        return _RpcMetrics(self)


class _MessageCaches:
    """A collector read at each scrape: the caches count as they go, without Prometheus' locks."""

    def __init__(self, caches: Callable[[], dict[str, BoundedCache]]):
        self._caches = caches

    def collect(self):
        lookups = CounterMetricFamily(
            "graphrun_message_cache_lookups",
            "Messages looked up in a cache of kept messages, by cache and result (hit: kept; miss: the work done)",
            labels=["cache", "result"],
        )
        kept = GaugeMetricFamily("graphrun_message_cache_messages", "Messages kept, by cache", labels=["cache"])
        for name, cache in self._caches().items():
            lookups.add_metric([name, "hit"], cache.hits)
            lookups.add_metric([name, "miss"], cache.misses)
            kept.add_metric([name], len(cache))
        yield lookups
        yield kept


class _RpcMetrics(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: Metrics):
        self.m = metrics

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        method, m = details.method, self.m

        @contextlib.asynccontextmanager
        async def measured(request, context, streaming: bool):
            started, error = time.perf_counter(), None
            if streaming:
                m.streams.inc()
            try:
                yield
            except BaseException as exc:
                error = exc
                raise
            finally:
                if streaming:
                    m.streams.dec()
                m.rpcs.labels(method, _code(context, error)).inc()
                m.rpc_seconds.labels(method).observe(time.perf_counter() - started)

        return wrap(handler, measured)  # reflection's bidirectional stream is left as it is: not counted
