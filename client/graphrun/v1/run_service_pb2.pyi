import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from graphrun.v1 import event_pb2 as _event_pb2
from graphrun.v1 import run_pb2 as _run_pb2
from graphrun.v1 import state_pb2 as _state_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CancelAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCEL_ACTION_UNSPECIFIED: _ClassVar[CancelAction]
    CANCEL_ACTION_INTERRUPT: _ClassVar[CancelAction]
    CANCEL_ACTION_ROLLBACK: _ClassVar[CancelAction]
CANCEL_ACTION_UNSPECIFIED: CancelAction
CANCEL_ACTION_INTERRUPT: CancelAction
CANCEL_ACTION_ROLLBACK: CancelAction

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
    __slots__ = ("spec", "stream_mode", "subgraphs", "batch_events")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STREAM_MODE_FIELD_NUMBER: _ClassVar[int]
    SUBGRAPHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_EVENTS_FIELD_NUMBER: _ClassVar[int]
    spec: _run_pb2.RunSpec
    stream_mode: _containers.RepeatedScalarFieldContainer[str]
    subgraphs: bool
    batch_events: bool
    def __init__(self, spec: _Optional[_Union[_run_pb2.RunSpec, _Mapping]] = ..., stream_mode: _Optional[_Iterable[str]] = ..., subgraphs: _Optional[bool] = ..., batch_events: _Optional[bool] = ...) -> None: ...

class RunServiceStreamResponse(_message.Message):
    __slots__ = ("event", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.RunEvent
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.RunEvent]
    def __init__(self, event: _Optional[_Union[_event_pb2.RunEvent, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_event_pb2.RunEvent, _Mapping]]] = ...) -> None: ...

class RunServiceCreateRequest(_message.Message):
    __slots__ = ("spec", "stream_mode", "start_delay", "subgraphs")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STREAM_MODE_FIELD_NUMBER: _ClassVar[int]
    START_DELAY_FIELD_NUMBER: _ClassVar[int]
    SUBGRAPHS_FIELD_NUMBER: _ClassVar[int]
    spec: _run_pb2.RunSpec
    stream_mode: _containers.RepeatedScalarFieldContainer[str]
    start_delay: _duration_pb2.Duration
    subgraphs: bool
    def __init__(self, spec: _Optional[_Union[_run_pb2.RunSpec, _Mapping]] = ..., stream_mode: _Optional[_Iterable[str]] = ..., start_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., subgraphs: _Optional[bool] = ...) -> None: ...

class RunServiceCreateResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class RunServiceGetRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunServiceGetResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class RunServiceListRequest(_message.Message):
    __slots__ = ("thread_id", "statuses", "page_size", "page_token", "cron_id")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CRON_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    statuses: _containers.RepeatedScalarFieldContainer[_run_pb2.RunStatus]
    page_size: int
    page_token: str
    cron_id: str
    def __init__(self, thread_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_run_pb2.RunStatus, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., cron_id: _Optional[str] = ...) -> None: ...

class RunServiceListResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[_run_pb2.Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[_run_pb2.Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RunServiceCancelRequest(_message.Message):
    __slots__ = ("run_id", "action", "wait")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    action: CancelAction
    wait: bool
    def __init__(self, run_id: _Optional[str] = ..., action: _Optional[_Union[CancelAction, str]] = ..., wait: _Optional[bool] = ...) -> None: ...

class RunServiceCancelResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: _run_pb2.Run
    def __init__(self, run: _Optional[_Union[_run_pb2.Run, _Mapping]] = ...) -> None: ...

class RunServiceJoinRequest(_message.Message):
    __slots__ = ("run_id", "after_sequence", "granularity", "batch_events")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    BATCH_EVENTS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    after_sequence: int
    granularity: _run_pb2.Granularity
    batch_events: bool
    def __init__(self, run_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., granularity: _Optional[_Union[_run_pb2.Granularity, str]] = ..., batch_events: _Optional[bool] = ...) -> None: ...

class RunServiceJoinResponse(_message.Message):
    __slots__ = ("event", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.RunEvent
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.RunEvent]
    def __init__(self, event: _Optional[_Union[_event_pb2.RunEvent, _Mapping]] = ..., events: _Optional[_Iterable[_Union[_event_pb2.RunEvent, _Mapping]]] = ...) -> None: ...
