"""The example ReAct agent wired to a tool that always fails: a tool failure
must end the run as ERROR with a non-OK status."""

from langchain_core.tools import tool

from graphrun_server.example_agent.agent import make_graph as make_agent


@tool
def search_archives(query: str) -> str:
    """Search the maintenance archive (broken on purpose)."""
    raise ConnectionError("archive backend unreachable")


def make_graph():
    return make_agent(tools=[search_archives])
