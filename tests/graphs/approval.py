"""Human-in-the-loop for tests: `draft` writes a proposal, `review` asks a human
with interrupt(), `publish` records the decision."""

from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt


class State(MessagesState, total=False):
    proposal: str
    decision: str


def draft(state: State) -> dict:
    return {"proposal": f"proposal for: {state['messages'][-1].content}"}


def review(state: State) -> dict:
    answer = interrupt({"question": "approve?", "proposal": state["proposal"]})
    return {"decision": str(answer)}


def publish(state: State) -> dict:
    return {"messages": [{"role": "ai", "content": f"decision: {state['decision']}"}]}


builder = StateGraph(State)
builder.add_node("draft", draft)
builder.add_node("review", review)
builder.add_node("publish", publish)
builder.add_edge(START, "draft")
builder.add_edge("draft", "review")
builder.add_edge("review", "publish")
builder.add_edge("publish", END)
graph = builder.compile()
