"""AssistantService: the graphs this server serves, and assistants made of them (assistants.py)."""

from __future__ import annotations

import uuid
from typing import Any

from graphrun.v1 import assistant_pb2, assistant_service_pb2 as pb, assistant_service_pb2_grpc

from ..assistants import Assistants
from ..errors import FieldViolation, InvalidArgument, invalid
from ..storage.assistants import AssistantRecord
from ..webhooks import WebhookPolicy
from .convert import (
    MAX_PAGE_SIZE,
    MAX_SMALL_BYTES,
    assistant_to_proto,
    assistant_version_to_proto,
    check_config,
    check_uuid,
    graph_to_proto,
    struct_to_dict,
)
from .errors import rpc

MAX_NAME = 256
MAX_DESCRIPTION = 4096
MAX_ID = 256  # a graph id, as ThreadService.List takes one


def _text(value: str, field_path: str, limit: int, violations: list[FieldViolation]) -> None:
    if len(value) > limit or "\x00" in value:
        violations.append(FieldViolation(field_path, f"must be at most {limit} characters, without NUL"))


def _required_id(assistant_id: str) -> str:
    if not assistant_id:
        raise invalid("assistant_id", "is required")
    return assistant_id


def _page_size(value: int, default: int, violations: list[FieldViolation]) -> int:
    if not 0 <= value <= MAX_PAGE_SIZE:
        violations.append(FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for {default})"))
    return value or default


class AssistantServicer(assistant_service_pb2_grpc.AssistantServiceServicer):
    def __init__(self, assistants: Assistants, webhooks: WebhookPolicy | None = None):
        self.assistants = assistants
        self.webhooks = webhooks or WebhookPolicy(None, None)
        # Served graphs do not change while the server runs; converting their schemas does not
        # need to happen per call (the example agent's: ~8 ms).
        self._graphs: dict[str, assistant_pb2.Assistant] = {}

    def _message(self, record: AssistantRecord) -> assistant_pb2.Assistant:
        graph = self._graphs.get(record.graph_id)
        if graph is None and (served := self.assistants.graph(record.graph_id)) is not None:
            graph = self._graphs[record.graph_id] = graph_to_proto(served)
        return assistant_to_proto(record, graph)

    def _fields(self, request, given: set[str], violations: list[FieldViolation]) -> dict[str, Any]:
        """The assistant fields a Create or Update request sets (`given`), checked as far as they
        can be without the graph (assistants.py checks what the graph decides)."""
        fields: dict[str, Any] = {}
        if "graph_id" in given:
            if not request.graph_id:
                violations.append(FieldViolation("graph_id", "is required"))
            _text(request.graph_id, "graph_id", MAX_ID, violations)
            fields["graph_id"] = request.graph_id
        for name, limit in (("name", MAX_NAME), ("description", MAX_DESCRIPTION)):
            if name in given:
                _text(getattr(request, name), name, limit, violations)
                fields[name] = getattr(request, name)
        for name in ("config", "context", "metadata"):
            if name in given:
                if getattr(request, name).ByteSize() > MAX_SMALL_BYTES:
                    violations.append(FieldViolation(name, f"is larger than {MAX_SMALL_BYTES} bytes"))
                    continue
                try:
                    fields[name] = struct_to_dict(getattr(request, name), name)
                except InvalidArgument as exc:
                    violations.extend(exc.violations)
        if "config" in fields:
            check_config(fields["config"], violations, "config")
        if "webhook" in given:
            fields["webhook"] = request.webhook or None
            if request.webhook:
                _text(request.webhook, "webhook", 2048, violations)
                try:
                    self.webhooks.check(request.webhook, "webhook")
                except InvalidArgument as exc:
                    violations.extend(exc.violations)
        return fields

    @rpc
    async def List(self, request, context):
        violations: list[FieldViolation] = []
        page_size = _page_size(request.page_size, 100, violations)
        _text(request.graph_id, "graph_id", MAX_ID, violations)
        if request.metadata.ByteSize() > MAX_SMALL_BYTES:
            violations.append(FieldViolation("metadata", f"is larger than {MAX_SMALL_BYTES} bytes"))
        if violations:
            raise InvalidArgument(violations)
        assistants, token = await self.assistants.list_assistants(
            request.graph_id or None, struct_to_dict(request.metadata, "metadata"), page_size, request.page_token
        )
        return pb.AssistantServiceListResponse(assistants=[self._message(a) for a in assistants], next_page_token=token)

    @rpc
    async def Get(self, request, context):
        record = await self.assistants.get(_required_id(request.assistant_id))
        return pb.AssistantServiceGetResponse(assistant=self._message(record))

    @rpc
    async def Create(self, request, context):
        violations: list[FieldViolation] = []
        check_uuid(request.assistant_id, "assistant_id", violations, required=False)
        given = {"graph_id", "name", "description", "config", "context", "metadata", "webhook"}
        fields = self._fields(request, given, violations)
        if violations:
            raise InvalidArgument(violations)
        assistant_id = str(uuid.UUID(request.assistant_id)) if request.assistant_id else None
        record = await self.assistants.create(assistant_id, fields)
        return pb.AssistantServiceCreateResponse(assistant=self._message(record))

    @rpc
    async def Update(self, request, context):
        assistant_id = _required_id(request.assistant_id)
        violations: list[FieldViolation] = []
        given = {
            name
            for name in ("graph_id", "name", "description", "config", "context", "metadata", "webhook")
            if request.HasField(name)
        }
        fields = self._fields(request, given, violations)
        if violations:
            raise InvalidArgument(violations)
        record = await self.assistants.update(assistant_id, fields)
        return pb.AssistantServiceUpdateResponse(assistant=self._message(record))

    @rpc
    async def Delete(self, request, context):
        await self.assistants.delete(_required_id(request.assistant_id))
        return pb.AssistantServiceDeleteResponse()

    @rpc
    async def ListVersions(self, request, context):
        assistant_id = _required_id(request.assistant_id)
        violations: list[FieldViolation] = []
        page_size = _page_size(request.page_size, 20, violations)
        if violations:
            raise InvalidArgument(violations)
        versions, token = await self.assistants.list_versions(assistant_id, page_size, request.page_token)
        return pb.AssistantServiceListVersionsResponse(
            versions=[assistant_version_to_proto(v) for v in versions], next_page_token=token
        )

    @rpc
    async def SetLatest(self, request, context):
        assistant_id = _required_id(request.assistant_id)
        if request.version < 1:
            raise invalid("version", "must be at least 1")
        record = await self.assistants.set_latest(assistant_id, request.version)
        return pb.AssistantServiceSetLatestResponse(assistant=self._message(record))
