"""Server reflection that carries the protos' comments, so `grpcurl describe` shows the docs.

grpcio-reflection answers with descriptors copied from the generated `_pb2` modules, which have
no comments (protoc leaves them out of Python stubs). `make protos` also writes graphrun's
descriptors with their comments (`graphrun/v1/descriptors.binpb`); this servicer answers with
those for graphrun's files and as grpcio-reflection does for the rest.
"""

from __future__ import annotations

from importlib import resources

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc


class DocumentedReflection(reflection.aio.ReflectionServicer):
    def __init__(self, service_names: list[str]):
        super().__init__(service_names)
        data = resources.files("graphrun.v1").joinpath("descriptors.binpb").read_bytes()
        self._documented = {file.name: file.SerializeToString()
                            for file in descriptor_pb2.FileDescriptorSet.FromString(data).file
                            if file.name.startswith("graphrun/")}

    async def ServerReflectionInfo(self, request_iterator, context):
        async for response in super().ServerReflectionInfo(request_iterator, context):
            if response.HasField("file_descriptor_response"):
                files = response.file_descriptor_response.file_descriptor_proto
                files[:] = [self._documented.get(descriptor_pb2.FileDescriptorProto.FromString(raw).name, raw)
                            for raw in files]
            yield response


def enable(server: grpc.aio.Server, service_names: list[str]) -> None:
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        DocumentedReflection([*service_names, reflection.SERVICE_NAME]), server)
