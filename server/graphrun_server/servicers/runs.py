"""RunService: ways of starting, watching and stopping runs the runner executes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from graphrun.v1 import run_pb2, run_service_pb2 as pb, run_service_pb2_grpc

from ..errors import FieldViolation, GraphrunError, InvalidArgument, RunFailure, RunNotFound, invalid
from ..events import RunEvent
from ..runner import GraphRunner
from ..storage.records import RunRecord
from .convert import RUN_STATUS, duration_seconds, event_to_proto, parse_run_spec, require_uuid, run_to_proto
from .errors import rpc

RUN_ID_KEY = "graphrun-run-id"
THREAD_ID_KEY = "graphrun-thread-id"
MAX_PAGE_SIZE = 1000
_STATUS_NAMES = {v: k for k, v in RUN_STATUS.items()}
_CANCEL_ACTIONS = {
    pb.CANCEL_ACTION_UNSPECIFIED: "interrupt",
    pb.CANCEL_ACTION_INTERRUPT: "interrupt",
    pb.CANCEL_ACTION_ROLLBACK: "rollback",
}


class RunStillRunning(GraphrunError):
    """The caller's deadline passed, and the run (on_disconnect=CONTINUE) goes on."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "RUN_STILL_RUNNING"

    def __init__(self, run: RunRecord):
        super().__init__(f"the deadline passed; run {run.run_id} continues in the background",
                         metadata={"run_id": run.run_id, "thread_id": run.thread_id})


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    """Event-loop time until which this call may wait for its run: the call's deadline less a margin.

    The margin leaves time to stop the run and record TIMEOUT before gRPC
    itself gives up on the call.
    """
    remaining = context.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + max(remaining - min(0.05 + 0.05 * remaining, 0.5), 0.0)


def _deadline_passed(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0.01


class RunServicer(run_service_pb2_grpc.RunServiceServicer):
    def __init__(self, runner: GraphRunner):
        self.runner = runner

    async def _submit(self, spec, stream_modes, context) -> RunRecord:
        run = await self.runner.submit(parse_run_spec(spec, stream_modes))
        await context.send_initial_metadata(((RUN_ID_KEY, run.run_id), (THREAD_ID_KEY, run.thread_id)))
        return run

    def _left(self, run: RunRecord, context) -> None:
        """The call is gone (client cancelled, or gRPC's own deadline fired first)."""
        if run.on_disconnect == "cancel":
            if _deadline_passed(context):
                self.runner.cancel_soon(run.run_id, "timeout", "the caller's deadline passed")
            else:
                self.runner.cancel_soon(run.run_id, "interrupt", "the caller went away")

    async def _stop_at_deadline(self, run: RunRecord) -> RunEvent:
        if run.on_disconnect == "continue":
            raise RunStillRunning(run)
        await self.runner.cancel(run.run_id, "timeout", "the caller's deadline passed")
        return await self.runner.wait_end(run.run_id)

    @rpc
    async def Wait(self, request, context):
        run = await self._submit(request.spec, None, context)
        try:
            try:
                end = await self.runner.wait_end(run.run_id, _deadline(context))
            except TimeoutError:
                end = await self._stop_at_deadline(run)
        except asyncio.CancelledError:
            self._left(run, context)
            raise
        end = event_to_proto(end, request.spec.granularity)
        _raise_if_failed(end, run)
        return pb.RunServiceWaitResponse(run=end.end.run, state=end.end.state)

    async def _events(self, run: RunRecord, after: int, granularity: int, context, *, stop_at_deadline: bool):
        """Forward the run's events; at the deadline stop the run (or not), then forward the rest."""
        position = after
        try:
            try:
                async for event in self.runner.follow(run.run_id, after, _deadline(context)):
                    position = event.sequence
                    yield event_to_proto(event, granularity)
            except TimeoutError:
                if not stop_at_deadline:
                    raise RunStillRunning(run) from None
                await self._stop_at_deadline(run)
                async for event in self.runner.follow(run.run_id, position):
                    position = event.sequence
                    yield event_to_proto(event, granularity)
        except asyncio.CancelledError:
            if stop_at_deadline:
                self._left(run, context)
            raise

    @rpc
    async def Stream(self, request, context) -> AsyncIterator[pb.RunServiceStreamResponse]:
        run = await self._submit(request.spec, list(request.stream_mode), context)
        last = None
        async for event in self._events(run, 0, request.spec.granularity, context, stop_at_deadline=True):
            last = event
            yield pb.RunServiceStreamResponse(event=event)
        _raise_if_failed(last, run)

    @rpc
    async def Create(self, request, context):
        violations: list[FieldViolation] = []
        delay = duration_seconds(request.start_delay, "start_delay", violations) or 0.0
        if violations:
            raise InvalidArgument(violations)
        spec = parse_run_spec(request.spec, list(request.stream_mode))
        spec.on_disconnect = "continue"
        run = await self.runner.submit(spec, start_delay=delay)
        return pb.RunServiceCreateResponse(run=run_to_proto(run))

    @rpc
    async def Get(self, request, context):
        run_id = require_uuid(request.run_id, "run_id")
        run = await self.runner.records.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return pb.RunServiceGetResponse(run=run_to_proto(run))

    @rpc
    async def List(self, request, context):
        thread_id = require_uuid(request.thread_id, "thread_id") if request.thread_id else None
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for 20)")
        statuses = []
        for i, status in enumerate(request.statuses):
            if status not in _STATUS_NAMES:
                raise invalid(f"statuses[{i}]", f"unknown run status {status}")
            statuses.append(_STATUS_NAMES[status])
        runs, token = await self.runner.records.list_runs(thread_id, statuses, request.page_size or 20,
                                                          request.page_token)
        return pb.RunServiceListResponse(runs=[run_to_proto(r) for r in runs], next_page_token=token)

    @rpc
    async def Cancel(self, request, context):
        run_id = require_uuid(request.run_id, "run_id")
        if request.action not in _CANCEL_ACTIONS:
            raise invalid("action", f"unknown value {request.action}")
        run = await self.runner.cancel(run_id, _CANCEL_ACTIONS[request.action], "cancelled by RunService.Cancel",
                                       wait=request.wait)
        return pb.RunServiceCancelResponse(run=run_to_proto(run))

    @rpc
    async def Join(self, request, context) -> AsyncIterator[pb.RunServiceJoinResponse]:
        run_id = require_uuid(request.run_id, "run_id")
        if request.after_sequence < 0:
            raise invalid("after_sequence", "must not be negative")
        if request.granularity not in run_pb2.Granularity.values():
            raise invalid("granularity", f"unknown value {request.granularity}")
        run = await self.runner.records.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        last = None
        async for event in self._events(run, request.after_sequence, request.granularity, context,
                                        stop_at_deadline=False):
            last = event
            yield pb.RunServiceJoinResponse(event=event)
        _raise_if_failed(last, run)


def _raise_if_failed(last, run: RunRecord) -> None:
    """After the `end` event of a run that did not succeed or pause: fail the call (never OK)."""
    if last is None or not last.HasField("end"):
        return
    ended = last.end.run
    status = {run_pb2.RUN_STATUS_ERROR: "error", run_pb2.RUN_STATUS_TIMEOUT: "timeout",
              run_pb2.RUN_STATUS_CANCELLED: "cancelled"}.get(ended.status)
    if status:
        raise RunFailure(status, ended.run_id or run.run_id, ended.thread_id or run.thread_id,
                         ended.error.type, ended.error.message)
