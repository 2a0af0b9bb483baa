"""Parity with LangGraph in-process: the same graphs (tests/projects/parity) run by LangGraph and
served by graphrun stream the same events — namespace, mode and payload, in every stream mode,
from root graphs, two levels of subgraphs, Send fan-out, the functional API and parallel
interrupts — and leave the same state and history. This is the guard for LangGraph upgrades:
when LangGraph changes what it streams, these tests say where graphrun differs.

How each side is made comparable is in tests/parity.py.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import uuid

import grpc
import pytest
from google.protobuf import json_format
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from conftest import scratch_database
from graphrun import AsyncClient
from graphrun.v1 import run_pb2, run_service_pb2 as run_pb, run_service_pb2_grpc, thread_service_pb2 as thread_pb
from graphrun.v1 import thread_service_pb2_grpc
from graphrun_server.app import App, Settings
from support.helpers import details, spec
from support.parity import (ALL_MODES, erase_ids, expected_state, in_step_order, run_in_process, served_events,
                    served_state)

PROJECT = pathlib.Path(__file__).parents[1] / "projects" / "parity"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}
# graph id, input, whether to stream subgraphs, whether tasks run concurrently
CASES = {
    "root": ("root", HELLO, False, False),
    "nested": ("nested", HELLO, True, False),
    "nested-without-subgraphs": ("nested", HELLO, False, False),
    "fanout": ("fanout", {"notes": []}, True, True),
    "functional": ("functional", {"numbers": [1, 2, 3]}, True, False),
}


@pytest.fixture(scope="module")
def local():
    """The project's graphs in-process, each with a checkpointer of its own."""
    module_spec = importlib.util.spec_from_file_location("parity_graphs", PROJECT / "graphs.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # for its annotations to resolve
    module_spec.loader.exec_module(module)
    names = ("root", "nested", "fanout", "functional", "parallel_interrupts")
    return {name: getattr(module, name).copy(update={"checkpointer": InMemorySaver()}) for name in names}


@pytest.fixture(scope="module")
async def app(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn,
                                 config=str(PROJECT / "langgraph.json"))).start()
        try:
            yield app
        finally:
            await app.stop(grace=1)


@pytest.fixture(scope="module")
async def served(app):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield run_service_pb2_grpc.RunServiceStub(channel), thread_service_pb2_grpc.ThreadServiceStub(channel)


def _config() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


async def _stream(runs, modes: list[str], subgraphs: bool, **fields) -> list:
    request = run_pb.RunServiceStreamRequest(spec=spec(**fields), stream_mode=modes, subgraphs=subgraphs)
    return [response async for response in runs.Stream(request, timeout=60)]


async def _history(threads, thread_id: str) -> list:
    reply = await threads.GetHistory(thread_pb.ThreadServiceGetHistoryRequest(thread_id=thread_id, page_size=100),
                                     timeout=30)
    return [served_state(s) for s in reply.states]


@pytest.mark.parametrize("case", list(CASES))
async def test_every_stream_mode_and_the_state_match_langgraph(served, local, case):
    runs, threads = served
    graph_id, graph_input, subgraphs, concurrent = CASES[case]
    config = _config()

    responses = await _stream(runs, ALL_MODES, subgraphs, assistant_id=graph_id, input=graph_input)
    expected = await run_in_process(local[graph_id], graph_input, config, ALL_MODES, subgraphs)

    assert responses[-1].event.end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert in_step_order(served_events(responses), concurrent) == in_step_order(expected, concurrent)
    thread_id = responses[-1].event.end.run.thread_id
    state = await threads.GetState(thread_pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=30)
    assert served_state(state.state) == expected_state(await local[graph_id].aget_state(config))
    assert await _history(threads, thread_id) == [expected_state(s) async for s in
                                                  local[graph_id].aget_state_history(config)]


async def test_subgraph_events_carry_langgraph_namespaces(served):
    """Two levels deep: events of the grandchild graph are named `child:<id>`, `grandchild:<id>`,
    and its model's tokens arrive as they are generated, not only as the child's result."""
    runs, _ = served
    responses = await _stream(runs, ["messages", "custom"], True, assistant_id="nested", input=HELLO)
    namespaces = {tuple(part.split(":")[0] for part in r.event.namespace) for r in responses}
    assert namespaces == {(), ("child",), ("child", "grandchild")}
    deltas = [r.event for r in responses if r.event.HasField("message") and r.event.message.delta]
    assert deltas and all([p.split(":")[0] for p in e.namespace] == ["child", "grandchild"] for e in deltas)
    assert "".join(e.message.message["content"] for e in deltas) == "all good here"
    first = json_format.MessageToDict(deltas[0].message.metadata)
    assert first["langgraph_node"] == "think" and first["ls_model_name"] == "scripted-1"
    assert first["langgraph_checkpoint_ns"].startswith(deltas[0].namespace[0] + "|" + deltas[0].namespace[1])
    assert not any(e.message.HasField("metadata") for e in deltas[1:])  # once per message


async def test_without_subgraphs_a_subgraph_speaks_through_its_parent_node(served, local):
    runs, _ = served
    responses = await _stream(runs, ["messages"], False, assistant_id="nested", input=HELLO)
    assert all(not r.event.namespace for r in responses)
    messages = [r.event.message for r in responses if r.event.HasField("message")]
    assert [(m.node, m.delta) for m in messages] == [
        (meta["langgraph_node"], False) async for m, meta in local["nested"].astream(
            HELLO, _config(), stream_mode="messages")]


async def test_parallel_interrupts_stream_and_resume_as_in_langgraph(served, local):
    runs, threads = served
    graph = local["parallel_interrupts"]
    config = _config()
    asked = await _stream(runs, ALL_MODES, True, assistant_id="parallel_interrupts", input={"notes": []})
    assert in_step_order(served_events(asked)) == in_step_order(
        await run_in_process(graph, {"notes": []}, config, ALL_MODES, True))
    assert asked[-1].event.end.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    thread_id = asked[-1].event.end.run.thread_id

    pending = {i.value.string_value: i.id for i in asked[-1].event.end.state.interrupts}
    local_pending = {i.value: i.id for i in (await graph.aget_state(config)).interrupts}
    assert set(pending) == set(local_pending) == {"question a", "question b"}
    answers = {"question a": "yes", "question b": "no"}
    resumed = await _stream(runs, ALL_MODES, True, assistant_id="parallel_interrupts", thread_id=thread_id,
                            command={"resume": {pending[q]: a for q, a in answers.items()}})
    expected = await run_in_process(graph, Command(resume={local_pending[q]: a for q, a in answers.items()}), config,
                                    ALL_MODES, True)
    assert resumed[-1].event.end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert in_step_order(served_events(resumed)) == in_step_order(expected)
    state = await threads.GetState(thread_pb.ThreadServiceGetStateRequest(thread_id=thread_id), timeout=30)
    assert served_state(state.state) == expected_state(await graph.aget_state(config))
    assert await _history(threads, thread_id) == [expected_state(s) async for s in graph.aget_state_history(config)]


async def test_a_created_run_records_subgraph_events_for_join(served):
    runs, _ = served
    streamed = await _stream(runs, ALL_MODES, True, assistant_id="nested", input=HELLO)
    created = await runs.Create(run_pb.RunServiceCreateRequest(
        spec=spec(assistant_id="nested", input=HELLO), stream_mode=ALL_MODES, subgraphs=True), timeout=30)
    joined = [r async for r in runs.Join(run_pb.RunServiceJoinRequest(run_id=created.run.run_id), timeout=60)]
    assert served_events(joined) == served_events(streamed)
    assert any(r.event.namespace for r in joined)


async def test_the_events_mode_streams_langchains_callback_events(served, local):
    runs, _ = served
    responses = await _stream(runs, ["events"], False, assistant_id="nested", input=HELLO)
    served_kinds = [(r.event.langchain_event.event, r.event.langchain_event.name, list(r.event.namespace))
                    for r in responses if r.event.HasField("langchain_event")]
    expected = []
    async for event in local["nested"].astream_events(HELLO, _config(), version="v2"):
        if event["event"] == "on_chain_stream" and not event["parent_ids"]:
            continue  # the graph's own stream: graphrun's other events
        ns = event["metadata"].get("langgraph_checkpoint_ns", "")
        expected.append((event["event"], event["name"], ns.split("|")[:-1] if ns else []))
    assert erase_ids(served_kinds) == erase_ids(expected)
    tokens = [r.event.langchain_event for r in responses
              if r.event.HasField("langchain_event") and r.event.langchain_event.event == "on_chat_model_stream"]
    assert "".join(t.data["chunk"]["content"] for t in tokens) == "all good here"


async def test_messages_tuple_is_langgraph_apis_name_for_messages(served):
    runs, _ = served
    responses = await _stream(runs, ["messages-tuple"], False, assistant_id="root", input=HELLO)
    assert any(r.event.HasField("message") for r in responses)


async def test_an_unknown_stream_mode_is_refused_naming_it(served):
    runs, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _stream(runs, ["values", "tokens"], False, assistant_id="root", input=HELLO)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "stream_mode[1]" in details(raised.value)["violations"]


async def test_the_python_client_streams_and_records_subgraph_events(app):
    async with AsyncClient(f"127.0.0.1:{app.port}") as client:
        events = [e async for e in client.stream("nested", HELLO, stream_mode=["messages-tuple", "checkpoints"],
                                                 subgraphs=True)]
        run = await client.create_run("nested", HELLO, stream_mode=["debug"], subgraphs=True)
        joined = [e async for e in client.join(run["run_id"])]
    deltas = [e for e in events if e.kind == "message" and e.data["delta"]]
    assert [p.split(":")[0] for p in deltas[0].namespace] == ["child", "grandchild"]
    assert deltas[0].data["metadata"]["langgraph_node"] == "think"
    checkpoints = [e for e in events if e.kind == "checkpoint"]
    assert checkpoints[-1].data["state"]["values"]["notes"][-1] == "finished"
    assert {e.namespace[0].split(":")[0] for e in joined if e.kind == "debug" and e.namespace} == {"child"}


async def test_a_checkpoint_event_names_where_a_subgraph_tasks_checkpoints_are(served):
    """As GetState does: the task running a subgraph carries the namespace its checkpoints have."""
    runs, threads = served
    responses = await _stream(runs, ["checkpoints"], True, assistant_id="nested", input=HELLO)
    child_tasks = [t for r in responses if r.event.HasField("checkpoint") and not r.event.namespace
                   for t in r.event.checkpoint.state.tasks if t.name == "child"]
    assert child_tasks and child_tasks[0].checkpoint_ns == f"child:{child_tasks[0].id}"
    inside = [r.event for r in responses if r.event.HasField("checkpoint") and r.event.namespace]
    assert {e.checkpoint.state.checkpoint.checkpoint_ns for e in inside if len(e.namespace) == 1} == {
        child_tasks[0].checkpoint_ns}


async def test_joining_a_finished_run_replays_its_subgraph_events_from_storage(served):
    """After the run ended, Join reads its events back from PostgreSQL: namespaces included."""
    runs, _ = served
    streamed = await _stream(runs, ALL_MODES, True, assistant_id="nested", input=HELLO)
    run_id = streamed[-1].event.end.run.run_id
    joined = [r async for r in runs.Join(run_pb.RunServiceJoinRequest(run_id=run_id), timeout=60)]
    assert [list(r.event.namespace) for r in joined] == [list(r.event.namespace) for r in streamed]
    assert served_events(joined) == served_events(streamed)


async def test_each_graph_is_described_by_its_own_docstring_not_its_modules(app):
    """The module holds five graphs: its docstring describes none of them in particular."""
    from graphrun.v1 import assistant_service_pb2 as apb, assistant_service_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        listed = await assistant_service_pb2_grpc.AssistantServiceStub(channel).List(
            apb.AssistantServiceListRequest(), timeout=30)
    described = {a.assistant_id: a.description for a in listed.assistants}
    assert described["functional"] == "Doubles each number with a task, then adds them up."
    assert described["root"] == ""
