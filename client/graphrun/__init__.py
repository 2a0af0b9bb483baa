"""graphrun's Python client: the gRPC stubs (graphrun.v1) and a friendly client on top.

    from graphrun import Client

    with Client("127.0.0.1:50051") as client:
        result = client.wait("agent", {"messages": [{"role": "user", "content": "Hi"}]})
        print(result.messages[-1]["content"])

`AsyncClient` has the same methods for asyncio code (`Client` is generated from it). Every
failed call raises a `GraphrunError` subclass: one per gRPC code, and under it one per
`ErrorInfo` reason (`ThreadBusyError`, `ThreadInterruptedError`, `RunStillRunningError`, …).

Runs, threads and events come back as dicts with the proto's field names; enum values in
them are spelt in lowercase without the enum's prefix, as `RunResult.status` is
(`run["status"] == "success"`, `thread["status"] == "idle"`). The run options `wait`,
`stream` and `create_run` share are typed by `RunOptions`.
"""

from ._async import AsyncClient
from ._errors import (
    AbortedError,
    AlreadyExistsError,
    AssistantNotFoundError,
    CheckpointNamespaceNotFoundError,
    CheckpointNotFoundError,
    DatabaseUnavailableError,
    FailedPreconditionError,
    GraphrunError,
    InternalError,
    InvalidArgumentError,
    ItemNotFoundError,
    NamespaceNotOwnedError,
    NotFoundError,
    PermissionDeniedError,
    PruneRefusedError,
    QueueFullError,
    ReadOnlyScopeError,
    ReplicaBusyError,
    RequestIdReusedError,
    ResourceExhaustedError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    RunStillRunningError,
    RunTimeoutError,
    ServerDrainingError,
    ThreadAlreadyExistsError,
    ThreadBusyError,
    ThreadHasNoAssistantError,
    ThreadInterruptedError,
    ThreadNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
    TokenMalformedError,
    TokenMissingError,
    TokenNotYetValidError,
    UnauthenticatedError,
    UnavailableError,
)
from ._sync import Client
from ._types import (
    CancelAction,
    Durability,
    Event,
    EventKind,
    Granularity,
    IfNotExists,
    MultitaskStrategy,
    OnDisconnect,
    RunOptions,
    RunResult,
    RunStatus,
    StreamMode,
    ThreadStatus,
    status_name,
)

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AssistantNotFoundError",
    "AsyncClient",
    "CancelAction",
    "CheckpointNamespaceNotFoundError",
    "CheckpointNotFoundError",
    "Client",
    "DatabaseUnavailableError",
    "Durability",
    "Event",
    "EventKind",
    "FailedPreconditionError",
    "Granularity",
    "GraphrunError",
    "IfNotExists",
    "InternalError",
    "InvalidArgumentError",
    "ItemNotFoundError",
    "MultitaskStrategy",
    "NamespaceNotOwnedError",
    "NotFoundError",
    "OnDisconnect",
    "PermissionDeniedError",
    "PruneRefusedError",
    "QueueFullError",
    "ReadOnlyScopeError",
    "ReplicaBusyError",
    "RequestIdReusedError",
    "ResourceExhaustedError",
    "RunCancelledError",
    "RunFailedError",
    "RunNotFoundError",
    "RunOptions",
    "RunResult",
    "RunStatus",
    "RunStillRunningError",
    "RunTimeoutError",
    "ServerDrainingError",
    "StreamMode",
    "ThreadAlreadyExistsError",
    "ThreadBusyError",
    "ThreadHasNoAssistantError",
    "ThreadInterruptedError",
    "ThreadNotFoundError",
    "ThreadStatus",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenMalformedError",
    "TokenMissingError",
    "TokenNotYetValidError",
    "UnauthenticatedError",
    "UnavailableError",
    "status_name",
]
