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
    await context.abort_with_status(rpc_status.to_status(_translate(exc).to_status()))


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
