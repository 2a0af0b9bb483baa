"""`burst`: a fake chat model streams `n` tokens as fast as it can, then the node stores a
`blob` of `size` characters (a state whose `values` event is larger than a batch of events may
be), for tests of `batch_events`."""

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph


class BurstState(MessagesState, total=False):
    n: int
    size: int
    blob: str


async def speak(state: BurstState) -> dict:
    words = AIMessage(" ".join(f"w{i}" for i in range(state.get("n", 100))))
    answer = await GenericFakeChatModel(messages=iter([words])).ainvoke(state["messages"])
    return {"messages": [answer], "blob": "x" * state.get("size", 0)}


builder = StateGraph(BurstState)
builder.add_node("speak", speak)
builder.add_edge(START, "speak")
graph = builder.compile()
