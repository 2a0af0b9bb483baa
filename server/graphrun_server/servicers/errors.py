"""One wrapper for every RPC: domain errors become rich gRPC statuses.

A `GraphrunError` becomes its code with `google.rpc` details; a database that
cannot be reached becomes UNAVAILABLE with RetryInfo; anything else is a bug:
INTERNAL with a generic message (the traceback goes to the log, never to the
client).
"""

from __future__ import annotations

import functools
import inspect
import logging

import grpc
import psycopg
from grpc_status import rpc_status
from opentelemetry import trace

from ..errors import DatabaseUnavailable, GraphrunError

log = logging.getLogger(__name__)

# The database is unreachable (psycopg_pool's PoolTimeout and PoolClosed are OperationalErrors).
DATABASE_ERRORS = (psycopg.OperationalError, DatabaseUnavailable)


def _translate(exc: Exception) -> GraphrunError:
    if isinstance(exc, DATABASE_ERRORS):
        # Not a warning per call: storage/availability.py logs the database going and coming back once.
        log.debug("database unavailable: %s", type(exc).__name__)
        return exc if isinstance(exc, GraphrunError) else DatabaseUnavailable()
    if isinstance(exc, GraphrunError):
        return exc
    log.exception("unexpected error")
    return GraphrunError("internal error; see the server log")


async def _abort(context: grpc.aio.ServicerContext, exc: Exception) -> None:
    status = rpc_status.to_status(_translate(exc).to_status())
    _mark_span(status)
    await context.abort_with_status(status)


def _mark_span(status: grpc.Status) -> None:
    """Put the call's status on its trace span: OpenTelemetry's interceptor sees `abort`, not
    `abort_with_status`, and would leave a failed call's span OK (`rpc.grpc.status_code` 0)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", status.code.value[0])
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{status.code.name}: {status.details}"))


def rpc(method):
    """Decorate a servicer method (unary or server-streaming) with the error mapping."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def streaming(self, request, context):
            try:
                async for response in method(self, request, context):
                    yield response
            except Exception as exc:  # noqa: BLE001 - every error gets a status
                await _abort(context, exc)

        return streaming

    @functools.wraps(method)
    async def unary(self, request, context):
        try:
            return await method(self, request, context)
        except Exception as exc:  # noqa: BLE001
            await _abort(context, exc)

    return unary
