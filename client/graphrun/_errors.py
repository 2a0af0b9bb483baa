"""Exceptions the clients raise, decoded from the `google.rpc.Status` details the server
attaches to every error: one class per gRPC code a caller reacts to and, under it, one per
`ErrorInfo` reason (`ThreadInterruptedError(FailedPreconditionError)`, …; `BY_REASON`).

Catching `grpc.RpcError` and digging through trailers is the caller's least
favourite chore, so every failed call surfaces as a `GraphrunError` subclass
with the ErrorInfo reason, BadRequest field violations and RetryInfo delay as
plain attributes. The original `grpc.RpcError` stays available as `__cause__`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AssistantNotFoundError",
    "CheckpointNamespaceNotFoundError",
    "CheckpointNotFoundError",
    "CronAlreadyExistsError",
    "CronNotFoundError",
    "DatabaseUnavailableError",
    "FailedPreconditionError",
    "GraphrunError",
    "InternalError",
    "InvalidArgumentError",
    "ItemNotFoundError",
    "NamespaceNotOwnedError",
    "NotFoundError",
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
    "RunStillRunningError",
    "RunTimeoutError",
    "ServerDrainingError",
    "ThreadAlreadyExistsError",
    "ThreadBusyError",
    "ThreadHasNoAssistantError",
    "ThreadInterruptedError",
    "ThreadNotFoundError",
    "TokenExpiredError",
    "TokenInvalidError",
    "TokenMalformedError",
    "TokenMissingError",
    "TokenNotYetValidError",
    "UnauthenticatedError",
    "UnavailableError",
]

_DETAILS_KEY = "grpc-status-details-bin"
RUN_ID_KEY = "graphrun-run-id"
THREAD_ID_KEY = "graphrun-thread-id"


class GraphrunError(Exception):
    """A failed graphrun call: its gRPC code plus the server's structured details.

    `reason` and `metadata` come from `google.rpc.ErrorInfo`, `field_violations`
    from `google.rpc.BadRequest`, `retry_delay` (seconds) from
    `google.rpc.RetryInfo`. `run_id` / `thread_id` are set when the failed call
    had started a run (from the call's initial metadata or the ErrorInfo).
    `last_sequence` is the ErrorInfo's `last_sequence` as an int when the server
    sent one (a `Join` cut short by a draining replica, reason `SERVER_DRAINING`):
    join again with `after_sequence=last_sequence`. None otherwise.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[tuple[str, str]] | None = None,
        retry_delay: float | None = None,
        run_id: str | None = None,
        thread_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[tuple[str, str]] = list(field_violations or [])
        self.retry_delay = retry_delay
        self.run_id = run_id or self.metadata.get("run_id") or None
        self.thread_id = thread_id or self.metadata.get("thread_id") or None
        self.last_sequence = _int_or_none(self.metadata.get("last_sequence"))

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as cls(*args); ours take (code, message), so say so (multiprocessing, caches).
        return type(self), (self.code, self.message), self.__dict__

    def __str__(self) -> str:
        head = f"{self.code.name} {self.reason}" if self.reason and self.reason != self.code.name else self.code.name
        return f"{head}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, message={self.message!r})"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# One class per gRPC code a caller reacts to, and below each one class per ErrorInfo reason the
# server sends with that code (the README's error table). Catch the code's class to handle all
# its reasons alike, a reason's class to handle that case; `reason` holds the reason either way.


class InvalidArgumentError(GraphrunError):
    """The request was malformed (reason `INVALID_ARGUMENT`); `field_violations` names every bad field.
    Don't retry as is."""


class NotFoundError(GraphrunError):
    """The thread, run, assistant, checkpoint or Store item does not exist (see `reason`)."""


class AssistantNotFoundError(NotFoundError):
    """`ASSISTANT_NOT_FOUND`: no graph of that id is served, and no assistant of the caller's has it
    (see `list_assistants`)."""


class AssistantVersionNotFoundError(NotFoundError):
    """`ASSISTANT_VERSION_NOT_FOUND`: the assistant has no such version (`set_latest_assistant_version`,
    a run's `assistant_version`)."""


class ThreadNotFoundError(NotFoundError):
    """`THREAD_NOT_FOUND`: no such thread (a run may create it with `if_not_exists="create"`)."""


class CheckpointNotFoundError(NotFoundError):
    """`CHECKPOINT_NOT_FOUND`: the thread has no checkpoint of that id."""


class CheckpointNamespaceNotFoundError(NotFoundError):
    """`CHECKPOINT_NS_NOT_FOUND`: the thread has no checkpoint in that subgraph namespace."""


class RunNotFoundError(NotFoundError):
    """`RUN_NOT_FOUND`: no such run (`get_run`, `cancel_run`, `join`)."""


class ItemNotFoundError(NotFoundError):
    """`ITEM_NOT_FOUND`: no Store item under that namespace and key."""


class CronNotFoundError(NotFoundError):
    """`CRON_NOT_FOUND`: no such cron (`get_cron`, `update_cron`, `delete_cron`)."""


class PermissionDeniedError(GraphrunError):
    """The caller may not do this (e.g. put a Store item under another caller's namespace)."""


class NamespaceNotOwnedError(PermissionDeniedError):
    """`NAMESPACE_NOT_OWNED`: with authentication on, a Store write under a namespace whose first
    label is not the caller's."""


class ReadOnlyScopeError(PermissionDeniedError):
    """`READ_ONLY_SCOPE`: the caller's token has the `graphrun:read` scope and the call changes something."""


class AlreadyExistsError(GraphrunError):
    """Something with the requested id already exists."""


class ThreadAlreadyExistsError(AlreadyExistsError):
    """`THREAD_ALREADY_EXISTS`: `create_thread` with a taken id."""


class AssistantAlreadyExistsError(AlreadyExistsError):
    """`ASSISTANT_ALREADY_EXISTS`: `create_assistant` with a taken id."""


class CronAlreadyExistsError(AlreadyExistsError):
    """`CRON_ALREADY_EXISTS`: `create_cron` with a `cron_id` that is taken."""


class RequestIdReusedError(AlreadyExistsError):
    """`REQUEST_ID_REUSED`: a `request_id` that already started a different run."""


class AbortedError(GraphrunError):
    """The call conflicted with the thread's runs, or its run failed (see `reason`)."""


class ThreadBusyError(AbortedError):
    """`THREAD_BUSY`: the thread has a run in flight (`metadata["run_id"]`); retrying after it ends may succeed."""


class RunFailedError(AbortedError):
    """`RUN_FAILED`: the run ended `error`: the graph, a model or a tool raised. The thread stays usable."""


class RunTimeoutError(GraphrunError):
    """The call's deadline or the run's `timeout` passed (reason `RUN_TIMEOUT`: the run ended
    `timeout`); completed steps are kept."""


class RunStillRunningError(RunTimeoutError):
    """`RUN_STILL_RUNNING`: the call's deadline passed, but the run (`on_disconnect="continue"`) goes
    on: `join` it (`run_id`) or look it up with `get_run`."""


class RunCancelledError(GraphrunError):
    """The run or the call was cancelled before the run finished (reason `RUN_CANCELLED`: the run
    ended `cancelled`)."""


class FailedPreconditionError(GraphrunError):
    """The thread is not in a state that allows the call (see `reason`); retrying as is won't help."""


class ThreadInterruptedError(FailedPreconditionError):
    """`THREAD_INTERRUPTED`: new input for a thread waiting on an interrupt. Resume it
    (`command={"resume": ...}`), continue without input, or move on with `command={"goto": ...}`."""


class ThreadHasNoAssistantError(FailedPreconditionError):
    """`THREAD_HAS_NO_ASSISTANT`: `update_state` on a thread that never ran a graph."""


class GraphNotServedError(FailedPreconditionError):
    """`GRAPH_NOT_SERVED`: a run of an assistant whose graph the server no longer serves."""


class PruneRefusedError(FailedPreconditionError):
    """`PRUNE_REFUSED`: the thread cannot be pruned to its latest checkpoint (its graph has delta
    channels, which LangGraph keeps whole); keep it, or delete it."""


class UnauthenticatedError(GraphrunError):
    """Authentication is on and the call's bearer token is missing or not accepted (see `reason`)."""


class TokenMissingError(UnauthenticatedError):
    """`TOKEN_MISSING`: the call sent no `authorization: Bearer <token>`; pass `token=`."""


class TokenMalformedError(UnauthenticatedError):
    """`TOKEN_MALFORMED`: the authorization header is not `Bearer <token>`."""


class TokenInvalidError(UnauthenticatedError):
    """`TOKEN_INVALID`: an unknown API key, or a JWT with a bad signature, key id, audience or issuer."""


class TokenExpiredError(UnauthenticatedError):
    """`TOKEN_EXPIRED`: the JWT has expired; retry with a fresh one."""


class TokenNotYetValidError(UnauthenticatedError):
    """`TOKEN_NOT_YET_VALID`: the JWT's `nbf` lies in the future (or the clocks disagree)."""


class ResourceExhaustedError(GraphrunError):
    """The server is at a limit; retrying after `retry_delay` may succeed (see `reason`)."""


class ReplicaBusyError(ResourceExhaustedError):
    """`REPLICA_BUSY`: the replica executes its maximum of runs; retry after `retry_delay`, or
    elsewhere (`create_run` queues instead)."""


class QueueFullError(ResourceExhaustedError):
    """`QUEUE_FULL`: too many runs are waiting to execute; retry after `retry_delay`."""


class UnavailableError(GraphrunError):
    """The server (or its database) cannot be reached right now; retrying may help (see `reason`)."""


class ServerDrainingError(UnavailableError):
    """`SERVER_DRAINING`: the replica serving the call is shutting down; the run continues
    elsewhere. `join` it again with `after_sequence=last_sequence`."""


class DatabaseUnavailableError(UnavailableError):
    """`DATABASE_UNAVAILABLE`: the server cannot reach PostgreSQL; retry after `retry_delay`."""


class InternalError(GraphrunError):
    """`INTERNAL`: a bug in graphrun (the details are only in the server's log)."""


_BY_CODE: dict[grpc.StatusCode, type[GraphrunError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: RunTimeoutError,
    grpc.StatusCode.CANCELLED: RunCancelledError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.INTERNAL: InternalError,
}
# Every ErrorInfo reason the server sends (the README's error table), to its own class.
BY_REASON: dict[str, type[GraphrunError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "ASSISTANT_NOT_FOUND": AssistantNotFoundError,
    "ASSISTANT_VERSION_NOT_FOUND": AssistantVersionNotFoundError,
    "ASSISTANT_ALREADY_EXISTS": AssistantAlreadyExistsError,
    "GRAPH_NOT_SERVED": GraphNotServedError,
    "THREAD_NOT_FOUND": ThreadNotFoundError,
    "CHECKPOINT_NOT_FOUND": CheckpointNotFoundError,
    "CHECKPOINT_NS_NOT_FOUND": CheckpointNamespaceNotFoundError,
    "RUN_NOT_FOUND": RunNotFoundError,
    "ITEM_NOT_FOUND": ItemNotFoundError,
    "CRON_NOT_FOUND": CronNotFoundError,
    "NAMESPACE_NOT_OWNED": NamespaceNotOwnedError,
    "READ_ONLY_SCOPE": ReadOnlyScopeError,
    "THREAD_ALREADY_EXISTS": ThreadAlreadyExistsError,
    "CRON_ALREADY_EXISTS": CronAlreadyExistsError,
    "REQUEST_ID_REUSED": RequestIdReusedError,
    "THREAD_BUSY": ThreadBusyError,
    "RUN_FAILED": RunFailedError,
    "RUN_TIMEOUT": RunTimeoutError,
    "RUN_STILL_RUNNING": RunStillRunningError,
    "RUN_CANCELLED": RunCancelledError,
    "THREAD_INTERRUPTED": ThreadInterruptedError,
    "THREAD_HAS_NO_ASSISTANT": ThreadHasNoAssistantError,
    "PRUNE_REFUSED": PruneRefusedError,
    "TOKEN_MISSING": TokenMissingError,
    "TOKEN_MALFORMED": TokenMalformedError,
    "TOKEN_INVALID": TokenInvalidError,
    "TOKEN_EXPIRED": TokenExpiredError,
    "TOKEN_NOT_YET_VALID": TokenNotYetValidError,
    "REPLICA_BUSY": ReplicaBusyError,
    "QUEUE_FULL": QueueFullError,
    "SERVER_DRAINING": ServerDrainingError,
    "DATABASE_UNAVAILABLE": DatabaseUnavailableError,
    "INTERNAL": InternalError,
}


def _metadata_value(metadata: Iterable[tuple[str, Any]] | None, key: str) -> Any:
    for k, v in metadata or ():
        if k == key:
            return v
    return None


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status of a failed call, sync or aio.

    `rpc_status.from_call` refuses a status whose message differs from the
    call's details (a proxy may rewrite those); the trailer is still the
    server's word then, so read it directly.
    """
    try:
        return rpc_status.from_call(error)
    except ValueError:
        raw = _metadata_value(error.trailing_metadata(), _DETAILS_KEY)
        return status_pb2.Status.FromString(raw) if raw else None


def _initial_metadata(error: grpc.RpcError) -> Iterable[tuple[str, Any]] | None:
    try:
        return error.initial_metadata()
    except Exception:  # noqa: BLE001 - a call that never got that far has none
        return None


def from_rpc_error(error: grpc.RpcError, *, run_id: str | None = None, thread_id: str | None = None) -> GraphrunError:
    """Translate a `grpc.RpcError` (sync or aio) into the matching `GraphrunError`."""
    code: grpc.StatusCode = error.code()
    message: str = error.details() or ""
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    retry_delay: float | None = None
    status = _rich_status(error)
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend((v.field, v.description) for v in bad.field_violations)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_delay = retry.retry_delay.ToTimedelta().total_seconds()
    initial = _initial_metadata(error)
    run_id = run_id or _metadata_value(initial, RUN_ID_KEY)
    thread_id = thread_id or _metadata_value(initial, THREAD_ID_KEY)
    cls = BY_REASON.get(reason) or _BY_CODE.get(code, GraphrunError)
    return cls(
        code,
        message,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_delay=retry_delay,
        run_id=run_id,
        thread_id=thread_id,
    )
