"""One way to wrap a gRPC method handler, for the server's interceptors (auth, metrics)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import grpc

# around(context, streaming) -> an async context manager entered for the whole call.
Around = Callable[[grpc.aio.ServicerContext, bool], AbstractAsyncContextManager]


def wrap(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """The handler, each call of it run inside `around` (unary and server-streaming methods;
    others, like reflection's bidirectional stream, are returned as they are)."""
    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary(request, context):
            async with around(context, False):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
    if handler.unary_stream:
        inner_stream = handler.unary_stream

        async def stream(request, context):
            async with around(context, True):
                async for response in inner_stream(request, context):
                    yield response

        return grpc.unary_stream_rpc_method_handler(stream, handler.request_deserializer,
                                                     handler.response_serializer)
    return handler
