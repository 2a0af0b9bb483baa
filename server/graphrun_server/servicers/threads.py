"""ThreadService: thread records and their checkpointed state."""

from __future__ import annotations

from graphrun.v1 import state_pb2, thread_service_pb2 as pb, thread_service_pb2_grpc

from ..errors import FieldViolation, InvalidArgument
from ..threads import Threads
from .convert import (MAX_INPUT_BYTES, MAX_SMALL_BYTES, check_uuid, parse_checkpoint_ns, require_uuid,
                      state_to_proto, struct_to_dict, thread_to_proto)
from .errors import rpc


def _optional_uuid(value: str, field_path: str) -> str | None:
    return require_uuid(value, field_path) if value else None


class ThreadServicer(thread_service_pb2_grpc.ThreadServiceServicer):
    def __init__(self, threads: Threads):
        self.threads = threads

    @rpc
    async def Create(self, request, context):
        violations: list[FieldViolation] = []
        check_uuid(request.thread_id, "thread_id", violations, required=False)
        if request.metadata.ByteSize() > MAX_SMALL_BYTES:
            violations.append(FieldViolation("metadata", f"is larger than {MAX_SMALL_BYTES} bytes"))
        if violations:
            raise InvalidArgument(violations)
        thread = await self.threads.create(_optional_uuid(request.thread_id, "thread_id"),
                                           struct_to_dict(request.metadata, "metadata"))
        return pb.ThreadServiceCreateResponse(thread=thread_to_proto(thread))

    @rpc
    async def Get(self, request, context):
        thread = await self.threads.get(require_uuid(request.thread_id, "thread_id"))
        return pb.ThreadServiceGetResponse(thread=thread_to_proto(thread))

    @rpc
    async def Delete(self, request, context):
        await self.threads.delete(require_uuid(request.thread_id, "thread_id"))
        return pb.ThreadServiceDeleteResponse()

    @rpc
    async def GetState(self, request, context):
        state = await self.threads.get_state(require_uuid(request.thread_id, "thread_id"),
                                             _optional_uuid(request.checkpoint_id, "checkpoint_id"),
                                             parse_checkpoint_ns(request.checkpoint_ns), request.subgraphs)
        return pb.ThreadServiceGetStateResponse(state=state_to_proto(state))

    @rpc
    async def GetHistory(self, request, context):
        states, token = await self.threads.get_history(require_uuid(request.thread_id, "thread_id"),
                                                       request.page_size, request.page_token,
                                                       parse_checkpoint_ns(request.checkpoint_ns))
        return pb.ThreadServiceGetHistoryResponse(states=[state_to_proto(s) for s in states], next_page_token=token)

    @rpc
    async def UpdateState(self, request, context):
        if request.values.ByteSize() > MAX_INPUT_BYTES:
            raise InvalidArgument(FieldViolation("values", f"is larger than {MAX_INPUT_BYTES} bytes"))
        ref = await self.threads.update_state(
            require_uuid(request.thread_id, "thread_id"),
            struct_to_dict(request.values, "values") if request.HasField("values") else None,
            request.as_node or None, _optional_uuid(request.checkpoint_id, "checkpoint_id"),
            parse_checkpoint_ns(request.checkpoint_ns))
        return pb.ThreadServiceUpdateStateResponse(checkpoint=state_pb2.CheckpointRef(**ref))
