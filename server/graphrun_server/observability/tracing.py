"""OpenTelemetry traces, off unless configured.

`OTEL_TRACES_EXPORTER=console` (or `otlp`, with opentelemetry-exporter-otlp
installed and the usual `OTEL_EXPORTER_OTLP_*` variables) turns them on: the
gRPC server instrumentation makes a span per call, and the runner adds a span
per run (attempt) with a child span per graph node.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def provider_from_env() -> TracerProvider | None:
    name = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if name in ("", "none"):
        return None
    if name == "console":
        exporter: SpanExporter = ConsoleSpanExporter()
    elif name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise SystemExit("OTEL_TRACES_EXPORTER=otlp needs `pip install opentelemetry-exporter-otlp`") from exc
        exporter = OTLPSpanExporter()
    else:
        raise SystemExit(f"OTEL_TRACES_EXPORTER={name!r}: graphrun knows 'console', 'otlp' and 'none'")
    return make_provider(exporter)


def make_provider(exporter: SpanExporter, batch: bool = True) -> TracerProvider:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "graphrun")})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def server_interceptor(provider: TracerProvider):
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return aio_server_interceptor(tracer_provider=provider)


def tracer(provider: TracerProvider | None) -> trace.Tracer:
    """A tracer for runs and nodes; a no-op one when tracing is off."""
    return (provider or trace.NoOpTracerProvider()).get_tracer("graphrun")
