"""AssistantService: the graphs this server serves, with their JSON schemas."""

from __future__ import annotations

from graphrun.v1 import assistant_pb2, assistant_service_pb2 as pb, assistant_service_pb2_grpc

from ..errors import invalid
from ..registry import Assistant, Registry
from .convert import assistant_to_proto
from .errors import rpc


class AssistantServicer(assistant_service_pb2_grpc.AssistantServiceServicer):
    def __init__(self, registry: Registry):
        self.registry = registry
        # Served graphs do not change while the server runs; converting their schemas does not
        # need to happen per call (the example agent's: ~8 ms).
        self._messages: dict[str, assistant_pb2.Assistant] = {}

    def _message(self, assistant: Assistant) -> assistant_pb2.Assistant:
        message = self._messages.get(assistant.assistant_id)
        if message is None:
            message = self._messages[assistant.assistant_id] = assistant_to_proto(assistant)
        return message

    @rpc
    async def List(self, request, context):
        return pb.AssistantServiceListResponse(assistants=[self._message(a) for a in self.registry.all()])

    @rpc
    async def Get(self, request, context):
        if not request.assistant_id:
            raise invalid("assistant_id", "is required")
        return pb.AssistantServiceGetResponse(assistant=self._message(self.registry.get(request.assistant_id)))
