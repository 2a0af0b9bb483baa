"""Tests for the bundled example agent (offline DemoChatModel, in-process graph)."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from graphrun_server.example_agent import graph, make_graph
from graphrun_server.example_agent.archive import search
from graphrun_server.example_agent.demo_model import DemoChatModel
from graphrun_server.example_agent.tools import search_archives

HEATING_QUESTION = "Wann wurde die Heizungsanlage gewartet?"


@pytest.fixture(autouse=True)
def _offline_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Always use the demo model, quickly, regardless of the caller's environment."""
    monkeypatch.delenv("GRAPHRUN_CHAT_MODEL", raising=False)
    monkeypatch.delenv("GRAPHRUN_DEMO_TOKEN_DELAY_MS", raising=False)


def _with_saver():
    return graph.copy(update={"checkpointer": InMemorySaver()})


def _config() -> dict:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def test_graph_is_compiled_without_checkpointer() -> None:
    assert graph.checkpointer is None
    assert {"agent", "tools"} <= set(graph.nodes)


@pytest.mark.asyncio
async def test_ainvoke_runs_react_loop() -> None:
    result = await _with_saver().ainvoke(
        {"messages": [{"role": "user", "content": HEATING_QUESTION}]}, _config()
    )
    human, call, tool_msg, answer = result["messages"]  # exactly four messages

    assert isinstance(human, HumanMessage)
    assert isinstance(call, AIMessage)
    assert [tc["name"] for tc in call.tool_calls] == ["search_archives"]
    assert call.tool_calls[0]["args"] == {"query": HEATING_QUESTION}
    assert isinstance(tool_msg, ToolMessage)
    assert tool_msg.name == "search_archives"
    assert tool_msg.tool_call_id == call.tool_calls[0]["id"]
    assert "Heizung" in tool_msg.content
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert "15. Januar 2025" in answer.content


@pytest.mark.asyncio
async def test_messages_stream_emits_tool_call_chunks_and_tokens() -> None:
    chunks_by_node: dict[str, list[AIMessageChunk]] = {"call": [], "answer": []}
    tool_seen = False
    async for message, metadata in _with_saver().astream(
        {"messages": [{"role": "user", "content": HEATING_QUESTION}]},
        _config(),
        stream_mode="messages",
    ):
        if isinstance(message, ToolMessage):
            tool_seen = True
        elif isinstance(message, AIMessageChunk):
            assert metadata["langgraph_node"] == "agent"
            chunks_by_node["answer" if tool_seen else "call"].append(message)

    call, answer = chunks_by_node["call"], chunks_by_node["answer"]
    assert tool_seen

    # Tool call arrives as several tool_call_chunks: name first, then args pieces.
    assert len(call) >= 3 and len({c.id for c in call}) == 1
    assert call[0].tool_call_chunks[0]["name"] == "search_archives"
    assert all(c.tool_call_chunks for c in call)
    merged_call = sum(call[1:], call[0])
    assert merged_call.tool_calls[0]["args"] == {"query": HEATING_QUESTION}

    # Final answer arrives token by token, all chunks sharing one message id.
    assert len(answer) > 1
    assert len({c.id for c in answer}) == 1
    assert answer[0].id != call[0].id
    assert answer[0].content == "Laut"
    assert "15. Januar 2025" in "".join(c.content for c in answer)


@pytest.mark.asyncio
async def test_plain_model_astream_shares_one_id() -> None:
    model = DemoChatModel().bind_tools([search_archives])
    chunks = [c async for c in model.astream([HumanMessage(HEATING_QUESTION)])]
    assert len(chunks) >= 3
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].chunk_position == "last"


def test_archive_ranks_heating_record_first() -> None:
    results = search("Heizungsanlage gewartet")
    assert results and results[0].title == "Heizungsanlage gewartet"
    assert results[0].date_de == "15. Januar 2025"
    # Compound words match in both directions.
    assert search("Heizung")[0].id == results[0].id
    # Plural/inflected forms still match ("Wasserleitungen" ~ "Wasserleitung").
    assert {"WA-2024-007", "WA-2025-002"} <= {r.id for r in search("Wasserleitungen")}


def test_search_is_deterministic() -> None:
    query = "Prüfung Brandschutz"
    assert [r.id for r in search(query)] == [r.id for r in search(query)]


def test_tool_output_format() -> None:
    out = search_archives.invoke({"query": "Heizungsanlage"})
    assert out.splitlines()[0].startswith("[1] Archiv: Heizungsanlage gewartet (15. Januar 2025) – ")
    assert search_archives.invoke({"query": "Wetter morgen in Berlin"}) == "Keine Einträge gefunden."


@pytest.mark.asyncio
async def test_question_without_match_gets_polite_answer() -> None:
    result = await make_graph().ainvoke(
        {"messages": [{"role": "user", "content": "Wie wird das Wetter morgen in Berlin?"}]}
    )
    tool_msg, answer = result["messages"][-2:]
    assert tool_msg.content == "Keine Einträge gefunden."
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert "leider" in answer.content


def test_model_without_tools_answers_politely() -> None:
    reply = DemoChatModel().invoke([HumanMessage(HEATING_QUESTION)])
    assert not reply.tool_calls
    assert "leider" in reply.content
    assert DemoChatModel()._llm_type == "graphrun-demo"


async def test_the_token_delay_applies_to_runs_that_do_not_stream_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """GRAPHRUN_DEMO_TOKEN_DELAY_MS makes an answer take as long whether it streams or not."""
    import asyncio

    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", record)
    model = DemoChatModel(token_delay_ms=10).bind_tools([search_archives])
    question = [HumanMessage(HEATING_QUESTION)]
    streamed = [c async for c in model.astream(question)]
    waited_streaming, slept[:] = sum(slept), []
    await model.ainvoke(question)
    assert len(streamed) > 1 and sum(slept) == pytest.approx(waited_streaming) == pytest.approx(0.01 * (len(streamed) - 1))
