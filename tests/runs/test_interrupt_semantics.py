"""LangGraph's interrupt semantics, compared with LangGraph in-process on the same graphs
(tests/projects/interrupts): `"*"` pauses at every node, a run from any checkpoint forks the
thread whatever its status, and a resume LangGraph could not apply is refused before the
run is recorded, naming the pending interrupts."""

from __future__ import annotations

import importlib.util
import pathlib
import uuid

import grpc
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from conftest import scratch_database
from graphrun.v1 import run_pb2, run_service_pb2 as run_pb, run_service_pb2_grpc, thread_service_pb2 as thread_pb
from graphrun.v1 import thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import details, to_dict, wait_request

PROJECT = pathlib.Path(__file__).parents[1] / "projects" / "interrupts"


@pytest.fixture(scope="module")
def local():
    """The project's graphs in-process, each with a checkpointer of its own."""
    spec = importlib.util.spec_from_file_location("interrupt_graphs", PROJECT / "graphs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: getattr(module, name).copy(update={"checkpointer": InMemorySaver()}) for name in ("parallel", "chain")}


@pytest.fixture(scope="module")
async def served(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn,
                                 config=str(PROJECT / "langgraph.json"))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield run_service_pb2_grpc.RunServiceStub(channel), thread_service_pb2_grpc.ThreadServiceStub(channel)
        finally:
            await app.stop(grace=1)


def _config() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


@pytest.mark.parametrize("where", ["interrupt_before", "interrupt_after"])
async def test_a_star_pauses_at_every_node(served, local, where):
    runs, _ = served
    reply = await runs.Wait(wait_request(assistant_id="chain", input={"topic": "t"}, **{where: ["*"]}), timeout=30)
    config = _config()
    await local["chain"].ainvoke({"topic": "t"}, config, **{where: "*"})
    expected = await local["chain"].aget_state(config)
    assert reply.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    assert list(reply.state.next) == list(expected.next) == (["first"] if where == "interrupt_before" else ["second"])
    assert to_dict(reply.state.values).get("answers", []) == expected.values.get("answers", [])


async def test_a_run_from_an_earlier_checkpoint_forks_a_thread_waiting_on_an_interrupt(served, local):
    runs, threads = served
    asked = await runs.Wait(wait_request(assistant_id="chain", input={"topic": "t"}), timeout=30)
    assert asked.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    thread_id = asked.run.thread_id
    history = (await threads.GetHistory(thread_pb.ThreadServiceGetHistoryRequest(thread_id=thread_id),
                                        timeout=30)).states
    after_first = next(s for s in history if list(s.next) == ["second"])

    forked = await runs.Wait(wait_request(assistant_id="chain", thread_id=thread_id, input={"topic": "fork"},
                                          checkpoint_id=after_first.checkpoint.checkpoint_id), timeout=30)

    config = _config()
    await local["chain"].ainvoke({"topic": "t"}, config)
    earlier = [s async for s in local["chain"].aget_state_history(config) if s.next == ("second",)][0]
    await local["chain"].ainvoke({"topic": "fork"}, earlier.config)
    expected = await local["chain"].aget_state(config)
    assert forked.run.status == run_pb2.RUN_STATUS_INTERRUPTED  # `third` asks again on the fork
    assert list(forked.state.next) == list(expected.next)
    assert to_dict(forked.state.values) == expected.values


async def _pending(runs) -> tuple[str, list[str]]:
    asked = await runs.Wait(wait_request(assistant_id="parallel", input={"topic": "merger"}), timeout=30)
    assert asked.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    return asked.run.thread_id, sorted(i.id for i in asked.state.interrupts)


async def _run_count(runs, thread_id: str) -> int:
    return len((await runs.List(run_pb.RunServiceListRequest(thread_id=thread_id), timeout=30)).runs)


@pytest.mark.parametrize("resume, message", [
    ("yes", "2 interrupts are pending"),
    ({"0" * 32: "yes"}, f"interrupt {'0' * 32} is not pending"),
    ({}, "names no interrupt"),
], ids=["one-value", "unknown-id", "empty-map"])
async def test_a_resume_that_cannot_apply_is_refused_naming_the_pending_interrupts(served, resume, message):
    runs, _ = served
    thread_id, pending = await _pending(runs)
    before = await _run_count(runs, thread_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await runs.Wait(wait_request(assistant_id="parallel", thread_id=thread_id, command={"resume": resume}),
                        timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = details(refused.value)["violations"]["spec.command.resume"]
    assert message in violation and all(i in violation for i in pending)
    assert await _run_count(runs, thread_id) == before  # nothing was recorded


async def test_a_resume_keyed_by_interrupt_id_answers_each(served, local):
    runs, _ = served
    asked = await runs.Wait(wait_request(assistant_id="parallel", input={"topic": "merger"}), timeout=30)
    answers = {"legal ok?": "signed", "finance ok?": "funded"}
    resume = {i.id: answers[to_dict(i)["value"]] for i in asked.state.interrupts}
    state = await runs.Wait(wait_request(assistant_id="parallel", thread_id=asked.run.thread_id,
                                         command={"resume": resume}), timeout=30)
    assert state.run.status == run_pb2.RUN_STATUS_SUCCESS

    config = _config()
    await local["parallel"].ainvoke({"topic": "merger"}, config)
    pending = (await local["parallel"].aget_state(config)).interrupts
    await local["parallel"].ainvoke(Command(resume={i.id: answers[i.value] for i in pending}), config)
    expected = (await local["parallel"].aget_state(config)).values["answers"]
    assert sorted(to_dict(state.state.values)["answers"]) == sorted(expected) == ["finance: funded", "legal: signed"]
