"""Every `ErrorInfo` reason in the README's error table has its own exception class in the
client, under the class of the row's gRPC code, and `from_rpc_error` raises it; a reason the
client does not know (a newer server's) falls back to its code's class."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

import graphrun
from graphrun import _errors

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def readme_reasons() -> list[tuple[str, str]]:
    """(code, reason) for every row of the README's error table (`| Code | ErrorInfo.reason | …`)."""
    lines = README.read_text().splitlines()
    [header] = [i for i, line in enumerate(lines) if line.startswith("|") and "`ErrorInfo.reason`" in line]
    rows = []
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        code, reasons = line.split("|")[1:3]
        rows += [(code.strip().strip("`"), reason) for reason in re.findall(r"`([A-Z_]+)`", reasons)]
    return rows


REASONS = readme_reasons()


def test_the_readme_table_was_read() -> None:
    assert len(REASONS) >= 20 and ("FAILED_PRECONDITION", "THREAD_INTERRUPTED") in REASONS


def test_every_reason_has_its_own_class() -> None:
    classes = [_errors.BY_REASON.get(reason) for _, reason in REASONS]
    assert [reason for (_, reason), cls in zip(REASONS, classes, strict=True) if cls is None] == []
    assert len(set(classes)) == len(classes), "two reasons share a class"
    assert set(_errors.BY_REASON) == {reason for _, reason in REASONS}, "a class for a reason the README lacks"


def test_every_reason_class_is_exported() -> None:
    for cls in _errors.BY_REASON.values():
        assert getattr(graphrun, cls.__name__) is cls and cls.__name__ in graphrun.__all__


class FakeRpcError(grpc.RpcError):
    """A failed call as grpc reports it: code, details and the google.rpc.Status trailer."""

    def __init__(self, code: grpc.StatusCode, message: str, *details: Any) -> None:
        packed = []
        for detail in details:
            item = any_pb2.Any()
            item.Pack(detail)
            packed.append(item)
        status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)
        self._code, self._message = code, message
        self._trailers = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> Any:
        return self._trailers

    def initial_metadata(self) -> Any:
        return ()


@pytest.mark.parametrize("code, reason", REASONS, ids=[reason for _, reason in REASONS])
def test_from_rpc_error_raises_the_reasons_class_under_its_codes_class(code: str, reason: str) -> None:
    status_code = grpc.StatusCode[code]
    info = error_details_pb2.ErrorInfo(reason=reason, domain="graphrun", metadata={"run_id": "r", "thread_id": "t"})
    error = _errors.from_rpc_error(FakeRpcError(status_code, "it failed", info))
    assert type(error) is _errors.BY_REASON[reason]
    assert isinstance(error, _errors._BY_CODE[status_code])  # catching the code's class still catches it
    assert (error.code, error.reason, error.message, error.run_id, error.thread_id) == (
        status_code, reason, "it failed", "r", "t")


def test_the_classes_callers_caught_before_still_catch() -> None:
    """Reasons that used to raise a code's class raise a subclass of it now."""
    def raised(code: grpc.StatusCode, reason: str) -> _errors.GraphrunError:
        return _errors.from_rpc_error(FakeRpcError(code, "x", error_details_pb2.ErrorInfo(reason=reason)))

    assert isinstance(raised(grpc.StatusCode.DEADLINE_EXCEEDED, "RUN_STILL_RUNNING"), graphrun.RunTimeoutError)
    assert isinstance(raised(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING"), graphrun.UnavailableError)
    assert isinstance(raised(grpc.StatusCode.NOT_FOUND, "THREAD_NOT_FOUND"), graphrun.NotFoundError)
    assert isinstance(raised(grpc.StatusCode.PERMISSION_DENIED, "NAMESPACE_NOT_OWNED"),
                      graphrun.PermissionDeniedError)
    assert isinstance(raised(grpc.StatusCode.ALREADY_EXISTS, "THREAD_ALREADY_EXISTS"), graphrun.AlreadyExistsError)
    assert type(raised(grpc.StatusCode.ABORTED, "THREAD_BUSY")) is graphrun.ThreadBusyError


def test_an_unknown_reason_or_none_falls_back_to_the_codes_class() -> None:
    newer = _errors.from_rpc_error(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "x",
                                                error_details_pb2.ErrorInfo(reason="SOMETHING_NEW")))
    assert type(newer) is graphrun.FailedPreconditionError and newer.reason == "SOMETHING_NEW"
    bare = _errors.from_rpc_error(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "x"))
    assert type(bare) is graphrun.ResourceExhaustedError and bare.reason == ""
    unknown_code = _errors.from_rpc_error(FakeRpcError(grpc.StatusCode.DATA_LOSS, "x"))
    assert type(unknown_code) is graphrun.GraphrunError


def test_errors_still_pickle() -> None:
    import pickle

    error = _errors.from_rpc_error(FakeRpcError(grpc.StatusCode.FAILED_PRECONDITION, "waiting",
                                                error_details_pb2.ErrorInfo(reason="THREAD_INTERRUPTED",
                                                                            metadata={"thread_id": "t"})))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is graphrun.ThreadInterruptedError
    assert (copy.reason, copy.thread_id) == ("THREAD_INTERRUPTED", "t")
