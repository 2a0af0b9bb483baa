"""CronService: crons as the API shows them; the checks that need the graph or the database, and
the scheduling itself, are crons.py's."""

from __future__ import annotations

import datetime as dt
from typing import Any

from graphrun.v1 import cron_pb2, cron_service_pb2 as pb, cron_service_pb2_grpc, run_pb2

from ..crons import FIELDS, Crons
from ..errors import FieldViolation, InvalidArgument, field_prefix
from ..webhooks import WebhookPolicy
from .convert import (
    MAX_PAGE_SIZE,
    MAX_SMALL_BYTES,
    check_uuid,
    cron_to_proto,
    parse_run_spec,
    require_uuid,
    struct_to_dict,
)
from .errors import rpc

# RunSpec fields a cron's runs have no use for, and why.
_REFUSED = {
    "command": "does not apply to a cron: its runs start from spec.input (resume a thread with RunService)",
    "checkpoint_id": "does not apply to a cron: its runs start from the thread's latest checkpoint",
    "request_id": "does not apply to a cron: each tick's run id follows from the cron and the tick",
    "on_disconnect": "does not apply to a cron: its runs have no caller to go away",
    "granularity": "does not apply to a cron: nothing waits for its runs' state (Join has its own granularity)",
    "if_not_exists": "does not apply to a cron: its thread must exist when the cron is created",
}
# Update's mask paths -> the field of Crons they change (the run is replaced as a whole).
_PATHS = {
    "schedule": "schedule",
    "timezone": "timezone",
    "spec": "spec",
    "stream_mode": "spec",
    "subgraphs": "spec",
    "end_time": "end_time",
    "paused": "paused",
    "metadata": "metadata",
}


def _refused(spec: run_pb2.RunSpec) -> list[FieldViolation]:
    given = {
        "command": spec.HasField("command"),
        "checkpoint_id": bool(spec.checkpoint_id),
        "request_id": bool(spec.request_id),
        "on_disconnect": spec.on_disconnect != run_pb2.ON_DISCONNECT_UNSPECIFIED,
        "granularity": spec.granularity != run_pb2.GRANULARITY_UNSPECIFIED,
        "if_not_exists": spec.if_not_exists != run_pb2.IF_NOT_EXISTS_UNSPECIFIED,
    }
    return [FieldViolation(f"cron.spec.{name}", why) for name, why in _REFUSED.items() if given[name]]


class CronServicer(cron_service_pb2_grpc.CronServiceServicer):
    def __init__(self, crons: Crons, webhooks: WebhookPolicy | None = None):
        self.crons = crons
        self.webhooks = webhooks or WebhookPolicy(None, None)

    def _values(self, cron: cron_pb2.Cron, wanted: set[str]) -> dict[str, Any]:
        """The fields of `cron` that `wanted` names, parsed; every bad one named at once."""
        violations: list[FieldViolation] = []
        values: dict[str, Any] = {}
        if "schedule" in wanted:
            values["schedule"] = cron.schedule  # read with its time zone by Crons (schedule.py)
        if "timezone" in wanted:
            values["timezone"] = cron.timezone
        if "spec" in wanted:
            violations += _refused(cron.spec)
            try:
                with field_prefix("cron."):
                    values["spec"] = parse_run_spec(cron.spec, list(cron.stream_mode), subgraphs=cron.subgraphs)
                if values["spec"].webhook:
                    self.webhooks.check(values["spec"].webhook, "cron.spec.webhook")
            except InvalidArgument as exc:
                violations += exc.violations
        if "end_time" in wanted:
            values["end_time"] = None
            if cron.HasField("end_time"):
                try:
                    values["end_time"] = cron.end_time.ToDatetime(tzinfo=dt.UTC)
                except (ValueError, OverflowError):
                    violations.append(FieldViolation("cron.end_time", "is not a valid time"))
        if "paused" in wanted:
            values["paused"] = cron.paused
        if "metadata" in wanted:
            if cron.metadata.ByteSize() > MAX_SMALL_BYTES:
                violations.append(FieldViolation("cron.metadata", f"is larger than {MAX_SMALL_BYTES} bytes"))
            else:
                values["metadata"] = struct_to_dict(cron.metadata, "cron.metadata")
        if violations:
            raise InvalidArgument(violations)
        return values

    @rpc
    async def Create(self, request, context):
        cron_id = require_uuid(request.cron.cron_id, "cron.cron_id") if request.cron.cron_id else None
        cron = await self.crons.create(cron_id, self._values(request.cron, set(FIELDS)))
        return pb.CronServiceCreateResponse(cron=cron_to_proto(cron))

    @rpc
    async def Get(self, request, context):
        cron = await self.crons.get(require_uuid(request.cron_id, "cron_id"))
        return pb.CronServiceGetResponse(cron=cron_to_proto(cron))

    @rpc
    async def Update(self, request, context):
        cron_id = require_uuid(request.cron.cron_id, "cron.cron_id")
        paths = list(request.update_mask.paths)
        if not paths or paths == ["*"]:
            wanted = set(FIELDS)
        else:
            unknown = [
                FieldViolation(
                    f"update_mask.paths[{i}]",
                    f"{path[:64]!r} is not a field Update changes; expected one of {', '.join(_PATHS)}",
                )
                for i, path in enumerate(paths)
                if path not in _PATHS
            ]
            if unknown:
                raise InvalidArgument(unknown)
            wanted = {_PATHS[path] for path in paths}
        cron = await self.crons.update(cron_id, self._values(request.cron, wanted))
        return pb.CronServiceUpdateResponse(cron=cron_to_proto(cron))

    @rpc
    async def Delete(self, request, context):
        await self.crons.delete(require_uuid(request.cron_id, "cron_id"))
        return pb.CronServiceDeleteResponse()

    @rpc
    async def List(self, request, context):
        violations: list[FieldViolation] = []
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            violations.append(FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for 20)"))
        if len(request.assistant_id) > 256 or "\x00" in request.assistant_id:
            violations.append(FieldViolation("assistant_id", "must be an assistant id: at most 256 characters, no NUL"))
        check_uuid(request.thread_id, "thread_id", violations, required=False)
        if violations:
            raise InvalidArgument(violations)
        crons, token = await self.crons.list_crons(
            request.assistant_id or None,
            require_uuid(request.thread_id, "thread_id") if request.thread_id else None,
            request.page_size or 20,
            request.page_token,
        )
        return pb.CronServiceListResponse(crons=[cron_to_proto(c) for c in crons], next_page_token=token)
