"""Utility & helper functions.

The template's `load_chat_model` calls `init_chat_model`; this copy returns a fake chat
model (no network): it searches for the user's question, then answers with what the
search returned, naming the model it was asked to be.
"""

import json
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult


def get_message_text(msg: BaseMessage) -> str:
    """Get the text content of a message."""
    content = msg.content
    if isinstance(content, str):
        return content
    elif isinstance(content, dict):
        return content.get("text", "")
    else:
        txts = [c if isinstance(c, str) else (c.get("text") or "") for c in content]
        return "".join(txts).strip()


class FakeChatModel(BaseChatModel):
    """Calls the search tool once, then answers from its result."""

    model_name: str

    @property
    def _llm_type(self) -> str:
        return "fake-react"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "FakeChatModel":
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            found = json.loads(last.content)
            message = AIMessage(content=f"{self.model_name} found {found['max_results']} results "
                                        f"for {found['query']!r} in {found['source']}")
        else:
            message = AIMessage(content="", tool_calls=[{
                "name": "search", "args": {"query": get_message_text(last)}, "id": f"call_{len(messages)}"}])
        return ChatResult(generations=[ChatGeneration(message=message)])


def load_chat_model(fully_specified_name: str) -> BaseChatModel:
    """Load a chat model from a fully specified name.

    Args:
        fully_specified_name (str): String in the format 'provider/model'.
    """
    provider, model = fully_specified_name.split("/", maxsplit=1)
    return FakeChatModel(model_name=f"{provider}/{model}")
