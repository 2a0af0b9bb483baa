"""RunService: ways of starting, watching and stopping runs the runner executes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from graphrun.v1 import run_pb2, run_service_pb2 as pb, run_service_pb2_grpc

from ..errors import FieldViolation, GraphrunError, InvalidArgument, RunFailure, invalid
from ..events import RunEvent
from ..runner import GraphRunner, RunRequest
from ..storage.records import RunRecord
from ..webhooks import WebhookPolicy
from .convert import (
    MAX_PAGE_SIZE,
    RUN_STATUS,
    duration_seconds,
    fill_end,
    fill_event,
    parse_run_spec,
    require_uuid,
    run_to_proto,
)
from .errors import DATABASE_ERRORS, rpc

RUN_ID_KEY = "graphrun-run-id"
THREAD_ID_KEY = "graphrun-thread-id"
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
        super().__init__(
            f"the deadline passed; run {run.run_id} continues in the background",
            metadata={"run_id": run.run_id, "thread_id": run.thread_id},
        )


def _deadline(context: grpc.aio.ServicerContext, timeout: float | None = None) -> float | None:
    """Event-loop time until which this call may wait for its run: the earlier of the call's
    deadline (less a margin) and `spec.timeout` from now.

    The margin leaves time to stop the run and record TIMEOUT before gRPC
    itself gives up on the call.
    """
    now = asyncio.get_running_loop().time()
    candidates = [now + timeout] if timeout else []
    remaining = context.time_remaining()
    if remaining is not None:
        candidates.append(now + max(remaining - min(0.05 + 0.05 * remaining, 0.5), 0.0))
    return min(candidates) if candidates else None


def _call_deadline_first(context: grpc.aio.ServicerContext, timeout: float | None) -> bool:
    """Whether the call's own deadline comes before `spec.timeout` (what `_deadline` will wait for)."""
    remaining = context.time_remaining()
    return remaining is not None and (not timeout or remaining - min(0.05 + 0.05 * remaining, 0.5) <= timeout)


def _deadline_passed(context: grpc.aio.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0.01


def _spec_timeout(spec) -> float | None:
    return spec.timeout.seconds + spec.timeout.nanos / 1e9 if spec.HasField("timeout") else None


class RunServicer(run_service_pb2_grpc.RunServiceServicer):
    def __init__(self, runner: GraphRunner, webhooks: WebhookPolicy | None = None):
        self.runner = runner
        self.webhooks = webhooks or WebhookPolicy(None, None)

    def _parse(self, spec, stream_modes: list[str] | None, subgraphs: bool) -> RunRequest:
        """The run a RunSpec asks for, its webhook's host checked against the allow-list."""
        request = parse_run_spec(spec, stream_modes, subgraphs=subgraphs)
        if request.webhook:
            self.webhooks.check(request.webhook, "spec.webhook")
        return request

    async def _submit(
        self, spec, stream_modes, context, subgraphs: bool = False, hold: asyncio.Future | None = None
    ) -> tuple[RunRecord, list[bool]]:
        """Start the run; if the call goes away before the run's end was detached, stop the
        run (on_disconnect CANCEL). Returns the run and a flag to set once the run no longer
        follows the call: its end was detached, or the server ended the call because the
        database went away (the run goes on; the caller can Join it by the id sent in the
        initial metadata).

        The watch is a done-callback on the call, not an `except CancelledError`: a client
        that leaves while a response is being written cancels gRPC's write, outside our code.
        A run started here goes no further than its first read or write before `hold` is done
        (GraphRunner.submit).
        """
        request = self._parse(spec, stream_modes, subgraphs)
        submitting = asyncio.ensure_future(self.runner.submit(request, queue=False, hold=hold))
        try:
            run = await asyncio.shield(submitting)
        except asyncio.CancelledError:  # the caller left while the run was being recorded
            if request.on_disconnect == "cancel":

                def cancel_once_recorded(t: asyncio.Future) -> None:
                    if not t.cancelled() and t.exception() is None:
                        self.runner.cancel_soon(t.result().run_id, "interrupt", "the caller went away")

                submitting.add_done_callback(cancel_once_recorded)
            raise
        detached = [False]
        if run.on_disconnect == "cancel":
            loop = asyncio.get_running_loop()

            def done(ctx) -> None:  # the call ended before the run's end reached the caller
                if not detached[0]:
                    action, why = (
                        ("timeout", "the caller's deadline passed")
                        if _deadline_passed(ctx)
                        else ("interrupt", "the caller went away")
                    )
                    loop.call_soon_threadsafe(self.runner.cancel_soon, run.run_id, action, why)

            context.add_done_callback(done)
        await context.send_initial_metadata(((RUN_ID_KEY, run.run_id), (THREAD_ID_KEY, run.thread_id)))
        return run, detached

    async def _stop_at_deadline(self, run: RunRecord, call_deadline: bool) -> RunEvent:
        """The call's deadline or the run's own `spec.timeout` passed: stop the run (TIMEOUT) and
        return its end — unless it was the call's deadline, on a run that continues without it."""
        if run.on_disconnect == "continue" and call_deadline:
            raise RunStillRunning(run)
        why = "the caller's deadline passed" if call_deadline else "the run's timeout passed"
        await self.runner.cancel(run.run_id, "timeout", why)
        return await self.runner.wait_end(run.run_id)

    @rpc
    async def Wait(self, request, context):
        run, detached = await self._submit(request.spec, None, context)
        try:
            try:
                end = await self.runner.wait_end(run.run_id, _deadline(context, _spec_timeout(request.spec)))
            except TimeoutError:
                end = await self._stop_at_deadline(run, _call_deadline_first(context, _spec_timeout(request.spec)))
        except DATABASE_ERRORS:
            detached[0] = True  # the database, not the caller, ends this call: the run goes on
            raise
        detached[0] = True
        response = fill_end(pb.RunServiceWaitResponse(), end.data, request.spec.granularity)
        _raise_if_failed(response.run, run)
        return response

    async def _events(
        self,
        response,
        run: RunRecord,
        after: int,
        granularity: int,
        deadline: float | None,
        *,
        batch: bool,
        stop_at_deadline: bool,
        call_deadline: bool = True,
    ):
        """Forward the run's events as `response` messages (`_one_each`, or with `batch` the
        request's `batch_events`, `_together`); at the deadline stop the run (or not), then
        forward the rest. `call_deadline`: the deadline is the call's own, not the run's
        `spec.timeout`."""
        pack = _together if batch else _one_each
        position = after
        try:
            async for events in self.runner.follow(run.run_id, after, deadline):
                position = events[-1].sequence
                for message in pack(response, events, granularity):
                    yield message
        except TimeoutError:
            if not stop_at_deadline:
                raise RunStillRunning(run) from None
            await self._stop_at_deadline(run, call_deadline)
            async for events in self.runner.follow(run.run_id, position):
                for message in pack(response, events, granularity):
                    yield message

    @rpc
    async def Stream(self, request, context) -> AsyncIterator[pb.RunServiceStreamResponse]:
        # The run takes the event loop for its steps only once the first event is on its way:
        # sending the initial metadata and that event would otherwise wait for them.
        first_out = asyncio.get_running_loop().create_future()
        try:
            run, detached = await self._submit(
                request.spec, list(request.stream_mode), context, request.subgraphs, hold=first_out
            )
            last = None
            deadline = _deadline(context, _spec_timeout(request.spec))
            call_deadline = _call_deadline_first(context, _spec_timeout(request.spec))
            try:
                async for response in self._events(
                    pb.RunServiceStreamResponse,
                    run,
                    0,
                    request.spec.granularity,
                    deadline,
                    batch=request.batch_events,
                    stop_at_deadline=True,
                    call_deadline=call_deadline,
                ):
                    last = _last_event(response)
                    if last.HasField("end"):
                        detached[0] = True
                    _release(first_out)  # gRPC starts sending the response as this yields
                    yield response
            except DATABASE_ERRORS:
                detached[0] = True  # the database, not the caller, ends this call: the run goes on
                raise
            _raise_if_failed(_ended(last), run)
        finally:
            _release(first_out)

    @rpc
    async def Create(self, request, context):
        violations: list[FieldViolation] = []
        delay = duration_seconds(request.start_delay, "start_delay", violations) or 0.0
        if violations:
            raise InvalidArgument(violations)
        spec = self._parse(request.spec, list(request.stream_mode), request.subgraphs)
        spec.on_disconnect = "continue"
        run = await self.runner.submit(spec, start_delay=delay)
        return pb.RunServiceCreateResponse(run=run_to_proto(run))

    @rpc
    async def Get(self, request, context):
        run_id = require_uuid(request.run_id, "run_id")
        run = await self.runner.get_run(run_id)
        return pb.RunServiceGetResponse(run=run_to_proto(run))

    @rpc
    async def List(self, request, context):
        thread_id = require_uuid(request.thread_id, "thread_id") if request.thread_id else None
        cron_id = require_uuid(request.cron_id, "cron_id") if request.cron_id else None
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE} (0 for 20)")
        statuses = []
        for i, status in enumerate(request.statuses):
            if status not in _STATUS_NAMES:
                raise invalid(
                    f"statuses[{i}]",
                    f"{status} is not a run status to filter by; expected one of "
                    + ", ".join(run_pb2.RunStatus.Name(v) for v in _STATUS_NAMES),
                )
            statuses.append(_STATUS_NAMES[status])
        runs, token = await self.runner.list_runs(
            thread_id, statuses, request.page_size or 20, request.page_token, cron_id
        )
        return pb.RunServiceListResponse(runs=[run_to_proto(r) for r in runs], next_page_token=token)

    @rpc
    async def Cancel(self, request, context):
        run_id = require_uuid(request.run_id, "run_id")
        if request.action not in _CANCEL_ACTIONS:
            raise invalid(
                "action",
                f"unknown value {request.action}; expected one of "
                + ", ".join(pb.CancelAction.Name(v) for v in _CANCEL_ACTIONS),
            )
        run = await self.runner.cancel(
            run_id, _CANCEL_ACTIONS[request.action], "cancelled by RunService.Cancel", wait=request.wait
        )
        return pb.RunServiceCancelResponse(run=run_to_proto(run))

    @rpc
    async def Join(self, request, context) -> AsyncIterator[pb.RunServiceJoinResponse]:
        run_id = require_uuid(request.run_id, "run_id")
        if request.after_sequence < 0:
            raise invalid("after_sequence", "must not be negative")
        if request.granularity not in run_pb2.Granularity.values():
            raise invalid(
                "granularity",
                f"unknown value {request.granularity}; expected one of " + ", ".join(run_pb2.Granularity.keys()),
            )
        run = await self.runner.get_run(run_id)
        stored = await self.runner.last_sequence(run_id)
        if request.after_sequence > stored or (run.ended and 0 < stored <= request.after_sequence):
            raise invalid(
                "after_sequence",
                f"run {run_id} has {stored} events" + (", the last its end" if run.ended else " so far"),
            )
        last = None
        async for response in self._events(
            pb.RunServiceJoinResponse,
            run,
            request.after_sequence,
            request.granularity,
            _deadline(context),
            batch=request.batch_events,
            stop_at_deadline=False,
        ):
            last = _last_event(response)
            yield response
        _raise_if_failed(_ended(last), run)


# With `batch_events`, a response of several events stays below 64 KiB (its events' sizes and
# each one's field tag and length); an event larger than that goes alone.
BATCH_BYTES = 64 * 1024
_EVENT_FIELD_OVERHEAD = 4  # the `events` field's tag and a length of up to 3 bytes (< 2 MiB)


def _one_each(response, events: list[RunEvent], granularity: int):
    """Each event in a `response` of its own (its `event` filled in place)."""
    for event in events:
        message = response()
        fill_event(message.event, event, granularity)
        yield message


def _together(response, events: list[RunEvent], granularity: int):
    """The events in as few `response`s as BATCH_BYTES allows (`events`, filled in place).
    They were read together: nothing is held back to fill a response."""
    if not events:
        return
    message, size = response(), 0
    for event in events:
        added = message.events.add()
        fill_event(added, event, granularity)
        grown = added.ByteSize() + _EVENT_FIELD_OVERHEAD
        if size and size + grown >= BATCH_BYTES:  # it opens the next response
            moved = message.events.pop()
            yield message
            message, size = response(), 0
            message.events.append(moved)
        size += grown
    yield message


def _release(hold: asyncio.Future) -> None:
    if not hold.done():
        hold.set_result(None)


def _last_event(response):
    """The last event a Stream or Join response carries."""
    return response.events[-1] if response.events else response.event


def _ended(last) -> run_pb2.Run | None:
    """The run of a stream's last event, if that was its end."""
    return last.end.run if last is not None and last.HasField("end") else None


def _raise_if_failed(ended: run_pb2.Run | None, run: RunRecord) -> None:
    """After the end of a run that did not succeed or pause: fail the call (never OK)."""
    if ended is None:
        return
    status = {
        run_pb2.RUN_STATUS_ERROR: "error",
        run_pb2.RUN_STATUS_TIMEOUT: "timeout",
        run_pb2.RUN_STATUS_CANCELLED: "cancelled",
    }.get(ended.status)
    if status:
        raise RunFailure(
            status, ended.run_id or run.run_id, ended.thread_id or run.thread_id, ended.error.type, ended.error.message
        )
