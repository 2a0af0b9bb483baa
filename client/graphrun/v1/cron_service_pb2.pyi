from google.protobuf import field_mask_pb2 as _field_mask_pb2
from graphrun.v1 import cron_pb2 as _cron_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CronServiceCreateRequest(_message.Message):
    __slots__ = ("cron",)
    CRON_FIELD_NUMBER: _ClassVar[int]
    cron: _cron_pb2.Cron
    def __init__(self, cron: _Optional[_Union[_cron_pb2.Cron, _Mapping]] = ...) -> None: ...

class CronServiceCreateResponse(_message.Message):
    __slots__ = ("cron",)
    CRON_FIELD_NUMBER: _ClassVar[int]
    cron: _cron_pb2.Cron
    def __init__(self, cron: _Optional[_Union[_cron_pb2.Cron, _Mapping]] = ...) -> None: ...

class CronServiceGetRequest(_message.Message):
    __slots__ = ("cron_id",)
    CRON_ID_FIELD_NUMBER: _ClassVar[int]
    cron_id: str
    def __init__(self, cron_id: _Optional[str] = ...) -> None: ...

class CronServiceGetResponse(_message.Message):
    __slots__ = ("cron",)
    CRON_FIELD_NUMBER: _ClassVar[int]
    cron: _cron_pb2.Cron
    def __init__(self, cron: _Optional[_Union[_cron_pb2.Cron, _Mapping]] = ...) -> None: ...

class CronServiceUpdateRequest(_message.Message):
    __slots__ = ("cron", "update_mask")
    CRON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    cron: _cron_pb2.Cron
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, cron: _Optional[_Union[_cron_pb2.Cron, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class CronServiceUpdateResponse(_message.Message):
    __slots__ = ("cron",)
    CRON_FIELD_NUMBER: _ClassVar[int]
    cron: _cron_pb2.Cron
    def __init__(self, cron: _Optional[_Union[_cron_pb2.Cron, _Mapping]] = ...) -> None: ...

class CronServiceDeleteRequest(_message.Message):
    __slots__ = ("cron_id",)
    CRON_ID_FIELD_NUMBER: _ClassVar[int]
    cron_id: str
    def __init__(self, cron_id: _Optional[str] = ...) -> None: ...

class CronServiceDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CronServiceListRequest(_message.Message):
    __slots__ = ("assistant_id", "thread_id", "page_size", "page_token")
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    assistant_id: str
    thread_id: str
    page_size: int
    page_token: str
    def __init__(self, assistant_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CronServiceListResponse(_message.Message):
    __slots__ = ("crons", "next_page_token")
    CRONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    crons: _containers.RepeatedCompositeFieldContainer[_cron_pb2.Cron]
    next_page_token: str
    def __init__(self, crons: _Optional[_Iterable[_Union[_cron_pb2.Cron, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
