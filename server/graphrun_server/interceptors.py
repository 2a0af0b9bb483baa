"""One way to wrap a gRPC method handler, for the server's interceptors (auth, metrics), and
the interceptor that answers undecodable requests INVALID_ARGUMENT (DecodeGuard)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
from grpc_status import rpc_status

from .errors import FieldViolation, InvalidArgument

# around(request, context, streaming) -> an async context manager entered for the whole call.
Around = Callable[[Any, grpc.aio.ServicerContext, bool], AbstractAsyncContextManager]


def wrap(
    handler: grpc.RpcMethodHandler,
    around: Around,
    deserializer: Callable[[bytes], Any] | None = None,
    *,
    bidi: bool = False,
) -> grpc.RpcMethodHandler:
    """The handler, each call of it run inside `around` (unary and server-streaming methods, and
    with `bidi` bidirectional ones like reflection's, whose `around` gets no request; others are
    returned as they are)."""
    deserializer = deserializer or handler.request_deserializer
    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary(request, context):
            async with around(request, context, False):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, deserializer, handler.response_serializer)
    if handler.unary_stream:
        inner_stream = handler.unary_stream

        async def stream(request, context):
            async with around(request, context, True):
                responses = inner_stream(request, context)
                if inspect.isasyncgen(responses):
                    async for response in responses:
                        yield response
                else:  # a handler that writes with context.write, like health's Watch
                    await responses

        return grpc.unary_stream_rpc_method_handler(stream, deserializer, handler.response_serializer)
    if bidi and handler.stream_stream:
        inner_bidi = handler.stream_stream

        async def both_ways(requests, context):
            async with around(None, context, True):
                async for response in inner_bidi(requests, context):
                    yield response

        return grpc.stream_stream_rpc_method_handler(both_ways, deserializer, handler.response_serializer)
    return handler


class _Undecodable:
    """What a guarded deserializer returns for bytes that are not a valid request."""

    def __init__(self, message_type: str, error: Exception):
        self.message_type, self.error = message_type, error


def _guarded(deserializer):
    message_type = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    name = message_type.full_name if message_type is not None else "request"

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - DecodeError: corrupt bytes, bad UTF-8, nesting deeper than protobuf parses
            return _Undecodable(name, exc)

    return deserialize


@contextlib.asynccontextmanager
async def _refuse_undecodable(request, context: grpc.aio.ServicerContext, streaming: bool):
    if isinstance(request, _Undecodable):
        error = InvalidArgument(FieldViolation("", f"is not a valid {request.message_type}: {request.error}"))
        await context.abort_with_status(rpc_status.to_status(error.to_status()))
    yield


class DecodeGuard(grpc.aio.ServerInterceptor):
    """Answers a request whose bytes do not decode INVALID_ARGUMENT (with a BadRequest), like any
    other bad request. Without it grpc answers UNKNOWN ("Unexpected DecodeError") before any
    servicer runs. Install it last (innermost), so that authentication still answers first."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        return wrap(handler, _refuse_undecodable, _guarded(handler.request_deserializer))
