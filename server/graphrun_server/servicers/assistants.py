"""AssistantService: the graphs this server serves, with their JSON schemas."""

from __future__ import annotations

from graphrun.v1 import assistant_service_pb2 as pb, assistant_service_pb2_grpc

from ..errors import invalid
from ..registry import Registry
from .convert import assistant_to_proto
from .errors import rpc


class AssistantServicer(assistant_service_pb2_grpc.AssistantServiceServicer):
    def __init__(self, registry: Registry):
        self.registry = registry

    @rpc
    async def List(self, request, context):
        return pb.AssistantServiceListResponse(assistants=[assistant_to_proto(a) for a in self.registry.all()])

    @rpc
    async def Get(self, request, context):
        if not request.assistant_id:
            raise invalid("assistant_id", "is required")
        return pb.AssistantServiceGetResponse(assistant=assistant_to_proto(self.registry.get(request.assistant_id)))
