from graphrun.v1 import assistant_pb2 as _assistant_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AssistantServiceListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssistantServiceListResponse(_message.Message):
    __slots__ = ("assistants",)
    ASSISTANTS_FIELD_NUMBER: _ClassVar[int]
    assistants: _containers.RepeatedCompositeFieldContainer[_assistant_pb2.Assistant]
    def __init__(self, assistants: _Optional[_Iterable[_Union[_assistant_pb2.Assistant, _Mapping]]] = ...) -> None: ...

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
