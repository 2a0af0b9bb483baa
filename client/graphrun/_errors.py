"""Exceptions the clients raise: one per way a caller would react, decoded from
the `google.rpc.Status` details the server attaches to every error.

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
    "AlreadyExistsError",
    "GraphrunError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RunCancelledError",
    "RunFailedError",
    "RunTimeoutError",
    "ThreadBusyError",
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


class InvalidArgumentError(GraphrunError):
    """The request was malformed; `field_violations` names every bad field. Don't retry as is."""


class NotFoundError(GraphrunError):
    """The thread, run, assistant or checkpoint does not exist (see `reason`)."""


class PermissionDeniedError(GraphrunError):
    """The caller may not do this (e.g. put a Store item under another caller's namespace)."""


class AlreadyExistsError(GraphrunError):
    """A thread with the requested id already exists."""


class ThreadBusyError(GraphrunError):
    """The thread has a run in flight; retrying after it ends may succeed."""


class RunFailedError(GraphrunError):
    """The run ended ERROR: the graph, a model or a tool raised. The thread stays usable."""


class RunTimeoutError(GraphrunError):
    """The call's deadline or the run's `timeout` passed; completed steps are kept."""


class RunCancelledError(GraphrunError):
    """The run or the call was cancelled before the run finished."""


class UnavailableError(GraphrunError):
    """The server (or its database) cannot be reached right now; retrying may help.

    A `join` whose replica shuts down ends with this error, reason
    `SERVER_DRAINING` and `last_sequence` set: join again after that sequence.
    """


_BY_CODE: dict[grpc.StatusCode, type[GraphrunError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.DEADLINE_EXCEEDED: RunTimeoutError,
    grpc.StatusCode.CANCELLED: RunCancelledError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}
_BY_REASON: dict[str, type[GraphrunError]] = {
    "THREAD_BUSY": ThreadBusyError,
    "RUN_FAILED": RunFailedError,
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
        return rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        raw = _metadata_value(error.trailing_metadata(), _DETAILS_KEY)  # type: ignore[attr-defined]
        return status_pb2.Status.FromString(raw) if raw else None


def _initial_metadata(error: grpc.RpcError) -> Iterable[tuple[str, Any]] | None:
    try:
        return error.initial_metadata()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a call that never got that far has none
        return None


def from_rpc_error(error: grpc.RpcError, *, run_id: str | None = None, thread_id: str | None = None) -> GraphrunError:
    """Translate a `grpc.RpcError` (sync or aio) into the matching `GraphrunError`."""
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    message: str = error.details() or ""  # type: ignore[attr-defined]
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
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, GraphrunError)
    return cls(code, message, reason=reason, metadata=metadata, field_violations=violations,
               retry_delay=retry_delay, run_id=run_id, thread_id=thread_id)
