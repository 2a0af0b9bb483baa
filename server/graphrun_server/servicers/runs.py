"""RunService: Wait and Stream, two ways of watching a run the runner executes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from graphrun.v1 import run_service_pb2, run_service_pb2_grpc

from ..errors import RunFailure
from ..events import RunEvent
from ..runner import ActiveRun, GraphRunner
from .convert import event_to_proto, parse_run_spec, run_to_proto, state_to_proto, timeout_seconds
from .errors import rpc

RUN_ID_KEY = "graphrun-run-id"
THREAD_ID_KEY = "graphrun-thread-id"


def _budget(context: grpc.aio.ServicerContext, timeout: float | None) -> float | None:
    """Seconds this call may wait for its run: the spec's timeout or the deadline, less a margin.

    The margin leaves time to stop the run and record TIMEOUT before gRPC
    itself gives up on the call.
    """
    remaining = context.time_remaining()
    if remaining is not None:
        remaining = max(remaining - min(0.05 + 0.05 * remaining, 0.5), 0.0)
    candidates = [t for t in (timeout, remaining) if t is not None]
    return min(candidates) if candidates else None


def _deadline_passed(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0.01


def _raise_if_failed(end: RunEvent) -> None:
    data = end.data
    if data["status"] in ("error", "timeout", "cancelled"):
        run, error = data["run"], data["error"] or {}
        raise RunFailure(data["status"], run.run_id, run.thread_id, error.get("type", ""), error.get("message", ""))


class RunServicer(run_service_pb2_grpc.RunServiceServicer):
    def __init__(self, runner: GraphRunner):
        self.runner = runner

    async def _start(self, spec, stream_modes, context) -> ActiveRun:
        active = await self.runner.start(parse_run_spec(spec, stream_modes))
        await context.send_initial_metadata(((RUN_ID_KEY, active.run_id), (THREAD_ID_KEY, active.thread_id)))
        return active

    def _stop_on_cancel(self, active: ActiveRun, context) -> None:
        # The call is gone (client cancelled, or gRPC's own deadline fired first).
        self.runner.stop(active.run_id, "timeout" if _deadline_passed(context) else "cancelled")

    @rpc
    async def Wait(self, request, context):
        active = await self._start(request.spec, None, context)
        try:
            end = await asyncio.wait_for(asyncio.shield(active.log.ended), _budget(context, timeout_seconds(request.spec)))
        except TimeoutError:
            self.runner.stop(active.run_id, "timeout")
            end = await asyncio.shield(active.log.ended)
        except asyncio.CancelledError:
            self._stop_on_cancel(active, context)
            raise
        _raise_if_failed(end)
        return run_service_pb2.RunServiceWaitResponse(
            run=run_to_proto(end.data["run"]),
            state=state_to_proto(end.data["state"] or {}, request.spec.granularity))

    @rpc
    async def Stream(self, request, context) -> AsyncIterator[run_service_pb2.RunServiceStreamResponse]:
        active = await self._start(request.spec, list(request.stream_mode), context)
        granularity = request.spec.granularity
        budget = _budget(context, timeout_seconds(request.spec))
        deadline = None if budget is None else asyncio.get_running_loop().time() + budget
        position = 0
        try:
            try:
                async for event in active.log.follow(deadline=deadline):
                    position = event.sequence
                    yield run_service_pb2.RunServiceStreamResponse(event=event_to_proto(event, granularity))
            except TimeoutError:
                self.runner.stop(active.run_id, "timeout")
                async for event in active.log.follow(after=position):
                    yield run_service_pb2.RunServiceStreamResponse(event=event_to_proto(event, granularity))
        except asyncio.CancelledError:
            self._stop_on_cancel(active, context)
            raise
        _raise_if_failed(active.log.ended.result())
