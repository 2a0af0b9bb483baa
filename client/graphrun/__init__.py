"""graphrun's Python client: the gRPC stubs (graphrun.v1) and a friendly client on top.

    from graphrun import Client

    with Client("127.0.0.1:50051") as client:
        result = client.wait("agent", {"messages": [{"role": "user", "content": "Hi"}]})
        print(result.messages[-1]["content"])

`AsyncClient` has the same methods for asyncio code. Every failed call raises a
`GraphrunError` subclass.
"""

from ._async import AsyncClient
from ._errors import (AlreadyExistsError, GraphrunError, InvalidArgumentError, NotFoundError, RunCancelledError,
                      RunFailedError, RunTimeoutError, ThreadBusyError, UnavailableError)
from ._sync import Client
from ._types import Event, RunResult

__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "Client",
    "Event",
    "GraphrunError",
    "InvalidArgumentError",
    "NotFoundError",
    "RunCancelledError",
    "RunFailedError",
    "RunResult",
    "RunTimeoutError",
    "ThreadBusyError",
    "UnavailableError",
]
