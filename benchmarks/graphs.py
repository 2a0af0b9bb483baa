"""Graphs for the benchmarks.

- `pair`: the trivial 2-node graph (a -> b), the peers' benchmark.
- `chat`: one node appending a user/ai message pair per turn, so a thread's state grows.
- `tokens`: one node whose fake chat model streams `n` tokens (stream mode `messages`).
- `hang`: one node that waits until its run is cancelled (for open-stream memory).
- `paced`: like `tokens`, but a token every `pause` seconds, as a model sends them (for the
  latency of each token rather than the rate of a burst).
"""

import asyncio
import operator
from typing import Annotated

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from typing_extensions import TypedDict


class PairState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _pair():
    builder = StateGraph(PairState)
    builder.add_node("a", lambda state: {"log": ["a"]})
    builder.add_node("b", lambda state: {"log": ["b"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder


def _chat():
    def reply(state: MessagesState) -> dict:
        return {"messages": [AIMessage(f"reply {len(state['messages'])}: " + "lorem ipsum " * 20)]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder


class TokenState(MessagesState, total=False):
    n: int


class PacedChatModel(GenericFakeChatModel):
    """The fake model's tokens, one every `pause` seconds (on the event loop, no thread hop)."""

    pause: float = 0.005

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        for chunk in self._stream(messages, stop=stop, **kwargs):
            await asyncio.sleep(self.pause)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class PacedState(TokenState, total=False):
    pause: float


def _speaker(paced: bool):
    """One node whose fake model streams `n` words: at once, or one every `pause` seconds."""

    async def speak(state: PacedState) -> dict:
        words = AIMessage(" ".join(f"w{i}" for i in range(int(state.get("n", 100)))))
        if paced:
            model = PacedChatModel(messages=iter([words]), pause=float(state.get("pause", 0.005)))
        else:
            model = GenericFakeChatModel(messages=iter([words]))
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(PacedState if paced else TokenState)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_edge("speak", END)
    return builder


def _hang():
    async def wait(state: PairState) -> dict:
        await asyncio.Event().wait()
        return {}

    builder = StateGraph(PairState)
    builder.add_node("wait", wait)
    builder.add_edge(START, "wait")
    builder.add_edge("wait", END)
    return builder


pair, chat, tokens, paced, hang = _pair(), _chat(), _speaker(False), _speaker(True), _hang()
