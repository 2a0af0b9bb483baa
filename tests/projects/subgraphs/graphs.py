"""Nested subgraphs for state reads and writes by namespace: `parent` runs `child` as a node,
`child` runs `grandchild` as a node, and the grandchild asks a question with `interrupt()`.

Each level has a key of its own (`topic`, `draft`, `note`) besides the shared `log` and
`answer`, so a state read by namespace shows the channels of that level's graph.
"""

import operator
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class GrandchildState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    draft: str
    note: str
    answer: str


def prepare(state: GrandchildState) -> GrandchildState:
    return {"log": ["grandchild:prepare"], "note": f"note on {state.get('draft', '?')}"}


def ask(state: GrandchildState) -> GrandchildState:
    answer = interrupt({"question": "which colour?", "note": state["note"]})
    return {"log": [f"grandchild:ask {answer} ({state['note']})"], "answer": answer}


grandchild = (StateGraph(GrandchildState).add_node(prepare).add_node(ask)
              .add_edge(START, "prepare").add_edge("prepare", "ask").add_edge("ask", END).compile())


class ChildState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    draft: str
    answer: str


def intro(state: ChildState) -> ChildState:
    return {"log": ["child:intro"], "draft": "a draft"}


def outro(state: ChildState) -> ChildState:
    return {"log": [f"child:outro {state.get('answer')}"]}


child = (StateGraph(ChildState).add_node(intro).add_node("grandchild", grandchild).add_node(outro)
         .add_edge(START, "intro").add_edge("intro", "grandchild").add_edge("grandchild", "outro")
         .add_edge("outro", END).compile())


class ParentState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    topic: str
    answer: str


def start(state: ParentState) -> ParentState:
    return {"log": [f"parent:start {state.get('topic')}"]}


def finish(state: ParentState) -> ParentState:
    return {"log": [f"parent:finish {state.get('answer')}"]}


parent = (StateGraph(ParentState).add_node(start).add_node("child", child).add_node(finish)
          .add_edge(START, "start").add_edge("start", "child").add_edge("child", "finish")
          .add_edge("finish", END).compile())
