"""Interrupts: static boundaries per request, interrupt() in a node, and resume."""

import grpc
import pytest

from graphrun.v1 import run_pb2, thread_service_pb2
from support.helpers import TIMEOUT, details, messages, question, to_dict, wait_request


async def _thread_status(threads, thread_id):
    return (await threads.Get(thread_service_pb2.ThreadServiceGetRequest(thread_id=thread_id),
                              timeout=TIMEOUT)).thread.status


async def test_dynamic_interrupt_then_resume(runs, threads):
    first = await runs.Wait(wait_request(assistant_id="approval", input=question("new roof")), timeout=TIMEOUT)
    assert first.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    state = to_dict(first.state)
    assert state["next"] == ["review"]
    (interrupt,) = state["interrupts"]
    assert interrupt["value"] == {"question": "approve?", "proposal": "proposal for: new roof"}
    assert interrupt["id"]
    thread_id = first.run.thread_id
    from graphrun.v1 import thread_pb2
    assert await _thread_status(threads, thread_id) == thread_pb2.THREAD_STATUS_INTERRUPTED

    resumed = await runs.Wait(wait_request(assistant_id="approval", thread_id=thread_id, command={"resume": "yes"}),
                              timeout=TIMEOUT)
    assert resumed.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert messages(resumed.state)[-1]["content"] == "decision: yes"
    assert to_dict(resumed.state).get("interrupts", []) == []
    assert await _thread_status(threads, thread_id) == thread_pb2.THREAD_STATUS_IDLE


@pytest.mark.parametrize("option, node, done, pending", [
    ("interrupt_before", "second", ["first"], ["second"]),
    ("interrupt_after", "second", ["first", "second"], ["third"]),
])
async def test_static_interrupt_then_continue(runs, option, node, done, pending):
    first = await runs.Wait(wait_request(assistant_id="steps", input={}, **{option: [node]}), timeout=TIMEOUT)
    assert first.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    assert to_dict(first.state.values)["log"] == done
    assert list(first.state.next) == pending

    # No input and no command: continue from the checkpoint.
    rest = await runs.Wait(wait_request(assistant_id="steps", thread_id=first.run.thread_id), timeout=TIMEOUT)
    assert rest.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(rest.state.values)["log"] == ["first", "second", "third"]


async def test_resume_without_a_pending_interrupt_is_invalid(runs):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(assistant_id="steps", thread_id=done.run.thread_id, command={"resume": "x"}),
                        timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.command.resume" in details(caught.value)["violations"]


async def test_unknown_interrupt_node_is_invalid(runs):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await runs.Wait(wait_request(assistant_id="steps", input={}, interrupt_before=["nope"]), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.interrupt_before[0]" in details(caught.value)["violations"]
