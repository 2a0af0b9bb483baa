from google.protobuf import struct_pb2 as _struct_pb2
from graphrun.v1 import assistant_pb2 as _assistant_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssistantServiceListRequest(_message.Message):
    __slots__ = ("graph_id", "metadata", "page_size", "page_token")
    GRAPH_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    graph_id: str
    metadata: _struct_pb2.Struct
    page_size: int
    page_token: str
    def __init__(self, graph_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AssistantServiceListResponse(_message.Message):
    __slots__ = ("assistants", "next_page_token")
    ASSISTANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    assistants: _containers.RepeatedCompositeFieldContainer[_assistant_pb2.Assistant]
    next_page_token: str
    def __init__(self, assistants: _Optional[_Iterable[_Union[_assistant_pb2.Assistant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AssistantServiceGetRequest(_message.Message):
    __slots__ = ("assistant_id",)
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    def __init__(self, assistant_id: _Optional[str] = ...) -> None: ...

class AssistantServiceGetResponse(_message.Message):
    __slots__ = ("assistant",)
    ASSISTANT_FIELD_NUMBER: _ClassVar[int]
    assistant: _assistant_pb2.Assistant
    def __init__(self, assistant: _Optional[_Union[_assistant_pb2.Assistant, _Mapping]] = ...) -> None: ...

class AssistantServiceCreateRequest(_message.Message):
    __slots__ = ("assistant_id", "graph_id", "name", "description", "config", "context", "metadata", "webhook")
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    GRAPH_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    graph_id: str
    name: str
    description: str
    config: _struct_pb2.Struct
    context: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    webhook: str
    def __init__(self, assistant_id: _Optional[str] = ..., graph_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., webhook: _Optional[str] = ...) -> None: ...

class AssistantServiceCreateResponse(_message.Message):
    __slots__ = ("assistant",)
    ASSISTANT_FIELD_NUMBER: _ClassVar[int]
    assistant: _assistant_pb2.Assistant
    def __init__(self, assistant: _Optional[_Union[_assistant_pb2.Assistant, _Mapping]] = ...) -> None: ...

class AssistantServiceUpdateRequest(_message.Message):
    __slots__ = ("assistant_id", "graph_id", "name", "description", "config", "context", "metadata", "webhook")
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    GRAPH_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    graph_id: str
    name: str
    description: str
    config: _struct_pb2.Struct
    context: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    webhook: str
    def __init__(self, assistant_id: _Optional[str] = ..., graph_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., webhook: _Optional[str] = ...) -> None: ...

class AssistantServiceUpdateResponse(_message.Message):
    __slots__ = ("assistant",)
    ASSISTANT_FIELD_NUMBER: _ClassVar[int]
    assistant: _assistant_pb2.Assistant
    def __init__(self, assistant: _Optional[_Union[_assistant_pb2.Assistant, _Mapping]] = ...) -> None: ...

class AssistantServiceDeleteRequest(_message.Message):
    __slots__ = ("assistant_id",)
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    def __init__(self, assistant_id: _Optional[str] = ...) -> None: ...

class AssistantServiceDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssistantServiceListVersionsRequest(_message.Message):
    __slots__ = ("assistant_id", "page_size", "page_token")
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    page_size: int
    page_token: str
    def __init__(self, assistant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AssistantServiceListVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_assistant_pb2.AssistantVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[_assistant_pb2.AssistantVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AssistantServiceSetLatestRequest(_message.Message):
    __slots__ = ("assistant_id", "version")
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    version: int
    def __init__(self, assistant_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class AssistantServiceSetLatestResponse(_message.Message):
    __slots__ = ("assistant",)
    ASSISTANT_FIELD_NUMBER: _ClassVar[int]
    assistant: _assistant_pb2.Assistant
    def __init__(self, assistant: _Optional[_Union[_assistant_pb2.Assistant, _Mapping]] = ...) -> None: ...
