"""A chat graph whose input is a question, not messages (`input_schema`): LangGraph drops any
other key of the input, `messages` included."""

from langgraph.graph import START, MessagesState, StateGraph
from typing_extensions import TypedDict


class Question(TypedDict):
    question: str


def ask(state: Question) -> dict:
    return {"messages": [{"role": "user", "content": state["question"]}]}


builder = StateGraph(MessagesState, input_schema=Question)
builder.add_node("ask", ask)
builder.add_edge(START, "ask")
graph = builder.compile()
