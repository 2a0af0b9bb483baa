"""`AsyncClient`: graphrun over a grpc.aio channel, for asyncio applications.

This module is the one implementation of the client: `_sync.py` (`Client`) is generated from it
by `scripts/gen_sync_client.py` (`async`/`await` dropped, `grpc.aio` -> `grpc`, `AsyncIterator`
-> `Iterator`), and tests/test_client_parity.py fails while it is stale. Edit this file, then
run `python scripts/gen_sync_client.py`. What a method does besides the call itself (building
its request, converting its response) lives in `_convert.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Unpack

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from . import _convert as c
from ._convert import DEFAULT_TARGET
from ._errors import from_rpc_error
from ._types import (
    CancelAction,
    Event,
    Granularity,
    OnDisconnect,
    RunOptions,
    RunResult,
    RunStatus,
    StreamMode,
    ThreadStatus,
)
from .v1 import (
    assistant_service_pb2 as assistant_pb,
    assistant_service_pb2_grpc,
    cron_service_pb2 as cron_pb,
    cron_service_pb2_grpc,
    run_service_pb2 as run_pb,
    run_service_pb2_grpc,
    store_service_pb2_grpc,
    thread_service_pb2 as thread_pb,
    thread_service_pb2_grpc,
)

__all__ = ["AsyncClient"]


def _channel(
    target: str,
    secure: bool,
    root_certificates: bytes | None,
    options: Sequence[tuple[str, Any]] | None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
) -> grpc.aio.Channel:
    if secure:
        credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        return grpc.aio.secure_channel(target, credentials, options=c.channel_options(options))
    return grpc.aio.insecure_channel(target, options=c.channel_options(options))


class AsyncClient:
    """A graphrun client for asyncio code.

    One channel, shared by all calls; close it when done.

    `token` is sent as `authorization: Bearer <token>` on every call, so an
    authenticating proxy (or a future server) can check it.

    Calls that only read (thread, state, history, run and assistant lookups,
    `join` until its first event, `health`) are retried by gRPC when they fail
    `UNAVAILABLE`. Calls that start a run (`wait`, `stream`, `create_run`) carry a
    request id (the caller's `request_id`, else one the client makes) and are sent
    again with it: the server answers a repeat with the run the first call started,
    so a run is not started twice. Other calls that change something are not retried.
    Keepalive pings check the connection every 5 min 20 s while calls are open.
    `options` (gRPC channel options) override these defaults.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        token: str | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
    ) -> None:
        self.target = target
        # certificate_chain/private_key: this client's certificate, for servers that require one (mTLS).
        self._channel = _channel(target, secure, root_certificates, options, certificate_chain, private_key)
        self._metadata = c.auth_metadata(token)
        self._runs = run_service_pb2_grpc.RunServiceStub(self._channel)
        self._threads = thread_service_pb2_grpc.ThreadServiceStub(self._channel)
        self._assistants = assistant_service_pb2_grpc.AssistantServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self._channel.close()

    async def _unary(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def _starting(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """A call that starts a run (Wait, Create), sent again with its request id while the
        server is unavailable: a repeat gets the run the first call started, never a second."""
        delays = c.retry_delays()
        while True:
            try:
                return await method(request, metadata=self._metadata, timeout=timeout)
            except grpc.RpcError as exc:
                if not delays or not c.retryable(exc):
                    raise from_rpc_error(exc) from exc
            await asyncio.sleep(delays.pop(0))

    async def _follow(
        self, method: Any, request: Any, deadline: float | None, *, retry: bool = False
    ) -> AsyncIterator[Event]:
        """The events of a Stream or Join call; its failure raised naming the run (from its `metadata` event).

        With `retry` (a Stream, whose request carries a request id) a call the server could not
        finish is sent again: it follows the same run from its start, and what was already
        yielded is skipped by sequence number."""
        run_id = thread_id = None
        seen = 0
        delays = c.retry_delays() if retry else []
        while True:
            call = method(request, metadata=self._metadata, timeout=deadline)
            try:
                async for response in call:
                    for message in c.response_events(response):
                        event = c.event(message)
                        if event.sequence <= seen:
                            continue
                        seen = event.sequence
                        if event.kind == "metadata":
                            run_id, thread_id = event.data.get("run_id"), event.data.get("thread_id")
                        yield event
                return
            except grpc.RpcError as exc:
                if not delays or not c.retryable(exc):
                    raise from_rpc_error(exc, run_id=run_id, thread_id=thread_id) from exc
            finally:
                call.cancel()
            await asyncio.sleep(delays.pop(0))

    # -- runs ---------------------------------------------------------------------
    #
    # `wait`, `stream` and `create_run` take the run's options (`RunOptions`: thread_id, command,
    # config, context, metadata, interrupt_before/after, multitask_strategy, if_not_exists,
    # checkpoint_id, granularity, timeout, durability) as keywords; `deadline` (seconds) bounds the call.

    async def wait(
        self,
        assistant_id: str,
        input: Any = None,
        *,
        on_disconnect: OnDisconnect | int | None = None,
        deadline: float | None = None,
        **options: Unpack[RunOptions],
    ) -> RunResult:
        """Run a graph to its end (or interrupt) and return the run and the thread's state.

        `input` is any JSON value: a dict (a state graph's keys), or a number, string or list for
        a graph taking one (an `@entrypoint`); the same in `stream` and `create_run`. `timeout`
        (seconds) bounds the run on the server; `deadline` (seconds) bounds the call;
        `on_disconnect="continue"` lets the run outlive the call. A failed run raises
        `RunFailedError` / `RunTimeoutError` / `RunCancelledError` carrying `run_id` and `thread_id`.
        """
        request = c.wait_request(c.run_spec(assistant_id, input, on_disconnect=on_disconnect, **options))
        response = await self._starting(self._runs.Wait, request, deadline)
        return c.run_result(response)

    def stream(
        self,
        assistant_id: str,
        input: Any = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] = ("values",),
        subgraphs: bool = False,
        on_disconnect: OnDisconnect | int | None = None,
        deadline: float | None = None,
        **options: Unpack[RunOptions],
    ) -> AsyncIterator[Event]:
        """Run a graph and yield its events as they happen: `metadata` first, `end` last.

        `stream_mode` names LangGraph's modes (`values`, `updates`, `messages`, `custom`,
        `tasks`, `checkpoints`, `debug`, `events`); `subgraphs=True` adds the events from
        inside subgraphs, each with its `namespace`. The run starts when iteration does.

        A run that fails still yields its `end` event; the error is raised on
        the next iteration. Leaving the loop early cancels the call (and the run).
        """
        spec = c.run_spec(assistant_id, input, on_disconnect=on_disconnect, **options)
        return self._follow(self._runs.Stream, c.stream_request(spec, stream_mode, subgraphs), deadline, retry=True)

    # -- background runs ------------------------------------------------------------
    #
    # Run dicts use the proto's field names, with enum values spelt as `RunResult.status` spells
    # the status: `run["status"] == "running"`, as `list_runs(statuses=...)` takes them.

    async def create_run(
        self,
        assistant_id: str,
        input: Any = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] = ("values",),
        subgraphs: bool = False,
        start_delay: float | None = None,
        deadline: float | None = None,
        **options: Unpack[RunOptions],
    ) -> dict[str, Any]:
        """Start a run in the background and return it at once (status `pending` or `running`).

        `stream_mode` (and `subgraphs`) choose the events recorded for `join`; `start_delay`
        (seconds) postpones the start; `timeout` (seconds) bounds the run's
        execution. Other options as for `wait`. Follow the run with
        `join(run["run_id"])`, look it up with `get_run`, stop it with `cancel_run`.
        """
        request = c.create_request(c.run_spec(assistant_id, input, **options), stream_mode, start_delay, subgraphs)
        response = await self._starting(self._runs.Create, request, deadline)
        return c.to_dict(response.run)

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run's record (`NotFoundError`, reason `RUN_NOT_FOUND`, if there is none)."""
        response = await self._unary(self._runs.Get, run_pb.RunServiceGetRequest(run_id=run_id))
        return c.to_dict(response.run)

    async def list_runs(
        self,
        thread_id: str | None = None,
        statuses: RunStatus | Iterable[RunStatus | int] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        *,
        cron_id: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of runs, newest first, and the token of the next page (None at the end).

        `thread_id` limits the list to one thread; `statuses` to runs in these
        statuses, named in lowercase (`"pending"`, `"running"`, `"success"`…);
        `cron_id` to the runs that cron's ticks started.
        """
        request = c.list_runs_request(thread_id, statuses, page_size, page_token, cron_id)
        response = await self._unary(self._runs.List, request)
        return [c.to_dict(r) for r in response.runs], response.next_page_token or None

    async def iter_runs(
        self,
        thread_id: str | None = None,
        statuses: RunStatus | Iterable[RunStatus | int] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching run, newest first, fetching pages as needed."""
        token: str | None = None
        while True:
            runs, token = await self.list_runs(thread_id, statuses, page_size, token)
            for run in runs:
                yield run
            if not token:
                return

    async def cancel_run(
        self, run_id: str, action: CancelAction | int = "interrupt", wait: bool = False
    ) -> dict[str, Any]:
        """Stop a pending or running run and return it; a run that already ended is returned unchanged.

        `action="interrupt"` keeps the checkpoints the run wrote, `"rollback"`
        deletes them (and its events). With `wait=True` the call returns once
        the run has stopped (status `cancelled`); otherwise as soon
        as the cancel is recorded (a running run may still show `running`).
        """
        response = await self._unary(self._runs.Cancel, c.cancel_request(run_id, action, wait))
        return c.to_dict(response.run)

    def join(
        self,
        run_id: str,
        after_sequence: int = 0,
        granularity: Granularity | int | None = None,
        *,
        deadline: float | None = None,
    ) -> AsyncIterator[Event]:
        """Follow a run (from any replica): its events numbered after `after_sequence`, then new ones, to `end`.

        Events arrive once, in order, without gaps, as `stream` yields them (the
        kinds recorded are the `stream_mode` of `create_run`). A run that did
        not succeed or pause yields its `end` event, then raises
        `RunFailedError` / `RunTimeoutError` / `RunCancelledError`. If the
        serving replica shuts down, `ServerDrainingError` (an `UnavailableError`)
        carries `last_sequence`: join again after it.
        Leaving the loop early ends only this call, not the run.
        """
        return self._follow(self._runs.Join, c.join_request(run_id, after_sequence, granularity), deadline)

    # -- crons ----------------------------------------------------------------------
    #
    # A cron starts a run at each tick of its schedule (see `Cron` in cron.proto). The run is
    # given as to `create_run`: the assistant, the input and the run options as keywords
    # (`thread_id` for one thread every tick runs on; none: a new thread per tick). The cron's
    # own metadata is `cron_metadata`; `metadata` is each run's, as elsewhere.

    @functools.cached_property
    def _crons(self) -> cron_service_pb2_grpc.CronServiceStub:
        return cron_service_pb2_grpc.CronServiceStub(self._channel)

    async def create_cron(
        self,
        schedule: str,
        assistant_id: str,
        input: Any = None,
        *,
        timezone: str | None = None,
        end_time: dt.datetime | None = None,
        paused: bool = False,
        cron_metadata: Mapping[str, Any] | None = None,
        stream_mode: StreamMode | Sequence[StreamMode] = ("values",),
        subgraphs: bool = False,
        cron_id: str | None = None,
        **options: Unpack[RunOptions],
    ) -> dict[str, Any]:
        """Create a cron and return it (with its `next_run_time`).

        `schedule` is a cron expression (5 fields, or 6 with seconds first: `*/10 * * * * *`)
        read in `timezone` (an IANA name; default UTC); `end_time` (an aware datetime; naive
        is UTC) ends it; `paused` creates it paused.
        """
        fields = {
            "schedule": schedule,
            "timezone": timezone,
            "end_time": end_time,
            "paused": paused,
            "metadata": cron_metadata,
        }
        cron = c.cron_message(cron_id, fields, c.cron_spec(assistant_id, input, options), stream_mode, subgraphs)
        response = await self._unary(self._crons.Create, cron_pb.CronServiceCreateRequest(cron=cron))
        return c.to_dict(response.cron)

    async def update_cron(
        self,
        cron_id: str,
        *,
        schedule: str | None = None,
        timezone: str | None = None,
        end_time: dt.datetime | None = None,
        no_end_time: bool = False,
        paused: bool | None = None,
        cron_metadata: Mapping[str, Any] | None = None,
        assistant_id: str | None = None,
        input: Any = None,
        stream_mode: StreamMode | Sequence[StreamMode] = ("values",),
        subgraphs: bool = False,
        **options: Unpack[RunOptions],
    ) -> dict[str, Any]:
        """Change what is given and return the cron: its schedule, time zone, end time
        (`no_end_time=True` removes it), `paused` (False resumes it), `cron_metadata`; with
        `assistant_id`, the run each tick starts (input, options, stream_mode and subgraphs as for
        `create_cron`), replaced as a whole."""
        if assistant_id is None and (options or input is not None):
            raise TypeError("the input and run options replace the cron's run: give assistant_id too")
        fields = {
            "schedule": schedule,
            "timezone": timezone,
            "end_time": None if no_end_time else end_time,
            "paused": paused,
            "metadata": cron_metadata,
        }
        given = {name for name, value in fields.items() if value is not None} | ({"end_time"} if no_end_time else set())
        spec = c.cron_spec(assistant_id, input, options) if assistant_id is not None else None
        cron = c.cron_message(cron_id, fields, spec, stream_mode, subgraphs)
        response = await self._unary(self._crons.Update, c.update_cron_request(cron, given, spec is not None))
        return c.to_dict(response.cron)

    async def get_cron(self, cron_id: str) -> dict[str, Any]:
        """A cron (`NotFoundError`, reason `CRON_NOT_FOUND`, if there is none)."""
        response = await self._unary(self._crons.Get, cron_pb.CronServiceGetRequest(cron_id=cron_id))
        return c.to_dict(response.cron)

    async def delete_cron(self, cron_id: str) -> None:
        """Delete a cron: no more ticks (its runs stay)."""
        await self._unary(self._crons.Delete, cron_pb.CronServiceDeleteRequest(cron_id=cron_id))

    async def list_crons(
        self,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the caller's crons, newest first, and the token of the next page (None at the
        end); `assistant_id` and `thread_id` keep those whose runs execute it or run on it."""
        response = await self._unary(
            self._crons.List, c.list_crons_request(assistant_id, thread_id, page_size, page_token)
        )
        return [c.to_dict(cron) for cron in response.crons], response.next_page_token or None

    # -- threads ------------------------------------------------------------------

    async def create_thread(
        self,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        ttl: float | None = None,
        ttl_strategy: str | int | None = None,
    ) -> dict[str, Any]:
        """Create a thread (with a server-picked id unless `thread_id` is given).

        `ttl` (seconds, at least 60) is its own time-to-live after its last activity, and
        `ttl_strategy` what happens then (`delete`, the default, or `keep_latest`); without them
        the server's default applies, if any.
        """
        request = thread_pb.ThreadServiceCreateRequest(thread_id=thread_id or "", metadata=c.to_struct(metadata))
        if ttl is not None or ttl_strategy is not None:
            request.ttl.CopyFrom(c.thread_ttl(ttl, ttl_strategy))
        response = await self._unary(self._threads.Create, request)
        return c.to_dict(response.thread)

    async def copy_thread(self, thread_id: str, new_thread_id: str | None = None) -> dict[str, Any]:
        """A new thread with `thread_id`'s whole history, metadata and assistant (not its runs)."""
        request = thread_pb.ThreadServiceCopyRequest(thread_id=thread_id, new_thread_id=new_thread_id or "")
        response = await self._unary(self._threads.Copy, request)
        return c.to_dict(response.thread)

    async def prune_thread(
        self, thread_id: str, strategy: str | int | None = None
    ) -> tuple[dict[str, Any] | None, int]:
        """Keep only the thread's latest checkpoint (`keep_latest`, the default) or `delete` it; the
        thread afterwards (None when deleted) and how many checkpoints went."""
        response = await self._unary(self._threads.Prune, c.prune_request(thread_id, strategy))
        return (c.to_dict(response.thread) if response.HasField("thread") else None), int(response.checkpoints_deleted)

    async def list_threads(
        self,
        statuses: ThreadStatus | Iterable[ThreadStatus | int] | None = None,
        metadata: Mapping[str, Any] | None = None,
        assistant_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the caller's threads, newest first, and the token of the next page (None at the end).

        `statuses` keeps threads in these statuses (`"idle"`, `"busy"`, `"interrupted"`, `"error"`);
        `metadata` those whose metadata contains these values; `assistant_id` those whose latest
        run executed this assistant.
        """
        request = c.list_threads_request(statuses, metadata, assistant_id, page_size, page_token)
        response = await self._unary(self._threads.List, request)
        return [c.to_dict(t) for t in response.threads], response.next_page_token or None

    async def iter_threads(
        self,
        statuses: ThreadStatus | Iterable[ThreadStatus | int] | None = None,
        metadata: Mapping[str, Any] | None = None,
        assistant_id: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching thread, newest first, fetching pages as needed."""
        token: str | None = None
        while True:
            threads, token = await self.list_threads(statuses, metadata, assistant_id, page_size, token)
            for thread in threads:
                yield thread
            if not token:
                return

    async def get_thread(self, thread_id: str) -> dict[str, Any]:
        response = await self._unary(self._threads.Get, thread_pb.ThreadServiceGetRequest(thread_id=thread_id))
        return c.to_dict(response.thread)

    async def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its runs and checkpoints (stopping a run in flight)."""
        await self._unary(self._threads.Delete, thread_pb.ThreadServiceDeleteRequest(thread_id=thread_id))

    async def get_state(
        self,
        thread_id: str,
        checkpoint_id: str | None = None,
        *,
        checkpoint_ns: str | None = None,
        subgraphs: bool = False,
    ) -> dict[str, Any]:
        """The thread's state at its latest checkpoint, or at `checkpoint_id`.

        `checkpoint_ns` reads a subgraph's state instead (a task's `checkpoint_ns`, such as
        `"child:<task id>"`); with `subgraphs`, each pending subgraph task carries its subgraph's
        state under `state`, as LangGraph's `get_state(subgraphs=True)`.
        """
        request = thread_pb.ThreadServiceGetStateRequest(
            thread_id=thread_id,
            checkpoint_id=checkpoint_id or "",
            checkpoint_ns=checkpoint_ns or "",
            subgraphs=subgraphs,
        )
        response = await self._unary(self._threads.GetState, request)
        return c.state_dict(response.state)

    async def get_history(
        self,
        thread_id: str,
        page_size: int | None = None,
        page_token: str | None = None,
        *,
        checkpoint_ns: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the thread's states (a subgraph's with `checkpoint_ns`), newest first, and the
        token of the next page (None at the end)."""
        request = thread_pb.ThreadServiceGetHistoryRequest(
            thread_id=thread_id,
            page_size=page_size or 0,
            page_token=page_token or "",
            checkpoint_ns=checkpoint_ns or "",
        )
        response = await self._unary(self._threads.GetHistory, request)
        return [c.state_dict(s) for s in response.states], response.next_page_token or None

    async def iter_history(
        self, thread_id: str, page_size: int | None = None, *, checkpoint_ns: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every state of the thread (a subgraph's with `checkpoint_ns`), newest first, fetching pages as needed."""
        token: str | None = None
        while True:
            states, token = await self.get_history(thread_id, page_size, token, checkpoint_ns=checkpoint_ns)
            for state in states:
                yield state
            if not token:
                return

    async def update_state(
        self,
        thread_id: str,
        values: Mapping[str, Any] | None,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
        *,
        checkpoint_ns: str | None = None,
    ) -> dict[str, Any]:
        """Write values as if `as_node` had returned them (into a subgraph's state with
        `checkpoint_ns`); returns the new checkpoint's reference."""
        request = thread_pb.ThreadServiceUpdateStateRequest(
            thread_id=thread_id,
            as_node=as_node or "",
            checkpoint_id=checkpoint_id or "",
            checkpoint_ns=checkpoint_ns or "",
        )
        if values is not None:
            request.values.CopyFrom(c.to_struct(values))
        response = await self._unary(self._threads.UpdateState, request)
        return c.to_dict(response.checkpoint)

    # -- assistants and health ------------------------------------------------------

    async def list_assistants(
        self,
        graph_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of assistants, and the token of the next page (None at the end): each graph's
        default assistant first (its id is the graph id), then the caller's own, newest first.

        `graph_id` keeps the assistants of one graph; `metadata` those whose metadata contains these
        values (which leaves the defaults out).
        """
        request = c.list_assistants_request(graph_id, metadata, page_size, page_token)
        response = await self._unary(self._assistants.List, request)
        return [c.to_dict(a) for a in response.assistants], response.next_page_token or None

    async def iter_assistants(
        self, graph_id: str | None = None, metadata: Mapping[str, Any] | None = None, page_size: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching assistant, in `list_assistants`' order, fetching pages as needed."""
        token: str | None = None
        while True:
            assistants, token = await self.list_assistants(graph_id, metadata, page_size, token)
            for assistant in assistants:
                yield assistant
            if not token:
                return

    async def get_assistant(self, assistant_id: str) -> dict[str, Any]:
        """An assistant at its current version, with its graph's nodes and JSON schemas."""
        request = assistant_pb.AssistantServiceGetRequest(assistant_id=assistant_id)
        response = await self._unary(self._assistants.Get, request)
        return c.to_dict(response.assistant)

    async def create_assistant(
        self,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> dict[str, Any]:
        """A new assistant of a served graph, at version 1 (with a server-picked id unless
        `assistant_id` is given). Its `config` and `context` are the defaults its runs' own are merged
        over; `webhook` is the completion webhook of its runs that name none."""
        request = c.assistant_fields(
            assistant_pb.AssistantServiceCreateRequest(graph_id=graph_id, assistant_id=assistant_id or ""),
            {
                "name": name,
                "description": description,
                "config": config,
                "context": context,
                "metadata": metadata,
                "webhook": webhook,
            },
        )
        response = await self._unary(self._assistants.Create, request)
        return c.to_dict(response.assistant)

    async def update_assistant(
        self,
        assistant_id: str,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        webhook: str | None = None,
    ) -> dict[str, Any]:
        """Write the assistant's next version and make it current: the options given replace the
        current version's values (`{}` or `""` clears one), the others are kept."""
        request = c.assistant_fields(
            assistant_pb.AssistantServiceUpdateRequest(assistant_id=assistant_id),
            {
                "graph_id": graph_id,
                "name": name,
                "description": description,
                "config": config,
                "context": context,
                "metadata": metadata,
                "webhook": webhook,
            },
        )
        response = await self._unary(self._assistants.Update, request)
        return c.to_dict(response.assistant)

    async def delete_assistant(self, assistant_id: str) -> None:
        """Delete an assistant with all its versions (runs in flight keep running)."""
        await self._unary(
            self._assistants.Delete, assistant_pb.AssistantServiceDeleteRequest(assistant_id=assistant_id)
        )

    async def list_assistant_versions(
        self, assistant_id: str, page_size: int | None = None, page_token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the assistant's versions, newest first, and the token of the next page (None at the end)."""
        request = assistant_pb.AssistantServiceListVersionsRequest(
            assistant_id=assistant_id, page_size=page_size or 0, page_token=page_token or ""
        )
        response = await self._unary(self._assistants.ListVersions, request)
        return [c.to_dict(v) for v in response.versions], response.next_page_token or None

    async def set_latest_assistant_version(self, assistant_id: str, version: int) -> dict[str, Any]:
        """Make an existing version of the assistant its current one; the assistant at that version."""
        request = assistant_pb.AssistantServiceSetLatestRequest(assistant_id=assistant_id, version=version)
        response = await self._unary(self._assistants.SetLatest, request)
        return c.to_dict(response.assistant)

    async def health(self, service: str = "") -> str:
        """`SERVING` or `NOT_SERVING` (grpc.health.v1) for the server, or one of its services."""
        response = await self._unary(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # -- the Store ------------------------------------------------------------------------
    #
    # LangGraph's long-term Store, which graphs reach as `store: BaseStore` / `runtime.store`.
    # Namespaces are tuples (or lists) of labels; items come back as dicts shaped like
    # LangGraph's `Item.dict()`. With authentication on, a caller reaches only the namespaces
    # whose first label is its identity (see StoreService in store_service.proto).
    # `get_item`, `search_items` and `list_namespaces` are retried on UNAVAILABLE as the other reads.

    @functools.cached_property
    def _store(self) -> store_service_pb2_grpc.StoreServiceStub:
        return store_service_pb2_grpc.StoreServiceStub(self._channel)

    async def put_item(
        self,
        namespace: str | Sequence[str],
        key: str,
        value: Mapping[str, Any],
        *,
        index: bool | Sequence[str] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Store `value` (a JSON object) under namespace and key, replacing what was there.

        `index`: None embeds the fields `store.index.fields` names (with a semantic index),
        False embeds nothing, a list of JSON paths embeds those. `ttl` in whole minutes, as in
        LangGraph's `put`: None takes the store's `default_ttl`, 0 means the item never expires.
        """
        await self._unary(self._store.PutItem, c.put_item_request(namespace, key, value, index, ttl))

    async def get_item(
        self, namespace: str | Sequence[str], key: str, *, refresh_ttl: bool | None = None
    ) -> dict[str, Any]:
        """The item (`NotFoundError`, reason `ITEM_NOT_FOUND`, if there is none). `refresh_ttl`
        None follows the store's `refresh_on_read`."""
        response = await self._unary(self._store.GetItem, c.get_item_request(namespace, key, refresh_ttl))
        return c.item_dict(response.item)

    async def delete_item(self, namespace: str | Sequence[str], key: str) -> None:
        """Delete an item (`NotFoundError`, reason `ITEM_NOT_FOUND`, if there is none)."""
        await self._unary(self._store.DeleteItem, c.delete_item_request(namespace, key))

    async def search_items(
        self,
        namespace_prefix: str | Sequence[str] = (),
        *,
        query: str | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        refresh_ttl: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Items under a namespace prefix matching `filter` (LangGraph's: `{"kind": "note"}`,
        `{"score": {"$gte": 3}}`), ranked by similarity to `query` when the store has a semantic
        index (each with a `score`), else newest first (`score` None). `limit` 1-1000
        (default 10)."""
        request = c.search_items_request(namespace_prefix, query, filter, limit, offset, refresh_ttl)
        response = await self._unary(self._store.SearchItems, request)
        return [c.search_item_dict(item) for item in response.items]

    async def list_namespaces(
        self,
        *,
        prefix: str | Sequence[str] | None = None,
        suffix: str | Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[tuple[str, ...]]:
        """The namespaces holding items, as tuples, ordered; `*` in `prefix`/`suffix` matches any
        one label; `max_depth` cuts them to their first labels. `limit` 1-1000 (default 100)."""
        request = c.list_namespaces_request(prefix, suffix, max_depth, limit, offset)
        return c.namespaces(await self._unary(self._store.ListNamespaces, request))
