"""A run from an earlier checkpoint of an idle thread forks the thread, as LangGraph does
in-process (README: "resumed after an interrupt, or forked from any checkpoint"). The fork
of a thread waiting on an interrupt is in test_interrupt_semantics.py."""

from __future__ import annotations

import importlib.util
import pathlib
import uuid

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graphrun.v1 import run_pb2, thread_service_pb2 as tpb
from support.helpers import TIMEOUT, to_dict, wait_request

STEPS = pathlib.Path(__file__).parents[1] / "graphs" / "steps.py"


@pytest.fixture(scope="module")
def local():
    """tests/graphs/steps.py in-process, with a checkpointer of its own."""
    spec = importlib.util.spec_from_file_location("fork_steps", STEPS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graph.compile(checkpointer=InMemorySaver())


def _shape(values: dict, next_nodes, metadata: dict) -> tuple:
    """What must match between the served thread and LangGraph's: all but ids and times."""
    return values.get("log"), list(next_nodes), metadata.get("step"), metadata.get("source")


async def _served_history(threads, thread_id: str) -> list[dict]:
    response = await threads.GetHistory(tpb.ThreadServiceGetHistoryRequest(thread_id=thread_id, page_size=100),
                                        timeout=TIMEOUT)
    return [to_dict(s) for s in response.states]


def _served_shapes(history: list[dict]) -> list[tuple]:
    return [_shape(s["values"], s["next"], s["metadata"]) for s in history]


@pytest.mark.parametrize("fork_input", [None, {"log": ["x"]}], ids=["replay", "new-input"])
async def test_a_run_from_an_earlier_checkpoint_of_an_idle_thread_forks_it(runs, threads, local, fork_input):
    done = await runs.Wait(wait_request(assistant_id="steps", input={}), timeout=TIMEOUT)
    thread_id = done.run.thread_id
    before = await _served_history(threads, thread_id)
    earlier = next(s for s in before if s["next"] == ["second"])["checkpoint"]["checkpoint_id"]

    fields = {} if fork_input is None else {"input": fork_input}
    forked = await runs.Wait(wait_request(assistant_id="steps", thread_id=thread_id, checkpoint_id=earlier, **fields),
                             timeout=TIMEOUT)

    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    await local.ainvoke({}, config)
    fork_point = [s async for s in local.aget_state_history(config) if s.next == ("second",)][0]
    await local.ainvoke(fork_input, fork_point.config)
    expected = await local.aget_state(config)
    expected_history = [s async for s in local.aget_state_history(config)]

    assert forked.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(forked.state.values) == expected.values
    assert list(forked.state.next) == list(expected.next) == []
    after = await _served_history(threads, thread_id)
    assert _served_shapes(after) == [_shape(s.values, s.next, s.metadata) for s in expected_history]
    # A fork, not a rewrite: the first run's checkpoints are all still there, and the new branch
    # starts at the chosen checkpoint.
    old_ids = {s["checkpoint"]["checkpoint_id"] for s in before}
    assert old_ids <= {s["checkpoint"]["checkpoint_id"] for s in after}
    new = [s for s in after if s["checkpoint"]["checkpoint_id"] not in old_ids]
    assert new and new[-1]["parent_checkpoint"]["checkpoint_id"] == earlier  # the oldest of the branch
    assert forked.state.checkpoint.checkpoint_id == new[0]["checkpoint"]["checkpoint_id"]
