"""Subgraph state through ThreadService, compared with LangGraph in-process on the same graph
(tests/projects/subgraphs: parent -> child -> grandchild, which asks with `interrupt()`):
GetState with `subgraphs` nests each pending subgraph task's state as `get_state(subgraphs=True)`
does; GetState, GetHistory and UpdateState take a `checkpoint_ns` to address a subgraph's
checkpoints as LangGraph's config does; a namespace that is malformed, names no subgraph or
holds no checkpoint is refused naming `checkpoint_ns`; another caller's thread stays unseen.
"""

from __future__ import annotations

import asyncio
import importlib.util
import pathlib
import time
import uuid

import grpc
import jwt
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, StateSnapshot

from conftest import scratch_database
from graphrun import AsyncClient, Client
from graphrun.v1 import run_pb2, run_service_pb2_grpc, thread_service_pb2 as thread_pb, thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from support.helpers import details, to_dict, wait_request

PROJECT = pathlib.Path(__file__).parents[1] / "projects" / "subgraphs"
TOPIC = {"topic": "paint"}
SECRET = "subgraph-state-secret-of-enough-length"


@pytest.fixture(scope="module")
def local():
    """The project's graph in-process with a checkpointer of its own."""
    spec = importlib.util.spec_from_file_location("subgraph_graphs", PROJECT / "graphs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parent.copy(update={"checkpointer": InMemorySaver()})


class Served:
    def __init__(self, app: App, channel: grpc.aio.Channel, secured: App):
        self.app, self.secured = app, secured
        self.runs = run_service_pb2_grpc.RunServiceStub(channel)
        self.threads = thread_service_pb2_grpc.ThreadServiceStub(channel)

    async def get_state(self, thread_id: str, **fields) -> dict:
        request = thread_pb.ThreadServiceGetStateRequest(thread_id=thread_id, **fields)
        return _state(to_dict((await self.threads.GetState(request, timeout=30)).state))

    async def history(self, thread_id: str, **fields) -> list[dict]:
        request = thread_pb.ThreadServiceGetHistoryRequest(thread_id=thread_id, **fields)
        return [_state(to_dict(s)) for s in (await self.threads.GetHistory(request, timeout=30)).states]


@pytest.fixture(scope="module")
async def served(admin_dsn, tmp_path_factory):
    """The project served by an open server, and by a second one with authentication on the same
    database (a replica, as far as the threads are concerned)."""
    with scratch_database(admin_dsn) as dsn:
        config = str(PROJECT / "langgraph.json")
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn, config=config)).start()
        secured = await App(Settings(host="127.0.0.1", port=0, database_url=dsn, config=config,
                                     auth=AuthSettings(jwt_secret=SECRET))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield Served(app, channel, secured)
        finally:
            await secured.stop(grace=1)
            await app.stop(grace=1)


def _state(state: dict) -> dict:
    """A served state as a dict that has `values` (an empty Struct is not printed)."""
    state.setdefault("values", {})
    for task in state.get("tasks", []):
        if "state" in task:
            _state(task["state"])
    return state


def _shape(state: dict) -> dict:
    """What must equal LangGraph's: values, next, interrupts and tasks, nested states alike.
    Task, checkpoint and interrupt ids are new in every run; `_namespaces` checks them."""
    return {"values": state["values"], "next": list(state["next"]),
            "interrupts": [i["value"] for i in state["interrupts"]],
            "tasks": [{"name": t["name"], "interrupts": [i["value"] for i in t["interrupts"]],
                       "state": _shape(t["state"]) if "state" in t else None} for t in state["tasks"]]}


def _local_shape(snapshot: StateSnapshot) -> dict:
    """The same, read straight from LangGraph's StateSnapshot."""
    return {"values": snapshot.values, "next": list(snapshot.next),
            "interrupts": [i.value for i in snapshot.interrupts],
            "tasks": [{"name": t.name, "interrupts": [i.value for i in t.interrupts],
                       "state": _local_shape(t.state) if isinstance(t.state, StateSnapshot) else None}
                      for t in snapshot.tasks]}


def _history_shape(states: list[dict]) -> list[dict]:
    return [{**_shape(s), "step": s["metadata"]["step"], "source": s["metadata"]["source"]} for s in states]


def _local_history_shape(snapshots: list[StateSnapshot]) -> list[dict]:
    return [{**_local_shape(s), "step": s.metadata["step"], "source": s.metadata["source"]} for s in snapshots]


def _namespaces(state: dict, parent_ns: str = "") -> list[str]:
    """Every subgraph task's namespace, checked to be LangGraph's (`node:task_id` under its
    parent's) and to be the one its nested state was read from."""
    found = []
    for task in state["tasks"]:
        if task["name"] not in ("child", "grandchild"):  # a plain node: no namespace of its own
            assert task["checkpoint_ns"] == "" and "state" not in task
            continue
        expected = f"{parent_ns}|{task['name']}:{task['id']}" if parent_ns else f"{task['name']}:{task['id']}"
        assert task["checkpoint_ns"] == expected
        found.append(expected)
        if "state" in task:
            assert task["state"]["checkpoint"]["checkpoint_ns"] == expected
            found += _namespaces(task["state"], expected)
    return found


def _local_namespaces(snapshot: StateSnapshot) -> list[str]:
    found = []
    for task in snapshot.tasks:
        if isinstance(task.state, StateSnapshot):
            found.append(task.state.config["configurable"]["checkpoint_ns"])
            found += _local_namespaces(task.state)
    return found


def _interrupt_ids(state: dict) -> set[str]:
    ids = {i["id"] for i in state["interrupts"]}
    for task in state["tasks"]:
        ids |= {i["id"] for i in task["interrupts"]} | (_interrupt_ids(task["state"]) if "state" in task else set())
    return ids


async def _asked(served: Served) -> str:
    """A new thread whose grandchild waits on its question; its id."""
    reply = await served.runs.Wait(wait_request(assistant_id="parent", input=TOPIC), timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    return reply.run.thread_id


async def _local_asked(local) -> dict:
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    await local.ainvoke(TOPIC, config)
    return config


def _at(config: dict, checkpoint_ns: str) -> dict:
    return {"configurable": {**config["configurable"], "checkpoint_ns": checkpoint_ns}}


async def _served_namespaces(served: Served, thread_id: str) -> tuple[str, str]:
    state = await served.get_state(thread_id, subgraphs=True)
    child = state["tasks"][0]
    return child["checkpoint_ns"], child["state"]["tasks"][0]["checkpoint_ns"]


async def _local_namespaces_of(local, config: dict) -> tuple[str, str]:
    child = (await local.aget_state(config, subgraphs=True)).tasks[0]
    return child.state.config["configurable"]["checkpoint_ns"], child.state.tasks[0].state.config["configurable"][
        "checkpoint_ns"]


# -- reads ----------------------------------------------------------------------------------


async def test_get_state_with_subgraphs_nests_each_level_as_langgraph_does(served, local):
    reply = await served.runs.Wait(wait_request(assistant_id="parent", input=TOPIC), timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    thread_id = reply.run.thread_id
    nested = await served.get_state(thread_id, subgraphs=True)
    config = await _local_asked(local)
    expected = await local.aget_state(config, subgraphs=True)

    assert _shape(nested) == _local_shape(expected)
    assert nested["tasks"][0]["state"]["tasks"][0]["state"]["next"] == ["ask"]  # two levels down
    assert nested["tasks"][0]["state"]["values"]["draft"] == "a draft"  # the child's own channel
    namespaces = _namespaces(nested)
    assert [ns.count("|") for ns in namespaces] == [ns.count("|") for ns in _local_namespaces(expected)] == [0, 1]
    assert len(_interrupt_ids(nested)) == 1  # one question, seen at every level under one id

    flat = await served.get_state(thread_id)  # without `subgraphs`: the namespace, no state
    assert flat["tasks"][0]["checkpoint_ns"] == namespaces[0] and "state" not in flat["tasks"][0]
    assert reply.state.tasks[0].checkpoint_ns == namespaces[0]  # Wait's answer shows it too
    assert _shape(flat) == _local_shape(await local.aget_state(config))


async def test_get_state_and_history_by_namespace_read_the_subgraph_as_langgraph_does(served, local):
    thread_id = await _asked(served)
    config = await _local_asked(local)
    for served_ns, local_ns in zip(await _served_namespaces(served, thread_id),
                                   await _local_namespaces_of(local, config)):
        state = await served.get_state(thread_id, checkpoint_ns=served_ns)
        assert state["checkpoint"]["checkpoint_ns"] == served_ns
        assert _shape(state) == _local_shape(await local.aget_state(_at(config, local_ns)))
        nested = await served.get_state(thread_id, checkpoint_ns=served_ns, subgraphs=True)
        assert _shape(nested) == _local_shape(await local.aget_state(_at(config, local_ns), subgraphs=True))

        history = await served.history(thread_id, checkpoint_ns=served_ns, page_size=100)
        expected = [s async for s in local.aget_state_history(_at(config, local_ns))]
        assert _history_shape(history) == _local_history_shape(expected)
        assert {s["checkpoint"]["checkpoint_ns"] for s in history} == {served_ns}

        # An earlier checkpoint of the subgraph, by id within its namespace.
        oldest = history[-1]["checkpoint"]["checkpoint_id"]
        assert _shape(await served.get_state(thread_id, checkpoint_ns=served_ns, checkpoint_id=oldest)) == \
            _local_shape(await local.aget_state(expected[-1].config))

        # Pages walk the namespace's checkpoints, not the root's.
        paged, token = [], ""
        while True:
            page = await served.threads.GetHistory(thread_pb.ThreadServiceGetHistoryRequest(
                thread_id=thread_id, checkpoint_ns=served_ns, page_size=1, page_token=token), timeout=30)
            paged += [s.checkpoint.checkpoint_id for s in page.states]
            token = page.next_page_token
            if not token:
                break
        assert paged == [s["checkpoint"]["checkpoint_id"] for s in history]


# -- writes ---------------------------------------------------------------------------------


async def test_update_state_by_namespace_writes_into_the_subgraph_and_the_resume_sees_it(served, local):
    thread_id = await _asked(served)
    _, served_ns = await _served_namespaces(served, thread_id)
    ref = (await served.threads.UpdateState(thread_pb.ThreadServiceUpdateStateRequest(
        thread_id=thread_id, checkpoint_ns=served_ns, values={"note": "edited"}, as_node="prepare"),
        timeout=30)).checkpoint
    assert (ref.thread_id, ref.checkpoint_ns) == (thread_id, served_ns)

    config = await _local_asked(local)
    _, local_ns = await _local_namespaces_of(local, config)
    await local.aupdate_state(_at(config, local_ns), {"note": "edited"}, as_node="prepare")

    grandchild = await served.get_state(thread_id, checkpoint_ns=served_ns)
    assert grandchild["checkpoint"]["checkpoint_id"] == ref.checkpoint_id
    assert grandchild["values"]["note"] == "edited"
    assert _shape(grandchild) == _local_shape(await local.aget_state(_at(config, local_ns)))
    assert _shape(await served.get_state(thread_id, subgraphs=True)) == \
        _local_shape(await local.aget_state(config, subgraphs=True))
    root_thread = to_dict((await served.threads.Get(thread_pb.ThreadServiceGetRequest(thread_id=thread_id),
                                                    timeout=30)).thread)
    assert root_thread["status"] == "THREAD_STATUS_INTERRUPTED"  # the question is still open

    done = await served.runs.Wait(wait_request(assistant_id="parent", thread_id=thread_id,
                                               command={"resume": "blue"}), timeout=30)
    expected = await local.ainvoke(Command(resume="blue"), config)
    assert done.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(done.state.values) == expected
    assert "grandchild:ask blue (edited)" in expected["log"]


async def test_update_state_by_namespace_takes_the_subgraphs_nodes(served):
    thread_id = await _asked(served)
    child_ns, _ = await _served_namespaces(served, thread_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.threads.UpdateState(thread_pb.ThreadServiceUpdateStateRequest(
            thread_id=thread_id, checkpoint_ns=child_ns, values={"draft": "x"}, as_node="start"), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = details(refused.value)["violations"]["as_node"]
    assert "subgraph 'child'" in violation and "intro, grandchild, outro" in violation
    assert (await served.get_state(thread_id, checkpoint_ns=child_ns))["values"]["draft"] == "a draft"


# -- refusals -------------------------------------------------------------------------------


def _call(served: Served, rpc: str, thread_id: str, checkpoint_ns: str, **fields):
    if rpc == "GetState":
        return served.threads.GetState(thread_pb.ThreadServiceGetStateRequest(
            thread_id=thread_id, checkpoint_ns=checkpoint_ns, subgraphs=True, **fields), timeout=30)
    if rpc == "GetHistory":
        return served.threads.GetHistory(thread_pb.ThreadServiceGetHistoryRequest(
            thread_id=thread_id, checkpoint_ns=checkpoint_ns), timeout=30)
    return served.threads.UpdateState(thread_pb.ThreadServiceUpdateStateRequest(
        thread_id=thread_id, checkpoint_ns=checkpoint_ns, values={"note": "x"}, **fields), timeout=30)


RPCS = ["GetState", "GetHistory", "UpdateState"]
TASK = "4f0c6d38-5a2e-4c3b-9a43-7a9ad1b0c0de"


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize("checkpoint_ns, code, says", [
    ("child:", grpc.StatusCode.INVALID_ARGUMENT, "each level must be"),
    (f"child:{TASK}|", grpc.StatusCode.INVALID_ARGUMENT, "each level must be"),
    (f":{TASK}", grpc.StatusCode.INVALID_ARGUMENT, "each level must be"),
    (f"child:{TASK}:1", grpc.StatusCode.INVALID_ARGUMENT, "each level must be"),
    ("c" * 2000, grpc.StatusCode.INVALID_ARGUMENT, "longer than"),
    (f"nope:{TASK}", grpc.StatusCode.INVALID_ARGUMENT, "has no subgraph at 'nope'; subgraphs: child, child|grandchild"),
    (f"child:{TASK}|intro:{TASK}", grpc.StatusCode.INVALID_ARGUMENT, "has no subgraph at 'child|intro'"),
    (f"child:{TASK}", grpc.StatusCode.NOT_FOUND, "has no checkpoint in checkpoint_ns"),
    (f"child:{TASK}|grandchild:{TASK}", grpc.StatusCode.NOT_FOUND, "has no checkpoint in checkpoint_ns"),
], ids=["no-task-id", "empty-level", "no-node", "two-colons", "too-long", "unknown-subgraph", "not-a-subgraph",
        "unknown-task", "unknown-nested-task"])
async def test_a_namespace_that_addresses_no_subgraph_checkpoint_is_refused_naming_it(served, rpc, checkpoint_ns,
                                                                                        code, says):
    thread_id = await _asked(served)
    before = await served.history(thread_id, page_size=100)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(served, rpc, thread_id, checkpoint_ns)
    assert refused.value.code() == code
    found = details(refused.value)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert says in found["violations"]["checkpoint_ns"]
    else:
        assert (found["reason"], found["metadata"]["checkpoint_ns"]) == ("CHECKPOINT_NS_NOT_FOUND", checkpoint_ns)
        assert says in refused.value.details()
    assert await served.history(thread_id, page_size=100) == before  # nothing written, at the root
    if rpc == "UpdateState" and code == grpc.StatusCode.NOT_FOUND:  # nor in the namespace
        with pytest.raises(grpc.aio.AioRpcError) as still:
            await _call(served, "GetState", thread_id, checkpoint_ns)
        assert still.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("rpc", ["GetState", "UpdateState"])
async def test_a_checkpoint_id_of_another_namespace_is_not_found_in_this_one(served, rpc):
    thread_id = await _asked(served)
    child_ns, _ = await _served_namespaces(served, thread_id)
    root_checkpoint = (await served.get_state(thread_id))["checkpoint"]["checkpoint_id"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(served, rpc, thread_id, child_ns, checkpoint_id=root_checkpoint)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    found = details(refused.value)
    assert found["reason"] == "CHECKPOINT_NOT_FOUND"
    assert (found["metadata"]["checkpoint_id"], found["metadata"]["checkpoint_ns"]) == (root_checkpoint, child_ns)


@pytest.mark.parametrize("rpc", RPCS)
async def test_a_namespace_of_a_thread_that_never_ran_is_not_found(served, rpc):
    thread = (await served.threads.Create(thread_pb.ThreadServiceCreateRequest(), timeout=30)).thread
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _call(served, rpc, thread.thread_id, f"child:{TASK}")
    # UpdateState, as at the root, needs a graph: the thread has none yet.
    expected = "THREAD_HAS_NO_ASSISTANT" if rpc == "UpdateState" else "CHECKPOINT_NS_NOT_FOUND"
    assert details(refused.value)["reason"] == expected


# -- ownership ------------------------------------------------------------------------------


def _bearer(caller: str) -> tuple:
    now = int(time.time())
    token = jwt.encode({"sub": caller, "exp": now + 60, "iat": now}, SECRET, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("rpc", RPCS)
async def test_another_callers_subgraph_state_is_answered_as_a_thread_that_does_not_exist(served, rpc):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served.secured.port}") as channel:
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
        owner, stranger = _bearer("team-a"), _bearer("team-b")
        asked = await runs.Wait(wait_request(assistant_id="parent", input=TOPIC), metadata=owner, timeout=30)
        thread_id = asked.run.thread_id
        request = thread_pb.ThreadServiceGetStateRequest(thread_id=thread_id, subgraphs=True)
        child_ns = (await threads.GetState(request, metadata=owner, timeout=30)).state.tasks[0].checkpoint_ns
        fields = {"thread_id": thread_id, "checkpoint_ns": child_ns}
        call = {"GetState": lambda md: threads.GetState(thread_pb.ThreadServiceGetStateRequest(**fields, subgraphs=True),
                                                        metadata=md, timeout=30),
                "GetHistory": lambda md: threads.GetHistory(thread_pb.ThreadServiceGetHistoryRequest(**fields),
                                                            metadata=md, timeout=30),
                "UpdateState": lambda md: threads.UpdateState(thread_pb.ThreadServiceUpdateStateRequest(
                    **fields, values={"draft": "mine"}), metadata=md, timeout=30)}[rpc]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(stranger)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert details(refused.value)["reason"] == "THREAD_NOT_FOUND"
        answer = to_dict(await call(owner))  # the owner is answered, from the subgraph's checkpoints
        refs = [answer["checkpoint"]] if rpc == "UpdateState" else \
            [answer["state"]["checkpoint"]] if rpc == "GetState" else [s["checkpoint"] for s in answer["states"]]
        assert refs and {r["checkpoint_ns"] for r in refs} == {child_ns}


# -- the Python clients ---------------------------------------------------------------------


async def test_the_python_clients_take_subgraphs_and_checkpoint_ns(served, local):
    target = f"127.0.0.1:{served.app.port}"
    config = await _local_asked(local)
    _, local_ns = await _local_namespaces_of(local, config)
    await local.aupdate_state(_at(config, local_ns), {"note": "edited"})
    expected_nested = _local_shape(await local.aget_state(config, subgraphs=True))
    expected_history = _local_history_shape([s async for s in local.aget_state_history(_at(config, local_ns))])

    async with AsyncClient(target) as client:
        thread_id = (await client.wait("parent", TOPIC)).run["thread_id"]
        nested = await client.get_state(thread_id, subgraphs=True)
        grandchild_ns = nested["tasks"][0]["state"]["tasks"][0]["checkpoint_ns"]
        ref = await client.update_state(thread_id, {"note": "edited"}, checkpoint_ns=grandchild_ns)
        assert ref["checkpoint_ns"] == grandchild_ns
        assert _shape(await client.get_state(thread_id, subgraphs=True)) == expected_nested
        assert _history_shape([s async for s in client.iter_history(thread_id, 1, checkpoint_ns=grandchild_ns)]) == \
            expected_history

    def with_the_blocking_client() -> tuple[dict, list[dict], str]:
        with Client(target) as client:
            thread = client.wait("parent", TOPIC).run["thread_id"]
            ns = client.get_state(thread, subgraphs=True)["tasks"][0]["state"]["tasks"][0]["checkpoint_ns"]
            client.update_state(thread, {"note": "edited"}, checkpoint_ns=ns)
            history, _ = client.get_history(thread, 100, checkpoint_ns=ns)
            return client.get_state(thread, subgraphs=True), history, client.get_state(thread, checkpoint_ns=ns)

    blocking, history, grandchild = await asyncio.to_thread(with_the_blocking_client)
    assert _shape(blocking) == expected_nested
    assert _history_shape(history) == expected_history
    assert grandchild["values"]["note"] == "edited"
