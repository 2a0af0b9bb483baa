"""graphrun's Python client: the gRPC stubs (graphrun.v1) and a friendly client on top.

    from graphrun import Client

    with Client("127.0.0.1:50051") as client:
        result = client.wait("agent", {"messages": [{"role": "user", "content": "Hi"}]})
        print(result.messages[-1]["content"])

`AsyncClient` has the same methods for asyncio code. Every failed call raises a
`GraphrunError` subclass.

Runs come back as dicts with the proto's field and enum names
(`run["status"] == "RUN_STATUS_SUCCESS"`); `status_name(run)` gives the
lowercase status (`"success"`) that `RunResult.status` uses.
"""

from ._async import AsyncClient
from ._errors import (AlreadyExistsError, GraphrunError, InvalidArgumentError, NotFoundError, PermissionDeniedError,
                      RunCancelledError, RunFailedError, RunTimeoutError, ThreadBusyError, UnavailableError)
from ._sync import Client
from ._types import Event, RunResult, status_name

__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "Client",
    "Event",
    "GraphrunError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RunCancelledError",
    "RunFailedError",
    "RunResult",
    "RunTimeoutError",
    "ThreadBusyError",
    "UnavailableError",
    "status_name",
]
