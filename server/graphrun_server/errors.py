"""Domain errors and their one mapping to gRPC statuses.

Everything below the servicers raises `GraphrunError` subclasses; the servicers
turn them into a `google.rpc.Status` with `ErrorInfo` (domain `graphrun`) and,
where it helps, `BadRequest` or `RetryInfo` details. A client can tell from the
code alone whether retrying may help (see the README's error table).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "graphrun"


class GraphrunError(Exception):
    """An error with a gRPC code, an ErrorInfo reason and metadata for the client."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.metadata = {k: str(v) for k, v in (metadata or {}).items() if v is not None}
        self.retry_after = retry_after

    def details(self) -> list:
        """Extra google.rpc detail messages besides ErrorInfo."""
        return []

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        details = [info, *self.details()]
        if self.retry_after is not None:
            details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
                seconds=int(self.retry_after), nanos=int((self.retry_after % 1) * 1e9))))
        packed = []
        for d in details:
            a = any_pb2.Any()
            a.Pack(d)
            packed.append(a)
        return status_pb2.Status(code=getattr(code_pb2, self.code.name), message=self.message, details=packed)


@dataclass
class FieldViolation:
    """One invalid field: `field` is a path like `spec.thread_id`."""

    field: str
    description: str


class InvalidArgument(GraphrunError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation):
        self.violations = violations if isinstance(violations, list) else [violations]
        text = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request: {text}")

    def details(self) -> list:
        return [error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in self.violations])]


def invalid(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument(FieldViolation(field_path, description))


class NotFound(GraphrunError):
    code = grpc.StatusCode.NOT_FOUND


class ThreadNotFound(NotFound):
    reason = "THREAD_NOT_FOUND"

    def __init__(self, thread_id: str):
        super().__init__(f"thread {thread_id} not found", metadata={"thread_id": thread_id})


class AssistantNotFound(NotFound):
    reason = "ASSISTANT_NOT_FOUND"

    def __init__(self, assistant_id: str):
        super().__init__(f"assistant {assistant_id!r} not found", metadata={"assistant_id": assistant_id})


class CheckpointNotFound(NotFound):
    reason = "CHECKPOINT_NOT_FOUND"

    def __init__(self, thread_id: str, checkpoint_id: str):
        super().__init__(f"thread {thread_id} has no checkpoint {checkpoint_id}",
                         metadata={"thread_id": thread_id, "checkpoint_id": checkpoint_id})


class ThreadAlreadyExists(GraphrunError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "THREAD_ALREADY_EXISTS"

    def __init__(self, thread_id: str):
        super().__init__(f"thread {thread_id} already exists", metadata={"thread_id": thread_id})


class ThreadBusy(GraphrunError):
    """The thread has a run in flight; retrying after it ends may succeed."""

    code = grpc.StatusCode.ABORTED
    reason = "THREAD_BUSY"

    def __init__(self, thread_id: str, run_id: str | None = None):
        super().__init__(f"thread {thread_id} already has a run in flight", metadata={"thread_id": thread_id, "run_id": run_id})


class ThreadInterrupted(GraphrunError):
    """New input would silently discard the question the thread is waiting on."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "THREAD_INTERRUPTED"

    def __init__(self, thread_id: str):
        super().__init__(
            f"thread {thread_id} is waiting on an interrupt; answer it with command.resume, continue without "
            "input, or move on explicitly with command.goto / ThreadService.UpdateState",
            metadata={"thread_id": thread_id})


class ServerDraining(GraphrunError):
    """This replica is shutting down; the run continues elsewhere and can be joined again."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "SERVER_DRAINING"

    def __init__(self, run_id: str, last_sequence: int):
        super().__init__(f"this server is shutting down; join run {run_id} again after sequence {last_sequence}",
                         metadata={"run_id": run_id, "last_sequence": str(last_sequence)}, retry_after=0.5)


class RunNotFound(NotFound):
    reason = "RUN_NOT_FOUND"

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} not found", metadata={"run_id": run_id})


class NoGraphForThread(GraphrunError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "THREAD_HAS_NO_ASSISTANT"

    def __init__(self, thread_id: str):
        super().__init__(f"thread {thread_id} has had no run yet, so it has no graph to update its state with",
                         metadata={"thread_id": thread_id})


class QueueFull(GraphrunError):
    """Too many runs wait for a replica; retrying after a while may succeed."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "QUEUE_FULL"

    def __init__(self, pending: int):
        super().__init__(f"{pending} runs are already waiting to execute; retry later",
                         metadata={"pending": str(pending)}, retry_after=1.0)


class DatabaseUnavailable(GraphrunError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"

    def __init__(self, message: str = "the database is not reachable"):
        super().__init__(message, retry_after=1.0)


# A run that did not succeed, by its final status: the call's code and ErrorInfo reason.
RUN_FAILURE_CODES = {
    "error": (grpc.StatusCode.ABORTED, "RUN_FAILED", "failed"),
    "timeout": (grpc.StatusCode.DEADLINE_EXCEEDED, "RUN_TIMEOUT", "timed out"),
    "cancelled": (grpc.StatusCode.CANCELLED, "RUN_CANCELLED", "was cancelled"),
}


class RunFailure(GraphrunError):
    """A run that ended ERROR, TIMEOUT or CANCELLED, as the caller of Wait/Stream sees it."""

    def __init__(self, status: str, run_id: str, thread_id: str, error_type: str, message: str):
        self.code, self.reason, verb = RUN_FAILURE_CODES[status]
        super().__init__(f"run {run_id} {verb}: {error_type}: {message}",
                         metadata={"run_id": run_id, "thread_id": thread_id, "error_type": error_type})
