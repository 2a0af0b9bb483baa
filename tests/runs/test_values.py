"""What graphs hold reaches clients faithfully: task events of runs that ask questions,
messages with every field LangChain keeps, non-JSON values written one documented way."""

import base64
import decimal
import json
import math
import pathlib
import sys
import uuid

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage, convert_to_messages
from langgraph.checkpoint.memory import InMemorySaver

from graphrun.v1 import event_pb2, run_pb2, thread_pb2, thread_service_pb2 as tpb
from graphrun_server.incoming import message_from_json
from graphrun_server.task_errors import task_error_text
from graphrun_server import wire
from graphrun_server.wire import message_to_json, to_json
from support.helpers import messages, question, stream_request, to_dict, wait_request

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "graphs"))
from values import every_kind  # noqa: E402


async def _collect(call):
    return [response.event async for response in call]


def _struct(value: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(value, struct_pb2.Struct())


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
    # A value's keys compared, not their order: a Struct's fields are a map, read back in any order.
    def interrupt(i: dict) -> tuple[str, str]:
        return i["id"], json.dumps(i["value"], sort_keys=True)

    from_events = sorted(interrupt(i) for task in finished for i in task.get("interrupts", []))
    from_state = sorted(interrupt(i) for i in state["interrupts"])
    assert len(from_state) == asked and all(i for i, _ in from_state)
    assert from_events == from_state
    by_task = {t["id"]: t["interrupts"] for t in state["tasks"] if t.get("interrupts")}
    assert {t["id"]: t["interrupts"] for t in finished if t.get("interrupts")} == by_task


# -- messages -----------------------------------------------------------------------------

_DEFAULTS = {"status": "success"}


def _set_fields(message: BaseMessage) -> dict:
    """The fields LangChain serialises on message that hold something, as JSON."""
    out = {}
    for name in type(message).model_fields:
        value = getattr(message, name)
        if name != "type" and value not in (None, {}, [], "") and _DEFAULTS.get(name) != value:
            out[name] = json.loads(json.dumps(value))
    return out


def _in_process(graph_id: str, server):
    """The graph the server serves, compiled by LangGraph in-process with its own saver."""
    return server.runner.registry.get(graph_id).graph.builder.compile(checkpointer=InMemorySaver())


async def _langgraph_run(graph_id: str, server, input) -> list[BaseMessage]:
    graph, config = _in_process(graph_id, server), {"configurable": {"thread_id": "in-process"}}
    await graph.ainvoke(input, config)
    return (await graph.aget_state(config)).values["messages"]


async def _held_by_server(graph_id: str, server, thread_id: str) -> list[BaseMessage]:
    """The messages as the server's checkpoint holds them (LangChain objects, not the wire)."""
    graph = server.runner.registry.get(graph_id).graph
    return (await graph.aget_state({"configurable": {"thread_id": thread_id}})).values["messages"]


def _dumps(messages: list[BaseMessage]) -> list[tuple[str, dict]]:
    return [(type(m).__name__, m.model_dump()) for m in messages]


async def test_messages_of_every_kind_reach_the_wire_with_every_field(runs, threads, server):
    expected = await _langgraph_run("every_message", server, {"messages": []})
    assert {type(m).__name__ for m in expected} == {"SystemMessage", "HumanMessage", "AIMessage", "ToolMessage",
                                                    "FunctionMessage", "ChatMessage"}
    waited = await runs.Wait(wait_request(assistant_id="every_message", input={"messages": []}))
    assert waited.run.status == run_pb2.RUN_STATUS_SUCCESS, waited.run.error
    read = await _state(threads, waited.run.thread_id)
    for wire in (messages(waited.state), read["values"]["messages"]):
        assert wire == [message_to_json(m) for m in expected]
        for message, sent in zip(expected, wire):
            fields = _set_fields(message)
            assert {k: sent.get(k) for k in fields} == fields, type(message).__name__
            assert sent["type"] == message.type and sent["role"]  # today's keys stay
    ai = next(m for m in read["values"]["messages"] if m["id"] == "ai-1")
    assert ai["response_metadata"]["finish_reason"] == "tool_calls" and ai["usage_metadata"]["total_tokens"] == 15


async def test_messages_written_back_with_update_state_are_unchanged(runs, threads, server):
    waited = await runs.Wait(wait_request(assistant_id="every_message", input={"messages": []}))
    thread_id = waited.run.thread_id
    before = await _state(threads, thread_id)
    held = await _held_by_server("every_message", server, thread_id)

    await threads.UpdateState(tpb.ThreadServiceUpdateStateRequest(
        thread_id=thread_id, values=_struct({"messages": before["values"]["messages"]})))
    after = await _state(threads, thread_id)
    assert after["checkpoint"] != before["checkpoint"]
    assert after["values"]["messages"] == before["values"]["messages"]
    assert _dumps(await _held_by_server("every_message", server, thread_id)) == _dumps(held)


async def test_messages_sent_as_input_or_command_update_are_the_messages_langgraph_holds(runs, threads, server):
    originals = every_kind()
    expected = await _langgraph_run("keeps_messages", server, {"messages": originals})
    wire = [message_to_json(m) for m in originals]

    waited = await runs.Wait(wait_request(assistant_id="keeps_messages", input={"messages": wire}))
    assert messages(waited.state) == [message_to_json(m) for m in expected]
    assert _dumps(await _held_by_server("keeps_messages", server, waited.run.thread_id)) == _dumps(expected)

    started = await runs.Wait(wait_request(assistant_id="keeps_messages", input={"messages": []}))
    updated = await runs.Wait(wait_request(assistant_id="keeps_messages", thread_id=started.run.thread_id,
                                           command={"update": {"messages": wire}}))
    assert messages(updated.state) == [message_to_json(m) for m in expected]
    assert _dumps(await _held_by_server("keeps_messages", server, started.run.thread_id)) == _dumps(expected)


async def test_a_conversation_read_turn_after_turn_holds_what_langgraph_holds(runs, server):
    """The server keeps decoded messages for the next read of a thread (storage/serde.py): each
    later turn reads them from there, and must get what LangGraph itself reads back."""
    thread_id = str(uuid.uuid4())
    graph, config = _in_process("keeps_messages", server), {"configurable": {"thread_id": "in-process"}}
    for turn in range(3):
        sent = [{**message_to_json(m), "id": f"{m.id}-{turn}"} for m in every_kind()]
        await graph.ainvoke({"messages": convert_to_messages([message_from_json(m) for m in sent])}, config)
        waited = await runs.Wait(wait_request(assistant_id="keeps_messages", thread_id=thread_id,
                                              if_not_exists="IF_NOT_EXISTS_CREATE",
                                              input={"messages": sent}))
        assert waited.run.status == run_pb2.RUN_STATUS_SUCCESS, waited.run.error
    expected = (await graph.aget_state(config)).values["messages"]
    assert len(expected) == 3 * len(every_kind())
    for _ in range(2):  # read twice: the second read is all kept messages
        held = await _held_by_server("keeps_messages", server, thread_id)
        assert _dumps(held) == _dumps(expected)
        assert [m.model_fields_set for m in held] == [m.model_fields_set for m in expected]
    assert messages(waited.state) == [wire._message_to_json(m) for m in expected]  # not as kept (wire.py)


async def test_a_message_replaced_under_its_id_is_answered_as_it_is_now(runs, threads):
    """Answers convert each message once and answer it so while it stays the same (wire.py): a
    message LangGraph replaced (same id, other fields) is answered as it is now."""
    thread_id = str(uuid.uuid4())
    first = {"role": "user", "content": "first", "id": "replaced", "additional_kwargs": {"n": "one"}}
    versions = [first, {**first, "content": "second"}, {**first, "content": "second", "additional_kwargs": {"n": "two"}}]
    for version in versions:
        waited = await runs.Wait(wait_request(assistant_id="keeps_messages", thread_id=thread_id,
                                              if_not_exists="IF_NOT_EXISTS_CREATE", input={"messages": [version]}))
        assert waited.run.status == run_pb2.RUN_STATUS_SUCCESS, waited.run.error
        for answered in (messages(waited.state), (await _state(threads, thread_id))["values"]["messages"]):
            assert [(m["id"], m["content"], m["additional_kwargs"]) for m in answered] == [
                ("replaced", version["content"], version["additional_kwargs"])]


async def test_a_message_changed_in_place_between_steps_is_streamed_as_it_was_each_time(runs, server):
    graph, config = _in_process("edits_in_place", server), {"configurable": {"thread_id": "in-process"}}
    input = {"messages": [{"role": "user", "content": "write"}]}
    expected = [[wire._message_to_json(m) for m in values["messages"]]  # converted as each comes
                async for values in graph.astream(input, config, stream_mode="values")]
    assert [m[-1]["content"] for m in expected] == ["write", "draft", "final"]
    events = await _collect(runs.Stream(stream_request(["values"], assistant_id="edits_in_place", input=input)))
    streamed = [to_dict(e.values.values)["messages"] for e in events if e.HasField("values")]

    def without_input_ids(states: list[list[dict]]) -> list[list[dict]]:  # LangGraph gives input new ids
        return [[{**m, "id": None} if m["type"] == "human" else m for m in state] for state in states]

    assert without_input_ids(streamed) == without_input_ids(expected)


async def test_messages_changed_in_place_and_not_written_back_are_read_as_stored(runs, server):
    """A node that changes messages in place without returning them changes nothing LangGraph
    stores: the next turn reads them as they were, also where the server kept them decoded."""
    thread_id = str(uuid.uuid4())
    graph, config = _in_process("meddles", server), {"configurable": {"thread_id": "in-process"}}
    for turn in range(4):
        said = {"role": "ai", "content": f"turn {turn}", "id": f"ai-{turn}", "additional_kwargs": {"turn": "x"},
                "tool_calls": [{"name": "search", "args": {"q": "roof"}, "id": f"call-{turn}"}]}
        await graph.ainvoke({"messages": [message_from_json(said)]}, config)
        waited = await runs.Wait(wait_request(assistant_id="meddles", thread_id=thread_id, input={"messages": [said]},
                                              if_not_exists="IF_NOT_EXISTS_CREATE"))
        assert waited.run.status == run_pb2.RUN_STATUS_SUCCESS, waited.run.error
    expected = (await graph.aget_state(config)).values["seen"]
    assert expected[-1][0][1] == "turn 0" and "meddled" not in expected[-1][0][2]  # as stored, each turn
    assert to_dict(waited.state.values)["seen"] == json.loads(json.dumps(expected))


async def test_streamed_chunks_carry_every_field(runs, server):
    input = {"messages": [{"role": "user", "content": "find the roof records"}]}
    graph, config = _in_process("streams_chunks", server), {"configurable": {"thread_id": "in-process"}}
    chunks = [chunk async for chunk, _meta in graph.astream(input, config, stream_mode="messages")]
    final = (await graph.aget_state(config)).values["messages"][-1]

    events = await _collect(runs.Stream(stream_request(["messages"], assistant_id="streams_chunks", input=input)))
    sent = [e.message for e in events if e.HasField("message")]
    deltas = [to_dict(m.message) for m in sent if m.delta]
    assert deltas == [message_to_json(c) for c in chunks]
    for chunk, delta in zip(chunks, deltas):
        fields = _set_fields(chunk)
        assert {k: delta.get(k) for k in fields} == fields
    assert deltas[-1]["chunk_position"] == "last" and deltas[0]["tool_call_chunks"][0]["name"] == "search"
    (complete,) = [to_dict(m.message) for m in sent if not m.delta]
    assert complete == message_to_json(final) and complete["usage_metadata"]["total_tokens"] == 15


def test_message_dicts_naming_their_type_are_rebuilt_and_other_forms_read_as_langchain_reads_them():
    wire = message_to_json(AIMessage("hi", id="a", usage_metadata={"input_tokens": 1, "output_tokens": 2,
                                                                      "total_tokens": 3}))
    assert message_from_json(wire) == AIMessage("hi", id="a", usage_metadata=wire["usage_metadata"])
    for given in ({"role": "user", "content": "hi", "id": "u"}, ("human", "hi"), "hi",
                  {"role": "assistant", "content": "x", "tool_calls": [
                      {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]}):
        assert message_from_json(given) == convert_to_messages([given])[0]
    openai_call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert message_from_json({"type": "ai", "content": "", "tool_calls": [openai_call]}).tool_calls == [
        {"name": "f", "args": {"a": 1}, "id": "c", "type": "tool_call"}]
    assert message_from_json({"type": "remove", "id": "gone"}) == RemoveMessage(id="gone")
    # Keys no field takes go where LangChain puts them; the wire's role never does.
    assert message_from_json({"type": "human", "role": "user", "content": "x", "locale": "de"}) == HumanMessage(
        "x", additional_kwargs={"locale": "de"})


# -- values that are not JSON -------------------------------------------------------------

# What the README's table "Values that are not JSON" says each type becomes.
ODD_VALUES = {
    "moment": "2026-03-01T12:30:05.250000+01:00",
    "naive_moment": "2026-03-01T12:30:00",
    "day": "2026-03-01",
    "clock": "07:45:30",
    "span": "P1DT2H3.5S",
    "ident": "12345678-1234-5678-1234-567812345678",
    "price": "19.99",
    "blob": base64.b64encode(b"\x00\xffgraphrun").decode(),
    "tags": ["heating", "lift", "roof"],
    "frozen": [1, 2, 3],
    "pair": [1, "two"],
    "named": {"left": 1, "right": "two"},
    "colour": "red",
    "level": 3,
    "invoice": {"number": 7, "total": "10.50", "issued": "2026-01-31"},
    "point": {"x": 1.5, "label": "origin"},
    "not_finite": ["NaN", "Infinity", "-Infinity"],
    "keyed": {"1": "one", "00000000-0000-0000-0000-000000000001": "uuid", "2026-01-01": "day"},
}


async def test_non_json_values_are_written_as_the_readme_says(runs, threads):
    waited = await runs.Wait(wait_request(assistant_id="odd_values", input={}))
    assert waited.run.status == run_pb2.RUN_STATUS_SUCCESS, waited.run.error
    assert to_dict(waited.state.values) == ODD_VALUES
    assert (await _state(threads, waited.run.thread_id))["values"] == ODD_VALUES
    events = await _collect(runs.Stream(stream_request(["values", "updates"], assistant_id="odd_values", input={})))
    assert [to_dict(e.values.values) for e in events if e.HasField("values")][-1] == ODD_VALUES
    assert [to_dict(e.updates)["update"] for e in events if e.HasField("updates")] == [ODD_VALUES]


class _Opaque:
    pass


def test_values_without_a_json_form_are_never_a_repr():
    assert to_json({"error": KeyError("k"), "boom": ValueError("boom")}) == {
        "error": {"type": "KeyError", "message": "'k'"}, "boom": {"type": "ValueError", "message": "boom"}}
    assert to_json([pathlib.PurePosixPath("/srv/data"), -math.inf, decimal.Decimal("1E+2")]) == [
        "/srv/data", "-Infinity", "1E+2"]
    assert to_json(_Opaque()) == f"{__name__}._Opaque"
    assert to_json({(1, 2): "pair", None: "none", True: "yes"}) == {"[1,2]": "pair", "null": "none", "true": "yes"}


# -- task errors --------------------------------------------------------------------------


async def test_a_task_error_reads_the_same_in_task_events_and_the_state(runs, threads):
    call = runs.Stream(stream_request(["tasks"], assistant_id="steps", input={"fail_at": "second"}))
    events = []
    with pytest.raises(grpc.aio.AioRpcError):  # the run failed: the stream ends with a non-OK status
        async for response in call:
            events.append(response.event)
    failed = [e.task for e in events if e.HasField("task") and e.task.error]
    assert [(t.name, t.error) for t in failed] == [("second", "second failed on purpose")]
    state = await _state(threads, events[0].metadata.thread_id)
    assert [(t["name"], t.get("error")) for t in state["tasks"]] == [("second", "second failed on purpose")]


class _Shouting(Exception):
    def __str__(self) -> str:
        return "LOUD"


@pytest.mark.parametrize("error, text", [
    (ValueError("boom"), "boom"),
    (ValueError(), "ValueError"),  # no message: the type says what happened
    (KeyError("k"), "'k'"),  # what str() says of a KeyError
    (OSError(2, "No such file"), "[Errno 2] No such file"),
    (Exception("a", 1), "('a', 1)"),
    (_Shouting("quiet"), "quiet"),  # its repr holds no more than its arguments: both views say the same
])
def test_task_error_text_is_the_same_from_the_exception_and_from_its_stored_repr(error, text):
    assert task_error_text(error) == text
    assert task_error_text(repr(error)) == text
