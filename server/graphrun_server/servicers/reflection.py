"""Server reflection that carries the protos' comments, so `grpcurl describe` shows the docs.

grpcio-reflection answers with descriptors copied from the generated `_pb2` modules, which have
no comments (protoc leaves them out of Python stubs). `make protos` also writes graphrun's
descriptors with their comments (`graphrun/v1/descriptors.binpb`); this servicer answers with
those for graphrun's files and as grpcio-reflection does for the rest.

Both reflection protocols are served: `grpc.reflection.v1`, which current grpcurl and `buf curl`
ask for first, and `grpc.reflection.v1alpha`, for older tools. grpcio-reflection implements
only v1alpha (grpc/grpc#38576); v1 is the same protocol under another package name (the same
messages with the same field numbers), so the same servicer answers both, and v1's descriptors
are v1alpha's renamed.
"""

from __future__ import annotations

from importlib import resources

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"


class DocumentedReflection(reflection.aio.ReflectionServicer):
    def __init__(self, service_names: list[str]):
        super().__init__(service_names)
        data = resources.files("graphrun.v1").joinpath("descriptors.binpb").read_bytes()
        self._documented = {
            file.name: file.SerializeToString()
            for file in descriptor_pb2.FileDescriptorSet.FromString(data).file
            if file.name.startswith("graphrun/")
        }

    async def ServerReflectionInfo(self, request_iterator, context):
        async for response in super().ServerReflectionInfo(request_iterator, context):
            if response.HasField("file_descriptor_response"):
                files = response.file_descriptor_response.file_descriptor_proto
                files[:] = [
                    self._documented.get(descriptor_pb2.FileDescriptorProto.FromString(raw).name, raw) for raw in files
                ]
            yield response


def _add_v1_descriptors(pool: descriptor_pool.DescriptorPool) -> None:
    """Put `grpc/reflection/v1/reflection.proto` in the pool: v1alpha's file with the package renamed,
    so that reflection can describe its own v1 service."""
    name = "grpc/reflection/v1/reflection.proto"
    try:
        pool.FindFileByName(name)
        return
    except KeyError:
        pass
    v1 = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(v1)
    v1.name, v1.package = name, "grpc.reflection.v1"

    def rename(type_name: str) -> str:
        return type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")

    for message in v1.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # a message or enum field (set on no other: proto2 presence)
                field.type_name = rename(field.type_name)
    for service in v1.service:
        for method in service.method:
            method.input_type, method.output_type = rename(method.input_type), rename(method.output_type)
    pool.Add(v1)


def enable(server: grpc.aio.Server, service_names: list[str]) -> None:
    _add_v1_descriptors(descriptor_pool.Default())
    servicer = DocumentedReflection([*service_names, V1_SERVICE_NAME, reflection.SERVICE_NAME])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                V1_SERVICE_NAME,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    ),
                },
            ),
        )
    )
