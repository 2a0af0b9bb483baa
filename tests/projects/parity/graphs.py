"""Graphs for the parity harness (tests/test_parity.py): each shape of LangGraph graph whose
stream and state graphrun must reproduce as LangGraph produces them in-process."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.config import get_stream_writer
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Send, interrupt
from typing_extensions import TypedDict


class ScriptedChat(BaseChatModel):
    """A chat model that streams a fixed reply word by word: the same tokens in-process and served."""

    reply: str = "all good here"
    model_name: str = "scripted-1"

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        for word in self._words():
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs) -> AsyncIterator[ChatGenerationChunk]:
        for word in self._words():
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager:
                await run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk

    def _words(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


class State(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    notes: Annotated[list[str], operator.add]
    item: int


model = ScriptedChat()


async def think(state: State) -> dict:
    get_stream_writer()({"progress": "thinking"})
    reply = await model.ainvoke(state.get("messages", []))
    return {"messages": [reply]}


def note(state: State) -> dict:
    return {"notes": [f"{len(state.get('messages', []))} messages"]}


def _chain(*nodes) -> StateGraph:
    builder = StateGraph(State)
    previous = START
    for node in nodes:
        name = node[0] if isinstance(node, tuple) else node.__name__
        builder.add_node(*node) if isinstance(node, tuple) else builder.add_node(node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


root = _chain(think, note).compile()

# Two levels of subgraphs: nested -> child -> grandchild, each a node of its parent.
grandchild = _chain(think, note).compile()


def prepare(state: State) -> dict:
    get_stream_writer()({"prepared": True})
    return {"notes": ["prepared"]}


def finish(state: State) -> dict:
    return {"notes": ["finished"]}


child = _chain(prepare, ("grandchild", grandchild)).compile()
nested = _chain(prepare, ("child", child), finish).compile()


# Send fan-out: one task per item, run in one step.
def plan(state: State) -> dict:
    return {"notes": ["planned"]}


def work(state: State) -> dict:
    get_stream_writer()({"item": state["item"]})
    return {"notes": [f"item {state['item']}"]}


def merge(state: State) -> dict:
    return {"notes": [f"merged {len(state['notes'])}"]}


_fan = StateGraph(State)
_fan.add_node(plan)
_fan.add_node(work)
_fan.add_node(merge)
_fan.add_edge(START, "plan")
_fan.add_conditional_edges("plan", lambda state: [Send("work", {"item": i}) for i in range(3)], ["work"])
_fan.add_edge("work", "merge")
_fan.add_edge("merge", END)
fanout = _fan.compile()


# The functional API: an entrypoint calling tasks.
@task
def double(number: int) -> int:
    get_stream_writer()({"doubling": number})
    return number * 2


@entrypoint()
async def functional(inputs: dict) -> dict:
    """Doubles each number with a task, then adds them up."""
    doubled = [await double(n) for n in inputs["numbers"]]
    return {"doubled": doubled, "total": sum(doubled)}


# Two branches that each ask a question in the same step.
def ask_a(state: State) -> dict:
    return {"notes": [f"a: {interrupt('question a')}"]}


def ask_b(state: State) -> dict:
    return {"notes": [f"b: {interrupt('question b')}"]}


def join(state: State) -> dict:
    return {"notes": ["joined"]}


_par = StateGraph(State)
_par.add_node(ask_a)
_par.add_node(ask_b)
_par.add_node(join)
_par.add_edge(START, "ask_a")
_par.add_edge(START, "ask_b")
_par.add_edge(["ask_a", "ask_b"], "join")
_par.add_edge("join", END)
parallel_interrupts = _par.compile()
