"""How long `message_to_json` takes for a 200-message conversation (it runs for every message
of every answer), for plain messages and for messages carrying what real providers attach
(`response_metadata`, `usage_metadata`, `additional_kwargs`, tool calls).

    python -m benchmarks.message_json
"""

from __future__ import annotations

import timeit

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from graphrun_server.wire import message_to_json


def conversation(n: int = 200, provider_fields: bool = False) -> list:
    """n messages: user, ai with a tool call, tool, ai answer, repeated."""
    meta = ({"response_metadata": {"finish_reason": "stop", "model_name": "gpt-4o-mini", "system_fingerprint": "fp_1"},
             "usage_metadata": {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
                                "input_token_details": {"cache_read": 0}},
             "additional_kwargs": {"refusal": None}} if provider_fields else {})
    out: list = []
    for i in range(n // 4 + 1):
        call = {"id": f"call_{i}", "name": "search_archives", "args": {"query": f"question {i}"}, "type": "tool_call"}
        out += [HumanMessage(f"question {i}", id=f"h{i}"),
                AIMessage("", id=f"a{i}", tool_calls=[call], **meta),
                ToolMessage(f"record {i}" * 5, tool_call_id=f"call_{i}", name="search_archives", id=f"t{i}"),
                AIMessage(f"answer {i} " * 10, id=f"b{i}", **meta)]
    return out[:n]


def main() -> None:
    for label, provider_fields in (("plain", False), ("provider fields", True)):
        messages = conversation(200, provider_fields)
        runs = timeit.repeat(lambda: [message_to_json(m) for m in messages], number=200, repeat=7)
        print(f"{label:>16}: {min(runs) / 200 * 1e3:.3f} ms per 200 messages (best of 7)")


if __name__ == "__main__":
    main()
