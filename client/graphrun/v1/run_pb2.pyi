import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_STATUS_UNSPECIFIED: _ClassVar[WebhookStatus]
    WEBHOOK_STATUS_PENDING: _ClassVar[WebhookStatus]
    WEBHOOK_STATUS_DELIVERED: _ClassVar[WebhookStatus]
    WEBHOOK_STATUS_FAILED: _ClassVar[WebhookStatus]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_PENDING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_SUCCESS: _ClassVar[RunStatus]
    RUN_STATUS_ERROR: _ClassVar[RunStatus]
    RUN_STATUS_TIMEOUT: _ClassVar[RunStatus]
    RUN_STATUS_INTERRUPTED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]

class OnCompletion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ON_COMPLETION_UNSPECIFIED: _ClassVar[OnCompletion]
    ON_COMPLETION_KEEP: _ClassVar[OnCompletion]
    ON_COMPLETION_DELETE: _ClassVar[OnCompletion]

class OnDisconnect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ON_DISCONNECT_UNSPECIFIED: _ClassVar[OnDisconnect]
    ON_DISCONNECT_CANCEL: _ClassVar[OnDisconnect]
    ON_DISCONNECT_CONTINUE: _ClassVar[OnDisconnect]

class MultitaskStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MULTITASK_STRATEGY_UNSPECIFIED: _ClassVar[MultitaskStrategy]
    MULTITASK_STRATEGY_REJECT: _ClassVar[MultitaskStrategy]
    MULTITASK_STRATEGY_INTERRUPT: _ClassVar[MultitaskStrategy]
    MULTITASK_STRATEGY_ROLLBACK: _ClassVar[MultitaskStrategy]
    MULTITASK_STRATEGY_ENQUEUE: _ClassVar[MultitaskStrategy]

class IfNotExists(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IF_NOT_EXISTS_UNSPECIFIED: _ClassVar[IfNotExists]
    IF_NOT_EXISTS_REJECT: _ClassVar[IfNotExists]
    IF_NOT_EXISTS_CREATE: _ClassVar[IfNotExists]

class Granularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANULARITY_UNSPECIFIED: _ClassVar[Granularity]
    GRANULARITY_LOW: _ClassVar[Granularity]
    GRANULARITY_PARTIAL: _ClassVar[Granularity]
    GRANULARITY_FULL: _ClassVar[Granularity]

class Durability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DURABILITY_UNSPECIFIED: _ClassVar[Durability]
    DURABILITY_SYNC: _ClassVar[Durability]
    DURABILITY_ASYNC: _ClassVar[Durability]
    DURABILITY_EXIT: _ClassVar[Durability]
WEBHOOK_STATUS_UNSPECIFIED: WebhookStatus
WEBHOOK_STATUS_PENDING: WebhookStatus
WEBHOOK_STATUS_DELIVERED: WebhookStatus
WEBHOOK_STATUS_FAILED: WebhookStatus
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_PENDING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCESS: RunStatus
RUN_STATUS_ERROR: RunStatus
RUN_STATUS_TIMEOUT: RunStatus
RUN_STATUS_INTERRUPTED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
ON_COMPLETION_UNSPECIFIED: OnCompletion
ON_COMPLETION_KEEP: OnCompletion
ON_COMPLETION_DELETE: OnCompletion
ON_DISCONNECT_UNSPECIFIED: OnDisconnect
ON_DISCONNECT_CANCEL: OnDisconnect
ON_DISCONNECT_CONTINUE: OnDisconnect
MULTITASK_STRATEGY_UNSPECIFIED: MultitaskStrategy
MULTITASK_STRATEGY_REJECT: MultitaskStrategy
MULTITASK_STRATEGY_INTERRUPT: MultitaskStrategy
MULTITASK_STRATEGY_ROLLBACK: MultitaskStrategy
MULTITASK_STRATEGY_ENQUEUE: MultitaskStrategy
IF_NOT_EXISTS_UNSPECIFIED: IfNotExists
IF_NOT_EXISTS_REJECT: IfNotExists
IF_NOT_EXISTS_CREATE: IfNotExists
GRANULARITY_UNSPECIFIED: Granularity
GRANULARITY_LOW: Granularity
GRANULARITY_PARTIAL: Granularity
GRANULARITY_FULL: Granularity
DURABILITY_UNSPECIFIED: Durability
DURABILITY_SYNC: Durability
DURABILITY_ASYNC: Durability
DURABILITY_EXIT: Durability

class Run(_message.Message):
    __slots__ = ("run_id", "thread_id", "assistant_id", "status", "attempt", "metadata", "error", "created_at", "updated_at", "multitask_strategy", "started_at", "ended_at", "current_node", "step", "on_disconnect", "webhook", "assistant_version", "graph_id", "cron_id", "cron_tick_time")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_NODE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_VERSION_FIELD_NUMBER: _ClassVar[int]
    GRAPH_ID_FIELD_NUMBER: _ClassVar[int]
    CRON_ID_FIELD_NUMBER: _ClassVar[int]
    CRON_TICK_TIME_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    thread_id: str
    assistant_id: str
    status: RunStatus
    attempt: int
    metadata: _struct_pb2.Struct
    error: RunError
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    multitask_strategy: MultitaskStrategy
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    current_node: str
    step: int
    on_disconnect: OnDisconnect
    webhook: WebhookDelivery
    assistant_version: int
    graph_id: str
    cron_id: str
    cron_tick_time: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., attempt: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[RunError, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_node: _Optional[str] = ..., step: _Optional[int] = ..., on_disconnect: _Optional[_Union[OnDisconnect, str]] = ..., webhook: _Optional[_Union[WebhookDelivery, _Mapping]] = ..., assistant_version: _Optional[int] = ..., graph_id: _Optional[str] = ..., cron_id: _Optional[str] = ..., cron_tick_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("url", "status", "attempts", "last_error", "delivered_at", "next_attempt_at")
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    url: str
    status: WebhookStatus
    attempts: int
    last_error: str
    delivered_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., status: _Optional[_Union[WebhookStatus, str]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunError(_message.Message):
    __slots__ = ("type", "message", "reason")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    reason: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RunSpec(_message.Message):
    __slots__ = ("thread_id", "assistant_id", "input", "command", "config", "metadata", "interrupt_before", "interrupt_after", "multitask_strategy", "if_not_exists", "checkpoint_id", "granularity", "timeout", "durability", "on_disconnect", "context", "input_value", "webhook", "request_id", "on_completion", "assistant_version")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_AFTER_FIELD_NUMBER: _ClassVar[int]
    MULTITASK_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    IF_NOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INPUT_VALUE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ON_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_VERSION_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    assistant_id: str
    input: _struct_pb2.Struct
    command: Command
    config: _struct_pb2.Struct
    metadata: _struct_pb2.Struct
    interrupt_before: _containers.RepeatedScalarFieldContainer[str]
    interrupt_after: _containers.RepeatedScalarFieldContainer[str]
    multitask_strategy: MultitaskStrategy
    if_not_exists: IfNotExists
    checkpoint_id: str
    granularity: Granularity
    timeout: _duration_pb2.Duration
    durability: Durability
    on_disconnect: OnDisconnect
    context: _struct_pb2.Struct
    input_value: _struct_pb2.Value
    webhook: str
    request_id: str
    on_completion: OnCompletion
    assistant_version: int
    def __init__(self, thread_id: _Optional[str] = ..., assistant_id: _Optional[str] = ..., input: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., command: _Optional[_Union[Command, _Mapping]] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., interrupt_before: _Optional[_Iterable[str]] = ..., interrupt_after: _Optional[_Iterable[str]] = ..., multitask_strategy: _Optional[_Union[MultitaskStrategy, str]] = ..., if_not_exists: _Optional[_Union[IfNotExists, str]] = ..., checkpoint_id: _Optional[str] = ..., granularity: _Optional[_Union[Granularity, str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., durability: _Optional[_Union[Durability, str]] = ..., on_disconnect: _Optional[_Union[OnDisconnect, str]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., input_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., webhook: _Optional[str] = ..., request_id: _Optional[str] = ..., on_completion: _Optional[_Union[OnCompletion, str]] = ..., assistant_version: _Optional[int] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("resume", "update", "goto")
    RESUME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    GOTO_FIELD_NUMBER: _ClassVar[int]
    resume: _struct_pb2.Value
    update: _struct_pb2.Struct
    goto: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resume: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., update: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., goto: _Optional[_Iterable[str]] = ...) -> None: ...
