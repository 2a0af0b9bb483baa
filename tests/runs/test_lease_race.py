"""A run that ends while a lease renewal is on its way is not lost.

That renewal comes back without the run (its row is no longer RUNNING: it just ended), and the
lease keeper reports it as it reports a lost lease. The runner used to take that at its word:
it logged "lease lost; stopped here, another replica continues it" for a run that had succeeded,
and a run whose end went with its last checkpoint was even stopped before hearing the answer and
counted in graphrun_runs_finished_total{status="lost"} (about 1 run in 900-1,700 on one server).
Here the race is forced: right after the run's end commits, and before the run hears so, a
renewal is made (`LeaseKeeper.nudge`) and its report handled. Without the fix both tests fail on
the log line every time; the first also on the `lost` count in some runs (when LangGraph's exit
cancels the checkpoint write the stop interrupted).
"""

import asyncio
import contextlib
import logging

import grpc
import pytest

from conftest import GRAPHS_CONFIG
from graphrun.v1 import run_pb2, run_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import TIMEOUT, stream_request, wait_request


@pytest.fixture(scope="module")
async def counted(database_url):
    """A server of its own, with metrics on (any free port)."""
    app = App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG, metrics_port=0,
                       metrics_host="127.0.0.1"))
    await app.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield app, run_service_pb2_grpc.RunServiceStub(channel)
    await app.stop(grace=1)


class _Race:
    """Makes the lease keeper renew, and waits for its report to be handled on the event loop,
    at the moment the run's end has committed."""

    def __init__(self, app: App):
        self.keeper = app.runner._claims._leases
        self.loop = asyncio.get_running_loop()
        self.reported: dict[str, asyncio.Event] = {}
        self.raced: list[str] = []  # runs whose renewal came back without them, as the race needs
        self._forward = self.keeper._report

        def report(lost: dict[str, int], cancels: dict[str, str]) -> None:  # on the keeper's threads
            self._forward(lost, cancels)  # the runner's handler, queued on the loop...
            for run_id in lost:  # ...and after it, in order, this
                self.loop.call_soon_threadsafe(self._handled, run_id)

        self.keeper._report = report

    def _handled(self, run_id: str) -> None:
        self.raced.append(run_id)
        self.reported.setdefault(run_id, asyncio.Event()).set()

    async def renew_now(self, run_id: str) -> None:
        self.keeper.nudge()
        # Not wait_for: Python 3.11's loses a cancellation that arrives as its inner await completes.
        with contextlib.suppress(TimeoutError):  # the assertions tell a race that did not happen
            async with asyncio.timeout(10):
                await self.reported.setdefault(run_id, asyncio.Event()).wait()

    def close(self) -> None:
        self.keeper._report = self._forward


@contextlib.contextmanager
def _warnings_about_leases():
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("graphrun_server.runner")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _finished(app: App, status: str) -> float:
    return app.metrics.registry.get_sample_value("graphrun_runs_finished_total", {"status": status}) or 0.0


async def test_a_run_whose_end_rides_on_its_last_checkpoint_is_not_lost_to_a_renewal(counted):
    """Wait, no stream modes: the end is in the transaction of the last checkpoint write."""
    app, runs = counted
    race = _Race(app)
    saver, records = app.runner.checkpointer, app.records
    ending: list[str] = []
    statement = records.finish_run_statement

    def finish_run_statement(run_id, *args):  # the run's last checkpoint will carry its end
        ending.append(run_id)
        return statement(run_id, *args)

    cursor = saver._cursor

    @contextlib.asynccontextmanager
    async def racing_cursor(*, pipeline: bool = False):
        async with cursor(pipeline=pipeline) as cur:
            yield cur
        if pipeline and ending:  # that write committed; the run has not seen its answer yet
            await race.renew_now(ending.pop())

    records.finish_run_statement, saver._cursor = finish_run_statement, racing_cursor
    try:
        lost, succeeded = _finished(app, "lost"), _finished(app, "success")
        with _warnings_about_leases() as warnings:
            call = runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
            answer = await call
            run_id = dict(await call.initial_metadata())["graphrun-run-id"]
    finally:
        del records.finish_run_statement, saver._cursor
        race.close()
    assert run_id in race.raced  # the renewal did come back without the run, as it ended
    assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert not [w for w in warnings if run_id in w], warnings
    assert _finished(app, "lost") == lost
    assert _finished(app, "success") == succeeded + 1


async def test_a_run_whose_end_is_being_recorded_is_not_lost_to_a_renewal(counted):
    """Stream: the end is recorded on its own once the graph is done (with the last events)."""
    app, runs = counted
    race = _Race(app)
    records = app.records
    finish_run = records.finish_run

    async def racing_finish_run(run_id, *args):
        finished = await finish_run(run_id, *args)
        await race.renew_now(run_id)  # committed; the run has not seen the answer yet
        return finished

    records.finish_run = racing_finish_run
    try:
        lost, succeeded = _finished(app, "lost"), _finished(app, "success")
        with _warnings_about_leases() as warnings:
            events = [r.event async for r in runs.Stream(stream_request(["updates"], assistant_id="steps", input={}),
                                                           timeout=TIMEOUT)]
    finally:
        del records.finish_run
        race.close()
    run_id = events[0].metadata.run_id
    assert run_id in race.raced
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert not [w for w in warnings if run_id in w], warnings
    assert _finished(app, "lost") == lost
    assert _finished(app, "success") == succeeded + 1
