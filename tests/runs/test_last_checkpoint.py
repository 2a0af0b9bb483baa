"""A run whose only events are its metadata and end records its end in the transaction of its
last checkpoint. Which checkpoint is the last is decided as the checkpoint is written, from the
checkpoint alone (`may_have_next_tasks`); it must agree with LangGraph's own `next` for every
checkpoint of every kind of graph, or a run would be recorded as finished too early."""

import pathlib
import sys

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from graphrun.v1 import run_pb2
from graphrun_server.example_agent.agent import make_graph
from graphrun_server.snapshots import may_have_next_tasks
from support.helpers import question, to_dict, wait_request

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "graphs"))
import approval, nested, steps  # noqa: E402


def _compiled(graph):
    graph = graph.compile() if hasattr(graph, "compile") else graph
    return graph.copy(update={"checkpointer": InMemorySaver()})


@pytest.mark.parametrize("graph, inputs", [
    (steps.graph, [{"log": []}]),
    (nested.graph, [{"log": []}]),
    (make_graph(), [question()]),
    (approval.graph, [question(), Command(resume="yes")]),  # stops on interrupt(), then resumes
    (steps.graph, [{"fail_at": "second"}]),  # fails midway: its last checkpoint has a next task
])
async def test_the_last_checkpoint_is_recognised_as_langgraph_sees_it(graph, inputs):
    graph = _compiled(graph)
    config = {"configurable": {"thread_id": "t"}}
    for graph_input in inputs:
        try:
            await graph.ainvoke(graph_input, config)
        except ValueError:
            pass
    checked = 0
    for stored in graph.checkpointer.list(config):
        if stored.config["configurable"]["checkpoint_ns"]:
            continue  # a subgraph's: runs record their end only with a checkpoint of the root graph
        snapshot = await graph.aget_state(stored.config)
        assert may_have_next_tasks(graph, stored.checkpoint) == bool(snapshot.next), stored.metadata
        checked += 1
    assert checked >= 3


async def test_a_wait_stores_its_end_with_its_last_checkpoint(runs, db):
    answer = await runs.Wait(wait_request(assistant_id="steps", input={"log": []}))
    assert answer.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(answer.state.values)["log"] == ["first", "second", "third"]
    last = db.execute("SELECT checkpoint_id, xmin::text AS tx FROM checkpoints WHERE thread_id = %s"
                      " ORDER BY checkpoint_id DESC LIMIT 1", (answer.run.thread_id,)).fetchone()
    run = db.execute("SELECT status, xmin::text AS tx FROM graphrun_run WHERE run_id = %s",
                     (answer.run.run_id,)).fetchone()
    end = db.execute("SELECT data, xmin::text AS tx FROM graphrun_run_event WHERE run_id = %s AND kind = 'end'",
                     (answer.run.run_id,)).fetchone()
    assert run["status"] == "success" and end["data"]["checkpoint_id"] == last["checkpoint_id"]
    assert run["tx"] == end["tx"] == last["tx"]  # one transaction
    assert answer.state.checkpoint.checkpoint_id == last["checkpoint_id"]
