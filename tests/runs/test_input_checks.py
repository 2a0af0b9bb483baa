"""A run's input, checked against its graph before the run is recorded, and any JSON value as
input (`spec.input_value`), compared with LangGraph in-process on the same graphs
(tests/projects/inputs): what LangGraph runs, graphrun runs to the same state; what fails in
LangGraph (and what the graph's input schema refuses) is INVALID_ARGUMENT naming the field, with
no run recorded and no thread created."""

from __future__ import annotations

import importlib.util
import pathlib
import uuid
from typing import Any

import grpc
import pytest
from langchain_core.messages import AnyMessage, BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from conftest import scratch_database
from graphrun import AsyncClient, InvalidArgumentError, _convert
from graphrun.v1 import (assistant_service_pb2 as assistant_pb, assistant_service_pb2_grpc, run_pb2,
                         run_service_pb2 as run_pb, run_service_pb2_grpc, thread_service_pb2 as thread_pb,
                         thread_service_pb2_grpc)
from graphrun_server.app import App, Settings
from graphrun_server.errors import InvalidArgument
from graphrun_server.input_check import check_input
from graphrun_server.registry import Assistant
from graphrun_server.wire import to_json
from support.helpers import details, spec, stream_request, to_dict, wait_request

PROJECT = pathlib.Path(__file__).parents[1] / "projects" / "inputs"
GRAPHS = ("chat", "counter", "visits", "notes", "double", "total", "tally")


@pytest.fixture(scope="module")
def local():
    """The project's graphs in-process, each with a checkpointer of its own."""
    module_spec = importlib.util.spec_from_file_location("input_graphs", PROJECT / "graphs.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return {name: getattr(module, name).copy(update={"checkpointer": InMemorySaver()}) for name in GRAPHS}


class Served:
    def __init__(self, channel: grpc.aio.Channel, port: int):
        self.runs = run_service_pb2_grpc.RunServiceStub(channel)
        self.threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
        self.assistants = assistant_service_pb2_grpc.AssistantServiceStub(channel)
        self.target = f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def served(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn,
                                 config=str(PROJECT / "langgraph.json"))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield Served(channel, app.port)
        finally:
            await app.stop(grace=1)


def _as_sent(value: Any) -> dict[str, Any]:
    """The RunSpec field a client sends `value` in: an object in `input`, anything else in `input_value`."""
    return {"input": value} if isinstance(value, dict) else {"input_value": value}


def _config() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def _comparable(values: Any) -> Any:
    """A state's values as JSON without message ids (random per run)."""
    values = to_json(values)
    if not isinstance(values, dict):
        return {"__root__": values}
    return {k: [{f: x for f, x in m.items() if f != "id"} for m in v] if k == "messages" else v
            for k, v in values.items()}


async def _in_process(graph, value: Any, config: dict | None = None) -> dict:
    config = config or _config()
    await graph.ainvoke(value, config)
    return _comparable((await graph.aget_state(config)).values)


async def _run_count(served: Served) -> int:
    return len((await served.runs.List(run_pb.RunServiceListRequest(page_size=1000), timeout=30)).runs)


# -- what LangGraph runs, graphrun runs -----------------------------------------------------


ACCEPTED = [
    # A TypedDict state: `topic` is required by its schema but LangGraph never demands it; an
    # input that sets `messages` only is a partial update.
    ("chat", {"messages": [{"role": "user", "content": "hi"}]}),
    ("counter", {"count": 1}),
    ("counter", {"count": "2"}),  # pydantic coerces, in-process and here alike
    ("counter", {"count": 1, "owner": {"name": "Ada", "age": "36"}, "messages": [{"role": "user", "content": "x"}]}),
    ("visits", {"name": "Ada"}),
    ("notes", {}),  # nothing required: an empty update is legal
    ("notes", {"tags": ["B", "a"]}),
    ("notes", {"log": ["a", "b"]}),  # a key with a reducer: the update is a list, as the reducer adds it
    ("tally", {"counts": {"a": 1}}),
    ("double", 21),
    ("double", 0),  # falsy, still input
    ("total", [1, 2, 3]),
    ("total", []),
]


@pytest.mark.parametrize("graph, value", ACCEPTED, ids=[f"{g}-{v!r}" for g, v in ACCEPTED])
async def test_input_langgraph_runs_is_run_to_the_same_state(served, local, graph, value):
    reply = await served.runs.Wait(wait_request(assistant_id=graph, **_as_sent(value)), timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert _comparable(to_dict(reply.state.values)) == await _in_process(local[graph], value)


# -- what LangGraph (or the graph's schema) refuses, graphrun refuses up front --------------


REFUSED = [
    # The bug: `{}` ran a graph whose input schema requires `messages` (and failed at its node).
    ("chat", {}, "spec.input.messages", "is required unless the input sets another key of the state"),
    ("chat", {"unknown": 1}, "spec.input.messages", "is required unless"),  # LangGraph drops unknown keys
    ("chat", 5, "spec.input_value", "must be a JSON object"),
    ("chat", {"messages": [{"role": "user", "content": "hi"}], "turns": "1"}, "spec.input.turns",
     "must be an integer, not a string"),
    # The bug: a pydantic state turned these into a failed run (ValidationError).
    ("counter", {"count": "x"}, "spec.input.count", "valid integer"),
    ("counter", {"count": 1.5}, "spec.input.count", "fractional part"),
    ("counter", {}, "spec.input.count", "is required"),
    ("counter", {"note": "n"}, "spec.input.count", "is required"),
    ("counter", {"count": 1, "owner": {"name": 3, "age": 1}}, "spec.input.owner.name", "valid string"),
    ("counter", {"count": 1, "owner": {"name": "Ada"}}, "spec.input.owner.age", "is required"),
    ("visits", {"visits": 2}, "spec.input.name", "is required"),  # a dataclass is built at each node
    ("notes", {"tags": ["a", 1]}, "spec.input.tags[1]", "must be a string, not an integer"),
    # The bug: a key with a reducer went unchecked, and the run failed at its input step.
    ("notes", {"log": 5}, "spec.input.log", 'cannot update the state: can only concatenate list (not "int")'),
    ("notes", {"log": "abc"}, "spec.input.log", "cannot update the state"),
    ("tally", {"counts": "a"}, "spec.input.counts", "cannot update the state: 'a'"),  # counts nothing yet
    ("double", {"number": 2}, "spec.input", "must be an integer, not an object"),
    ("total", 3, "spec.input_value", "must be a list, not an integer"),
    ("total", [1, "two"], "spec.input_value[1]", "must be an integer, not a string"),
]


@pytest.mark.parametrize("graph, value, field, description", REFUSED,
                         ids=[f"{g}-{v!r}" for g, v, _, _ in REFUSED])
async def test_input_langgraph_refuses_is_invalid_argument_and_records_nothing(served, local, graph, value, field,
                                                                              description):
    with pytest.raises(Exception):  # in-process: the run fails (ValidationError, TypeError, IndexError, ...)
        await local[graph].ainvoke(value, _config())

    thread_id, before = str(uuid.uuid4()), await _run_count(served)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id=graph, thread_id=thread_id, if_not_exists="IF_NOT_EXISTS_CREATE",
                                            **_as_sent(value)), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(refused.value)["violations"]
    assert description in violations[field], violations
    assert await _run_count(served) == before  # no run recorded
    with pytest.raises(grpc.aio.AioRpcError) as missing:  # and no thread created
        await served.threads.Get(thread_pb.ThreadServiceGetRequest(thread_id=thread_id), timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_declared_type_is_held_to_where_python_would_run_anyway(served, local):
    """`double("3")` returns "33" in-process; the graph says it takes an int, and so does its schema."""
    assert await local["double"].ainvoke("3", _config()) == "33"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="double", input_value="3"), timeout=30)
    assert details(refused.value)["violations"] == {"spec.input_value": "must be an integer, not a string"}


@pytest.mark.parametrize("graph, value, violations", [
    ("notes", {"log": ["a", 1]}, {"spec.input.log[1]": "must be a string, not an integer"}),
    ("tally", {"counts": {"a": "x"}}, {"spec.input.counts.a": "must be an integer, not a string"}),
], ids=["list", "dict"])
async def test_what_a_reducer_makes_is_held_to_the_keys_type(served, local, graph, value, violations):
    """LangGraph adds `[1]` to a `list[str]` and runs; the key's declared type (and its schema) say
    otherwise."""
    await local[graph].ainvoke(value, _config())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id=graph, input=value), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value)["violations"] == violations


# -- on a thread that holds values, an input may be a partial update --------------------------


async def _thread_with(served: Served, local, graph: str, first: Any) -> tuple[str, dict]:
    reply = await served.runs.Wait(wait_request(assistant_id=graph, **_as_sent(first)), timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    config = _config()
    await local[graph].ainvoke(first, config)
    return reply.run.thread_id, config


@pytest.mark.parametrize("graph, first, then", [
    ("counter", {"count": 1}, {"note": "n"}),  # pydantic validates the state, which holds `count`
    ("visits", {"name": "Ada"}, {"visits": 5}),  # the dataclass is built from the state
    ("chat", {"messages": [{"role": "user", "content": "hi"}]}, {}),  # an empty update of a conversation
], ids=["pydantic", "dataclass", "typeddict"])
async def test_a_partial_update_of_a_thread_holding_the_required_keys_runs_as_in_process(served, local, graph,
                                                                                          first, then):
    thread_id, config = await _thread_with(served, local, graph, first)
    reply = await served.runs.Wait(wait_request(assistant_id=graph, thread_id=thread_id, input=then), timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert _comparable(to_dict(reply.state.values)) == await _in_process(local[graph], then, config)


async def test_a_reducer_that_needs_the_threads_value_is_applied_over_it(served, local):
    """`tally` counts a name once more only where it is counted already: on a new thread the
    update fails (in-process too), on a thread that counts it, it runs."""
    thread_id, config = await _thread_with(served, local, "tally", {"counts": {"a": 0}})
    reply = await served.runs.Wait(wait_request(assistant_id="tally", thread_id=thread_id, input={"counts": "a"}),
                                   timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert _comparable(to_dict(reply.state.values)) == await _in_process(local["tally"], {"counts": "a"}, config)
    assert to_dict(reply.state.values) == {"counts": {"a": 1}}

    with pytest.raises(Exception):  # a name it does not count: in-process fails at the input step
        await local["tally"].ainvoke({"counts": "b"}, config)
    before = (await served.runs.List(run_pb.RunServiceListRequest(thread_id=thread_id), timeout=30)).runs
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="tally", thread_id=thread_id, input={"counts": "b"}),
                               timeout=30)
    assert details(refused.value)["violations"] == {"spec.input.counts": "cannot update the state: 'b'"}
    after = (await served.runs.List(run_pb.RunServiceListRequest(thread_id=thread_id), timeout=30)).runs
    assert [r.run_id for r in after] == [r.run_id for r in before]


async def test_a_thread_lacking_a_required_key_still_refuses_an_input_without_it(served, local):
    thread_id, _ = await _thread_with(served, local, "counter", {"count": 1})
    before = (await served.runs.List(run_pb.RunServiceListRequest(thread_id=thread_id), timeout=30)).runs
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="counter", thread_id=thread_id,
                                            input={"owner": {"name": "Ada"}}), timeout=30)
    assert details(refused.value)["violations"] == {"spec.input.owner.age": "is required"}
    after = (await served.runs.List(run_pb.RunServiceListRequest(thread_id=thread_id), timeout=30)).runs
    assert [r.run_id for r in after] == [r.run_id for r in before]


# -- the fields -----------------------------------------------------------------------------


@pytest.mark.parametrize("fields, named", [
    ({"input": {"messages": []}, "input_value": 3}, "spec.input_value"),
    ({"input_value": 3, "command": {"goto": ["reply"]}}, "spec.command"),
    ({"input": {}, "command": {"goto": ["reply"]}}, "spec.command"),
], ids=["input+input_value", "input_value+command", "input+command"])
async def test_two_of_input_input_value_and_command_are_refused_naming_both(served, fields, named):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="chat", thread_id=str(uuid.uuid4()), **fields), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    description = details(refused.value)["violations"][named]
    assert "cannot be combined with spec." in description and all(f"spec.{f}" in description + named for f in fields)


async def test_a_dict_through_the_old_input_field_and_through_input_value_is_the_same_input(served, local):
    value = {"messages": [{"role": "user", "content": "hi"}], "topic": "t"}
    old = await served.runs.Wait(wait_request(assistant_id="chat", input=value), timeout=30)
    new = await served.runs.Wait(wait_request(assistant_id="chat", input_value=value), timeout=30)
    expected = await _in_process(local["chat"], value)
    assert _comparable(to_dict(old.state.values)) == _comparable(to_dict(new.state.values)) == expected


async def test_a_refused_object_in_input_value_is_named_there(served):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="counter", input_value={"count": "x"}), timeout=30)
    assert list(details(refused.value)["violations"]) == ["spec.input_value.count"]


async def test_a_null_input_value_is_no_input_as_in_langgraph(served, local):
    """`invoke(None)` continues a thread from its checkpoint, and on a new thread has nothing to run."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.runs.Wait(wait_request(assistant_id="notes", input_value=None), timeout=30)
    assert "no input" in details(refused.value)["violations"]["spec.input_value"]

    paused = await served.runs.Wait(wait_request(assistant_id="notes", input={"tags": ["B", "a"]},
                                                 interrupt_before=["tidy"]), timeout=30)
    assert paused.run.status == run_pb2.RUN_STATUS_INTERRUPTED
    continued = await served.runs.Wait(wait_request(assistant_id="notes", thread_id=paused.run.thread_id,
                                                    input_value=None), timeout=30)
    config = _config()
    await local["notes"].ainvoke({"tags": ["B", "a"]}, config, interrupt_before=["tidy"])
    assert continued.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert _comparable(to_dict(continued.state.values)) == await _in_process(local["notes"], None, config)


# -- non-object input through every way of starting a run ----------------------------------


async def test_a_number_streams_as_in_process(served, local):
    call = served.runs.Stream(stream_request(["values", "updates"], assistant_id="double", input_value=21),
                              timeout=30)
    events = [to_dict(response.event) async for response in call]
    streamed = [(k, e[k]) for e in events for k in ("values", "updates") if k in e]
    expected = [(mode, chunk) async for mode, chunk in local["double"].astream(21, _config(),
                                                                             stream_mode=["values", "updates"])]
    assert [mode for mode, _ in streamed] == [mode for mode, _ in expected] == ["updates", "values"]
    assert streamed[0][1]["node"] == "double" and streamed[0][1]["update"] == expected[0][1]["double"] == 42
    assert streamed[1][1]["values"] == {"__root__": expected[1][1]}
    assert events[-1]["end"]["run"]["status"] == "RUN_STATUS_SUCCESS"


@pytest.mark.parametrize("graph, value, delay", [
    ("total", [4, 5, 6], None), ("double", 0, 0.05), ("total", [], 0.05),
], ids=["list", "zero-from-the-database", "empty-list-from-the-database"])
async def test_a_non_object_input_of_a_background_run_is_joined_to_the_same_result(served, local, graph, value, delay):
    """With a start delay the run is claimed from its stored spec: the input survives the database
    as the value it is (0 and [] included, not mistaken for no input)."""
    request = run_pb.RunServiceCreateRequest(spec=spec(assistant_id=graph, **_as_sent(value)))
    if delay:
        request.start_delay.FromNanoseconds(int(delay * 1e9))
    created = (await served.runs.Create(request, timeout=30)).run
    events = [to_dict(r.event) async for r in served.runs.Join(run_pb.RunServiceJoinRequest(run_id=created.run_id),
                                                               timeout=30)]
    end = events[-1]["end"]
    assert end["run"]["status"] == "RUN_STATUS_SUCCESS"
    assert _comparable(end["state"]["values"]) == await _in_process(local[graph], value)


async def test_the_python_client_sends_a_mapping_in_input_and_anything_else_in_input_value(served, local):
    assert _convert.run_spec("double", 3).HasField("input_value")
    assert not _convert.run_spec("double", 3).HasField("input")
    assert _convert.run_spec("chat", {"messages": []}).HasField("input")
    assert not _convert.run_spec("chat", None).HasField("input_value")
    async with AsyncClient(served.target) as client:
        result = await client.wait("total", [1, 2])
        assert result.state["values"] == {"__root__": 3}
        events = [e async for e in client.stream("double", 4, stream_mode="values")]
        assert [e.data for e in events if e.kind == "values"] == [{"values": {"__root__": 8}}]
        with pytest.raises(InvalidArgumentError) as refused:
            await client.wait("total", "1, 2")
        assert refused.value.field_violations == [("spec.input_value", "must be a list, not a string")]


# -- the schema served is the schema checked -------------------------------------------------


@pytest.mark.parametrize("graph", GRAPHS)
async def test_the_input_schema_served_is_the_graphs(served, local, graph):
    served_schema = (await served.assistants.Get(assistant_pb.AssistantServiceGetRequest(assistant_id=graph),
                                                 timeout=30)).assistant.input_schema
    assert to_dict(served_schema) == to_json(local[graph].get_input_jsonschema())


# -- messages in any form LangChain reads ----------------------------------------------------


class _History(TypedDict):
    """Messages in a key without a reducer: its JSON schema describes LangChain's message classes
    more strictly than LangChain reads them."""

    history: list[AnyMessage]
    size: int


@entrypoint()
def _count(messages: list[BaseMessage]) -> int:
    """The functional API taking messages (the same strict schema)."""
    return len(messages)


@pytest.mark.parametrize("message", [{"role": "user", "content": "hi"}, {"type": "human", "content": "hi"}, "hi"],
                         ids=["role", "type", "string"])
async def test_messages_in_any_form_langchain_reads_pass_the_check(message):
    history = StateGraph(_History).add_node("n", lambda state: {}).add_edge(START, "n").compile()
    count = _count
    await check_input(Assistant("history", history), {"history": [message], "size": 1}, "input", None, None)
    await check_input(Assistant("count", count), [message], "input_value", None, None)
    with pytest.raises(InvalidArgument) as refused:  # the key beside them is still checked
        await check_input(Assistant("history", history), {"history": [message], "size": "1"}, "input", None, None)
    assert [(v.field, v.description) for v in refused.value.violations] == [
        ("spec.input.size", "must be an integer, not a string")]
