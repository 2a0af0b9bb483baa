from google.protobuf import struct_pb2 as _struct_pb2
from graphrun.v1 import state_pb2 as _state_pb2
from graphrun.v1 import thread_pb2 as _thread_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PruneStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRUNE_STRATEGY_UNSPECIFIED: _ClassVar[PruneStrategy]
    PRUNE_STRATEGY_KEEP_LATEST: _ClassVar[PruneStrategy]
    PRUNE_STRATEGY_DELETE: _ClassVar[PruneStrategy]
PRUNE_STRATEGY_UNSPECIFIED: PruneStrategy
PRUNE_STRATEGY_KEEP_LATEST: PruneStrategy
PRUNE_STRATEGY_DELETE: PruneStrategy

class ThreadServiceCreateRequest(_message.Message):
    __slots__ = ("thread_id", "metadata", "ttl")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    metadata: _struct_pb2.Struct
    ttl: _thread_pb2.ThreadTtl
    def __init__(self, thread_id: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., ttl: _Optional[_Union[_thread_pb2.ThreadTtl, _Mapping]] = ...) -> None: ...

class ThreadServiceCreateResponse(_message.Message):
    __slots__ = ("thread",)
    THREAD_FIELD_NUMBER: _ClassVar[int]
    thread: _thread_pb2.Thread
    def __init__(self, thread: _Optional[_Union[_thread_pb2.Thread, _Mapping]] = ...) -> None: ...

class ThreadServiceGetRequest(_message.Message):
    __slots__ = ("thread_id",)
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class ThreadServiceGetResponse(_message.Message):
    __slots__ = ("thread",)
    THREAD_FIELD_NUMBER: _ClassVar[int]
    thread: _thread_pb2.Thread
    def __init__(self, thread: _Optional[_Union[_thread_pb2.Thread, _Mapping]] = ...) -> None: ...

class ThreadServiceDeleteRequest(_message.Message):
    __slots__ = ("thread_id",)
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class ThreadServiceDeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ThreadServiceGetStateRequest(_message.Message):
    __slots__ = ("thread_id", "checkpoint_id", "checkpoint_ns", "subgraphs")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NS_FIELD_NUMBER: _ClassVar[int]
    SUBGRAPHS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    checkpoint_id: str
    checkpoint_ns: str
    subgraphs: bool
    def __init__(self, thread_id: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., checkpoint_ns: _Optional[str] = ..., subgraphs: _Optional[bool] = ...) -> None: ...

class ThreadServiceGetStateResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _state_pb2.ThreadState
    def __init__(self, state: _Optional[_Union[_state_pb2.ThreadState, _Mapping]] = ...) -> None: ...

class ThreadServiceGetHistoryRequest(_message.Message):
    __slots__ = ("thread_id", "page_size", "page_token", "checkpoint_ns")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    page_size: int
    page_token: str
    checkpoint_ns: str
    def __init__(self, thread_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., checkpoint_ns: _Optional[str] = ...) -> None: ...

class ThreadServiceGetHistoryResponse(_message.Message):
    __slots__ = ("states", "next_page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedCompositeFieldContainer[_state_pb2.ThreadState]
    next_page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_state_pb2.ThreadState, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ThreadServiceUpdateStateRequest(_message.Message):
    __slots__ = ("thread_id", "values", "as_node", "checkpoint_id", "checkpoint_ns")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    AS_NODE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_NS_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    values: _struct_pb2.Struct
    as_node: str
    checkpoint_id: str
    checkpoint_ns: str
    def __init__(self, thread_id: _Optional[str] = ..., values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., as_node: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., checkpoint_ns: _Optional[str] = ...) -> None: ...

class ThreadServiceUpdateStateResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _state_pb2.CheckpointRef
    def __init__(self, checkpoint: _Optional[_Union[_state_pb2.CheckpointRef, _Mapping]] = ...) -> None: ...

class ThreadServiceListRequest(_message.Message):
    __slots__ = ("statuses", "metadata", "assistant_id", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_thread_pb2.ThreadStatus]
    metadata: _struct_pb2.Struct
    assistant_id: str
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[_thread_pb2.ThreadStatus, str]]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., assistant_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ThreadServiceListResponse(_message.Message):
    __slots__ = ("threads", "next_page_token")
    THREADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    threads: _containers.RepeatedCompositeFieldContainer[_thread_pb2.Thread]
    next_page_token: str
    def __init__(self, threads: _Optional[_Iterable[_Union[_thread_pb2.Thread, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ThreadServiceCopyRequest(_message.Message):
    __slots__ = ("thread_id", "new_thread_id")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    new_thread_id: str
    def __init__(self, thread_id: _Optional[str] = ..., new_thread_id: _Optional[str] = ...) -> None: ...

class ThreadServiceCopyResponse(_message.Message):
    __slots__ = ("thread",)
    THREAD_FIELD_NUMBER: _ClassVar[int]
    thread: _thread_pb2.Thread
    def __init__(self, thread: _Optional[_Union[_thread_pb2.Thread, _Mapping]] = ...) -> None: ...

class ThreadServicePruneRequest(_message.Message):
    __slots__ = ("thread_id", "strategy")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    strategy: PruneStrategy
    def __init__(self, thread_id: _Optional[str] = ..., strategy: _Optional[_Union[PruneStrategy, str]] = ...) -> None: ...

class ThreadServicePruneResponse(_message.Message):
    __slots__ = ("thread", "checkpoints_deleted")
    THREAD_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    thread: _thread_pb2.Thread
    checkpoints_deleted: int
    def __init__(self, thread: _Optional[_Union[_thread_pb2.Thread, _Mapping]] = ..., checkpoints_deleted: _Optional[int] = ...) -> None: ...
