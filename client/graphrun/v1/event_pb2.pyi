import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from graphrun.v1 import run_pb2 as _run_pb2
from graphrun.v1 import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_PHASE_UNSPECIFIED: _ClassVar[TaskPhase]
    TASK_PHASE_STARTED: _ClassVar[TaskPhase]
    TASK_PHASE_FINISHED: _ClassVar[TaskPhase]
TASK_PHASE_UNSPECIFIED: TaskPhase
TASK_PHASE_STARTED: TaskPhase
TASK_PHASE_FINISHED: TaskPhase

class RunEvent(_message.Message):
    __slots__ = ("sequence", "event_time", "namespace", "metadata", "values", "updates", "message", "custom", "task", "debug", "checkpoint", "langchain_event", "end")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DEBUG_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LANGCHAIN_EVENT_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    event_time: _timestamp_pb2.Timestamp
    namespace: _containers.RepeatedScalarFieldContainer[str]
    metadata: RunMetadataEvent
    values: ValuesEvent
    updates: UpdatesEvent
    message: MessageEvent
    custom: CustomEvent
    task: TaskEvent
    debug: DebugEvent
    checkpoint: CheckpointEvent
    langchain_event: LangChainEvent
    end: RunEndEvent
    def __init__(self, sequence: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., namespace: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[RunMetadataEvent, _Mapping]] = ..., values: _Optional[_Union[ValuesEvent, _Mapping]] = ..., updates: _Optional[_Union[UpdatesEvent, _Mapping]] = ..., message: _Optional[_Union[MessageEvent, _Mapping]] = ..., custom: _Optional[_Union[CustomEvent, _Mapping]] = ..., task: _Optional[_Union[TaskEvent, _Mapping]] = ..., debug: _Optional[_Union[DebugEvent, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointEvent, _Mapping]] = ..., langchain_event: _Optional[_Union[LangChainEvent, _Mapping]] = ..., end: _Optional[_Union[RunEndEvent, _Mapping]] = ...) -> None: ...

class RunMetadataEvent(_message.Message):
    __slots__ = ("run_id", "thread_id", "assistant_id", "attempt")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    thread_id: str
    assistant_id: str
    attempt: int
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class ValuesEvent(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _struct_pb2.Struct
    def __init__(self, values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpdatesEvent(_message.Message):
    __slots__ = ("node", "update")
    NODE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    node: str
    update: _struct_pb2.Value
    def __init__(self, node: _Optional[str] = ..., update: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class MessageEvent(_message.Message):
    __slots__ = ("message_id", "delta", "message", "node", "step", "metadata")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    delta: bool
    message: _struct_pb2.Struct
    node: str
    step: int
    metadata: _struct_pb2.Struct
    def __init__(self, message_id: _Optional[str] = ..., delta: _Optional[bool] = ..., message: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., node: _Optional[str] = ..., step: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CustomEvent(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _struct_pb2.Value
    def __init__(self, data: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("id", "name", "step", "phase", "error", "interrupts", "input", "triggers", "result", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    step: int
    phase: TaskPhase
    error: str
    interrupts: _containers.RepeatedCompositeFieldContainer[_state_pb2.Interrupt]
    input: _struct_pb2.Value
    triggers: _containers.RepeatedScalarFieldContainer[str]
    result: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., step: _Optional[int] = ..., phase: _Optional[_Union[TaskPhase, str]] = ..., error: _Optional[str] = ..., interrupts: _Optional[_Iterable[_Union[_state_pb2.Interrupt, _Mapping]]] = ..., input: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., triggers: _Optional[_Iterable[str]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DebugEvent(_message.Message):
    __slots__ = ("step", "timestamp", "checkpoint", "task")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    step: int
    timestamp: _timestamp_pb2.Timestamp
    checkpoint: _state_pb2.ThreadState
    task: TaskEvent
    def __init__(self, step: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checkpoint: _Optional[_Union[_state_pb2.ThreadState, _Mapping]] = ..., task: _Optional[_Union[TaskEvent, _Mapping]] = ...) -> None: ...

class CheckpointEvent(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: _state_pb2.ThreadState
    def __init__(self, state: _Optional[_Union[_state_pb2.ThreadState, _Mapping]] = ...) -> None: ...

class LangChainEvent(_message.Message):
    __slots__ = ("event", "name", "run_id", "parent_ids", "tags", "metadata", "data")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    event: str
    name: str
    run_id: str
    parent_ids: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    data: _struct_pb2.Struct
    def __init__(self, event: _Optional[str] = ..., name: _Optional[str] = ..., run_id: _Optional[str] = ..., parent_ids: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RunEndEvent(_message.Message):
    __slots__ = ("run", "state")
    RUN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    state: _state_pb2.ThreadState
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ..., state: _Optional[_Union[_state_pb2.ThreadState, _Mapping]] = ...) -> None: ...
