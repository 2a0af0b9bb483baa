"""ThreadService: thread records and their checkpointed state."""

from __future__ import annotations

from graphrun.v1 import state_pb2, thread_pb2, thread_service_pb2 as pb, thread_service_pb2_grpc

from ..errors import FieldViolation, InvalidArgument
from ..threads import Threads
from .convert import (
    MAX_INPUT_BYTES,
    MAX_PAGE_SIZE,
    MAX_SMALL_BYTES,
    check_uuid,
    duration_seconds,
    parse_checkpoint_ns,
    require_uuid,
    state_to_proto,
    struct_to_dict,
    thread_to_proto,
)
from .errors import rpc

# ThreadStatus -> the status a thread record has.
_THREAD_STATUSES = {
    thread_pb2.THREAD_STATUS_IDLE: "idle",
    thread_pb2.THREAD_STATUS_BUSY: "busy",
    thread_pb2.THREAD_STATUS_INTERRUPTED: "interrupted",
    thread_pb2.THREAD_STATUS_ERROR: "error",
}


_TTL_STRATEGIES = {
    thread_pb2.TTL_STRATEGY_UNSPECIFIED: "delete",
    thread_pb2.TTL_STRATEGY_DELETE: "delete",
    thread_pb2.TTL_STRATEGY_KEEP_LATEST: "keep_latest",
}
_PRUNE_STRATEGIES = {
    pb.PRUNE_STRATEGY_UNSPECIFIED: "keep_latest",
    pb.PRUNE_STRATEGY_KEEP_LATEST: "keep_latest",
    pb.PRUNE_STRATEGY_DELETE: "delete",
}


def _optional_uuid(value: str, field_path: str) -> str | None:
    return require_uuid(value, field_path) if value else None


class ThreadServicer(thread_service_pb2_grpc.ThreadServiceServicer):
    def __init__(self, threads: Threads, default_ttl_minutes: float | None = None):
        self.threads = threads
        self.default_ttl = default_ttl_minutes  # checkpointer.ttl.default_ttl: what expires_at counts with

    def _thread(self, thread):
        return thread_to_proto(thread, self.default_ttl)

    @rpc
    async def Create(self, request, context):
        violations: list[FieldViolation] = []
        check_uuid(request.thread_id, "thread_id", violations, required=False)
        if request.metadata.ByteSize() > MAX_SMALL_BYTES:
            violations.append(FieldViolation("metadata", f"is larger than {MAX_SMALL_BYTES} bytes"))
        ttl = None
        if request.HasField("ttl"):
            seconds = duration_seconds(request.ttl.ttl, "ttl.ttl", violations)
            if seconds is None or seconds < 60:
                violations.append(FieldViolation("ttl.ttl", "must be at least a minute"))
            if request.ttl.strategy not in _TTL_STRATEGIES:
                violations.append(FieldViolation("ttl.strategy", f"unknown value {request.ttl.strategy}"))
            ttl = ((seconds or 0) / 60, _TTL_STRATEGIES.get(request.ttl.strategy))
        if violations:
            raise InvalidArgument(violations)
        thread = await self.threads.create(
            _optional_uuid(request.thread_id, "thread_id"), struct_to_dict(request.metadata, "metadata"), ttl
        )
        return pb.ThreadServiceCreateResponse(thread=self._thread(thread))

    @rpc
    async def Get(self, request, context):
        thread = await self.threads.get(require_uuid(request.thread_id, "thread_id"))
        return pb.ThreadServiceGetResponse(thread=self._thread(thread))

    @rpc
    async def Delete(self, request, context):
        await self.threads.delete(require_uuid(request.thread_id, "thread_id"))
        return pb.ThreadServiceDeleteResponse()

    @rpc
    async def GetState(self, request, context):
        state = await self.threads.get_state(
            require_uuid(request.thread_id, "thread_id"),
            _optional_uuid(request.checkpoint_id, "checkpoint_id"),
            parse_checkpoint_ns(request.checkpoint_ns),
            request.subgraphs,
        )
        return pb.ThreadServiceGetStateResponse(state=state_to_proto(state))

    @rpc
    async def GetHistory(self, request, context):
        states, token = await self.threads.get_history(
            require_uuid(request.thread_id, "thread_id"),
            request.page_size,
            request.page_token,
            parse_checkpoint_ns(request.checkpoint_ns),
        )
        return pb.ThreadServiceGetHistoryResponse(states=[state_to_proto(s) for s in states], next_page_token=token)

    @rpc
    async def UpdateState(self, request, context):
        if request.values.ByteSize() > MAX_INPUT_BYTES:
            raise InvalidArgument(FieldViolation("values", f"is larger than {MAX_INPUT_BYTES} bytes"))
        ref = await self.threads.update_state(
            require_uuid(request.thread_id, "thread_id"),
            struct_to_dict(request.values, "values") if request.HasField("values") else None,
            request.as_node or None,
            _optional_uuid(request.checkpoint_id, "checkpoint_id"),
            parse_checkpoint_ns(request.checkpoint_ns),
        )
        return pb.ThreadServiceUpdateStateResponse(checkpoint=state_pb2.CheckpointRef(**ref))

    @rpc
    async def List(self, request, context):
        violations: list[FieldViolation] = []
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for 20)"))
        statuses = []
        for i, status in enumerate(request.statuses):
            if status in _THREAD_STATUSES:
                statuses.append(_THREAD_STATUSES[status])
            else:
                violations.append(
                    FieldViolation(
                        f"statuses[{i}]",
                        f"{status} is not a thread status; expected one of "
                        + ", ".join(thread_pb2.ThreadStatus.Name(v) for v in _THREAD_STATUSES),
                    )
                )
        if request.metadata.ByteSize() > MAX_SMALL_BYTES:
            violations.append(FieldViolation("metadata", f"is larger than {MAX_SMALL_BYTES} bytes"))
        if len(request.assistant_id) > 256 or "\x00" in request.assistant_id:
            violations.append(FieldViolation("assistant_id", "must be an assistant id: at most 256 characters, no NUL"))
        if violations:
            raise InvalidArgument(violations)
        threads, token = await self.threads.list(
            statuses,
            struct_to_dict(request.metadata, "metadata"),
            request.assistant_id or None,
            request.page_size or 20,
            request.page_token,
        )
        return pb.ThreadServiceListResponse(threads=[self._thread(t) for t in threads], next_page_token=token)

    @rpc
    async def Copy(self, request, context):
        thread = await self.threads.copy(
            require_uuid(request.thread_id, "thread_id"), _optional_uuid(request.new_thread_id, "new_thread_id")
        )
        return pb.ThreadServiceCopyResponse(thread=self._thread(thread))

    @rpc
    async def Prune(self, request, context):
        thread_id = require_uuid(request.thread_id, "thread_id")
        if request.strategy not in _PRUNE_STRATEGIES:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "strategy",
                        f"unknown value {request.strategy}; expected one of "
                        + ", ".join(pb.PruneStrategy.Name(v) for v in _PRUNE_STRATEGIES),
                    )
                ]
            )
        thread, deleted = await self.threads.prune(thread_id, _PRUNE_STRATEGIES[request.strategy])
        return pb.ThreadServicePruneResponse(
            thread=self._thread(thread) if thread else None, checkpoints_deleted=deleted
        )
