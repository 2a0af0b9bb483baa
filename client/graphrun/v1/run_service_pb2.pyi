from graphrun.v1 import event_pb2 as _event_pb2
from graphrun.v1 import run_pb2 as _run_pb2
from graphrun.v1 import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunServiceWaitRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _run_pb2.RunSpec
    def __init__(self, spec: _Optional[_Union[_run_pb2.RunSpec, _Mapping]] = ...) -> None: ...

class RunServiceWaitResponse(_message.Message):
    __slots__ = ("run", "state")
    RUN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    state: _state_pb2.ThreadState
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ..., state: _Optional[_Union[_state_pb2.ThreadState, _Mapping]] = ...) -> None: ...

class RunServiceStreamRequest(_message.Message):
    __slots__ = ("spec", "stream_mode")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STREAM_MODE_FIELD_NUMBER: _ClassVar[int]
    spec: _run_pb2.RunSpec
    stream_mode: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spec: _Optional[_Union[_run_pb2.RunSpec, _Mapping]] = ..., stream_mode: _Optional[_Iterable[str]] = ...) -> None: ...

class RunServiceStreamResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.RunEvent
    def __init__(self, event: _Optional[_Union[_event_pb2.RunEvent, _Mapping]] = ...) -> None: ...
