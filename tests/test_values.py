"""What graphs hold reaches clients faithfully: task events of runs that ask questions,
messages with every field LangChain keeps, non-JSON values written one documented way."""

import pytest

from graphrun.v1 import event_pb2, run_pb2, thread_pb2, thread_service_pb2 as tpb
from helpers import question, stream_request, to_dict


async def _collect(call):
    return [response.event async for response in call]


async def _state(threads, thread_id: str) -> dict:
    return to_dict((await threads.GetState(tpb.ThreadServiceGetStateRequest(thread_id=thread_id))).state)


# -- interrupts in task events ------------------------------------------------------------


@pytest.mark.parametrize("graph, input, asked", [
    ("approval", question("new roof"), 1),  # interrupt() in a root node
    ("subgraph_asks", {}, 1),  # in a subgraph's node
    ("parallel_asks", {}, 2),  # in two parallel branches at once
])
async def test_task_events_carry_the_interrupts_the_state_lists(runs, threads, graph, input, asked):
    events = await _collect(runs.Stream(stream_request(["tasks"], assistant_id=graph, input=input)))
    end = events[-1].end
    assert end.run.status == run_pb2.RUN_STATUS_INTERRUPTED, end.run.error
    thread = await threads.Get(tpb.ThreadServiceGetRequest(thread_id=end.run.thread_id))
    assert thread.thread.status == thread_pb2.THREAD_STATUS_INTERRUPTED

    state = await _state(threads, end.run.thread_id)
    finished = [to_dict(e.task) for e in events
                if e.HasField("task") and e.task.phase == event_pb2.TASK_PHASE_FINISHED]
    from_events = sorted((i["id"], str(i["value"])) for task in finished for i in task.get("interrupts", []))
    from_state = sorted((i["id"], str(i["value"])) for i in state["interrupts"])
    assert len(from_state) == asked and all(i for i, _ in from_state)
    assert from_events == from_state
    by_task = {t["id"]: t["interrupts"] for t in state["tasks"] if t.get("interrupts")}
    assert {t["id"]: t["interrupts"] for t in finished if t.get("interrupts")} == by_task
