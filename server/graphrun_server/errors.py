"""Domain errors and their one mapping to gRPC statuses.

Everything below the servicers raises `GraphrunError` subclasses; the servicers
turn them into a `google.rpc.Status` with `ErrorInfo` (domain `graphrun`) and,
where it helps, `BadRequest` or `RetryInfo` details. A client can tell from the
code alone whether retrying may help (see the README's error table).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "graphrun"

# SQLSTATEs that graphrun's SQL functions raise (server/graphrun_server/sql/), defined once here:
# a `{{SQLSTATE_…}}` in a SQL file is replaced by the value below when the functions are applied.
# Class GR is not one of PostgreSQL's, so none of them can be mistaken for its own errors.
SQLSTATE_NOT_OWNER = "GR001"  # the attempt no longer owns its run: the write is refused (graphrun_fence)
SQLSTATE_THREAD_NOT_FOUND = "GR404"  # no such thread, or another caller's (ThreadNotFound)
SQLSTATE_THREAD_BUSY = "GR409"  # a run in flight, DETAIL its id; or the thread being changed (ThreadBusy)
SQLSTATE_THREAD_INTERRUPTED = "GR412"  # new input for a thread waiting on an interrupt (ThreadInterrupted)

# ErrorInfo reasons that the SQL functions also store or read in a run's `error`
# (`{{REASON_…}}` in a SQL file), and the errors below carry.
REASON_THREAD_INTERRUPTED = "THREAD_INTERRUPTED"
REASON_RUN_FAILED = "RUN_FAILED"
REASON_RUN_TIMEOUT = "RUN_TIMEOUT"
REASON_RUN_CANCELLED = "RUN_CANCELLED"

# Errors echo what callers sent (ids, node names, config keys, a graph's error message). Bounded
# (in UTF-8 bytes), a status always fits the 8 KiB of trailing metadata gRPC clients accept by
# default; unbounded, a long id made the client fail with RESOURCE_EXHAUSTED and no details.
MAX_MESSAGE_BYTES = 512
MAX_METADATA_BYTES = 128
MAX_VIOLATIONS = 10
MAX_FIELD_BYTES = 100
MAX_DESCRIPTION_BYTES = 200


def clip(text: str, limit: int) -> str:
    """text, cut to at most `limit` UTF-8 bytes (marked with an ellipsis)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


class GraphrunError(Exception):
    """An error with a gRPC code, an ErrorInfo reason and metadata for the client."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None, retry_after: float | None = None):
        message = clip(message, MAX_MESSAGE_BYTES)
        super().__init__(message)
        self.message = message
        self.metadata = {k: clip(str(v), MAX_METADATA_BYTES) for k, v in (metadata or {}).items() if v is not None}
        self.retry_after = retry_after

    def details(self) -> list:
        """Extra google.rpc detail messages besides ErrorInfo."""
        return []

    def to_status(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        details = [info, *self.details()]
        if self.retry_after is not None:
            details.append(
                error_details_pb2.RetryInfo(
                    retry_delay=duration_pb2.Duration(
                        seconds=int(self.retry_after), nanos=int((self.retry_after % 1) * 1e9)
                    )
                )
            )
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
        violations = violations if isinstance(violations, list) else [violations]
        self.violations = [
            FieldViolation(clip(v.field, MAX_FIELD_BYTES), clip(v.description, MAX_DESCRIPTION_BYTES))
            for v in violations[:MAX_VIOLATIONS]
        ]
        more = len(violations) - len(self.violations)
        text = clip("; ".join(f"{v.field}: {v.description}" for v in self.violations), MAX_MESSAGE_BYTES - 64)
        super().__init__(f"invalid request: {text}" + (f"; and {more} more" if more > 0 else ""))

    def details(self) -> list:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            )
        ]


def invalid(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument(FieldViolation(field_path, description))


@contextlib.contextmanager
def field_prefix(prefix: str) -> Iterator[None]:
    """Name the fields of an InvalidArgument raised inside from a message one level up: the
    RunSpec checks say `spec.input`, a cron's is `cron.spec.input`."""
    try:
        yield
    except InvalidArgument as exc:
        raise InvalidArgument([FieldViolation(prefix + v.field, v.description) for v in exc.violations]) from None


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


class AssistantVersionNotFound(NotFound):
    reason = "ASSISTANT_VERSION_NOT_FOUND"

    def __init__(self, assistant_id: str, version: int):
        super().__init__(
            f"assistant {assistant_id!r} has no version {version}",
            metadata={"assistant_id": assistant_id, "version": str(version)},
        )


class AssistantAlreadyExists(GraphrunError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ASSISTANT_ALREADY_EXISTS"

    def __init__(self, assistant_id: str):
        super().__init__(f"assistant {assistant_id} already exists", metadata={"assistant_id": assistant_id})


class GraphNotServed(GraphrunError):
    """A created assistant names a graph this server no longer serves (its project changed)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "GRAPH_NOT_SERVED"

    def __init__(self, assistant_id: str, graph_id: str):
        super().__init__(
            f"assistant {assistant_id} runs graph {graph_id!r}, which this server does not serve; "
            "update the assistant to a served graph_id",
            metadata={"assistant_id": assistant_id, "graph_id": graph_id},
        )


class CheckpointNotFound(NotFound):
    reason = "CHECKPOINT_NOT_FOUND"

    def __init__(self, thread_id: str, checkpoint_id: str, checkpoint_ns: str = ""):
        where = f" in checkpoint_ns {checkpoint_ns!r}" if checkpoint_ns else ""
        super().__init__(
            f"thread {thread_id} has no checkpoint {checkpoint_id}{where}",
            metadata={"thread_id": thread_id, "checkpoint_id": checkpoint_id, "checkpoint_ns": checkpoint_ns or None},
        )


class CheckpointNamespaceNotFound(NotFound):
    """A subgraph namespace the graph has, but with another task id than any the thread ran."""

    reason = "CHECKPOINT_NS_NOT_FOUND"

    def __init__(self, thread_id: str, checkpoint_ns: str):
        super().__init__(
            f"thread {thread_id} has no checkpoint in checkpoint_ns {checkpoint_ns!r} (a subgraph "
            "task's namespace, as GetState's Task.checkpoint_ns shows it)",
            metadata={"thread_id": thread_id, "checkpoint_ns": checkpoint_ns},
        )


class CronNotFound(NotFound):
    reason = "CRON_NOT_FOUND"

    def __init__(self, cron_id: str):
        super().__init__(f"cron {cron_id} not found", metadata={"cron_id": cron_id})


class CronAlreadyExists(GraphrunError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "CRON_ALREADY_EXISTS"

    def __init__(self, cron_id: str):
        super().__init__(f"cron {cron_id} already exists", metadata={"cron_id": cron_id})


class RequestIdReused(GraphrunError):
    """The caller sent another run under a request id it used for a different one."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "REQUEST_ID_REUSED"

    def __init__(self, request_id: str, run_id: str):
        super().__init__(
            f"request_id {request_id!r} already started run {run_id} with a different spec",
            metadata={"request_id": request_id, "run_id": run_id},
        )


class ThreadAlreadyExists(GraphrunError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "THREAD_ALREADY_EXISTS"

    def __init__(self, thread_id: str):
        super().__init__(f"thread {thread_id} already exists", metadata={"thread_id": thread_id})


class PruneRefused(GraphrunError):
    """LangGraph cannot keep only the latest checkpoint of this thread (it has delta channels)."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "PRUNE_REFUSED"

    def __init__(self, thread_id: str, why: str):
        super().__init__(
            f"thread {thread_id} cannot be pruned to its latest checkpoint: {why}", metadata={"thread_id": thread_id}
        )


class ThreadBusy(GraphrunError):
    """The thread has a run in flight; retrying after it ends may succeed."""

    code = grpc.StatusCode.ABORTED
    reason = "THREAD_BUSY"

    def __init__(self, thread_id: str, run_id: str | None = None):
        super().__init__(
            f"thread {thread_id} already has a run in flight", metadata={"thread_id": thread_id, "run_id": run_id}
        )


class ThreadInterrupted(GraphrunError):
    """New input would silently discard the question the thread is waiting on."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = REASON_THREAD_INTERRUPTED

    def __init__(self, thread_id: str):
        super().__init__(
            f"thread {thread_id} is waiting on an interrupt; answer it with command.resume, continue without "
            "input, or move on explicitly with command.goto / ThreadService.UpdateState",
            metadata={"thread_id": thread_id},
        )


class ServerDraining(GraphrunError):
    """This replica is shutting down; the run continues elsewhere and can be joined again."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "SERVER_DRAINING"

    def __init__(self, run_id: str, last_sequence: int):
        super().__init__(
            f"this server is shutting down; join run {run_id} again after sequence {last_sequence}",
            metadata={"run_id": run_id, "last_sequence": str(last_sequence)},
            retry_after=0.5,
        )


class RunNotFound(NotFound):
    reason = "RUN_NOT_FOUND"

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} not found", metadata={"run_id": run_id})


class NoGraphForThread(GraphrunError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "THREAD_HAS_NO_ASSISTANT"

    def __init__(self, thread_id: str):
        super().__init__(
            f"thread {thread_id} has had no run yet, so it has no graph to update its state with",
            metadata={"thread_id": thread_id},
        )


class QueueFull(GraphrunError):
    """Too many runs wait for a replica; retrying after a while may succeed."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "QUEUE_FULL"

    def __init__(self, pending: int):
        super().__init__(
            f"{pending} runs are already waiting to execute; retry later",
            metadata={"pending": str(pending)},
            retry_after=1.0,
        )


class ReplicaBusy(GraphrunError):
    """A Wait or Stream reached a replica that already executes its maximum of runs; another
    replica, or this one a moment later, can start it."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "REPLICA_BUSY"

    def __init__(self, limit: int):
        super().__init__(
            f"this replica already executes its maximum of {limit} runs; retry shortly",
            metadata={"max_concurrent_runs": str(limit)},
            retry_after=0.5,
        )


class DatabaseUnavailable(GraphrunError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DATABASE_UNAVAILABLE"

    def __init__(self, message: str = "the database is not reachable"):
        super().__init__(message, retry_after=1.0)


# A run that did not succeed, by its final status: the call's code and ErrorInfo reason.
RUN_FAILURE_CODES = {
    "error": (grpc.StatusCode.ABORTED, REASON_RUN_FAILED, "failed"),
    "timeout": (grpc.StatusCode.DEADLINE_EXCEEDED, REASON_RUN_TIMEOUT, "timed out"),
    "cancelled": (grpc.StatusCode.CANCELLED, REASON_RUN_CANCELLED, "was cancelled"),
}


class RunFailure(GraphrunError):
    """A run that ended ERROR, TIMEOUT or CANCELLED, as the caller of Wait/Stream sees it."""

    def __init__(self, status: str, run_id: str, thread_id: str, error_type: str, message: str):
        self.code, self.reason, verb = RUN_FAILURE_CODES[status]
        super().__init__(
            f"run {run_id} {verb}: {error_type}: {message}",
            metadata={"run_id": run_id, "thread_id": thread_id, "error_type": error_type},
        )
