"""What a long conversation costs a turn per message, beyond running the graph: LangGraph's
checkpoint read decoding it, and the answer converting it (to JSON, then into the protobuf
`Struct`). Each for plain messages and for messages carrying what real providers attach
(`response_metadata`, `usage_metadata`, `additional_kwargs`, tool calls); each the first time
(LangGraph's decoding; every message converted) and as a later turn finds them (kept: see
storage/serde.py and wire.py).

    python -m benchmarks.message_json
"""

from __future__ import annotations

import timeit

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graphrun_server import wire
from graphrun_server.servicers.convert import to_struct
from graphrun_server.storage.serde import CachingSerializer


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


def _best(call, number: int = 50) -> float:
    """ms per call, best of 7."""
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e3


def main() -> None:
    print("ms per turn: | decode: LangGraph | kept | answer: convert all | kept")
    for n in (200, 400):
        for label, provider_fields in (("plain", False), ("provider fields", True)):
            stored = JsonPlusSerializer().dumps_typed(conversation(n, provider_fields))
            kept = CachingSerializer()
            kept.loads_typed(stored)
            decode = _best(lambda: JsonPlusSerializer().loads_typed(stored))  # noqa: B023 - called at once
            decode_kept = _best(lambda: kept.loads_typed(stored))  # noqa: B023
            messages = kept.loads_typed(stored)
            wire.converted = wire.ConvertedMessages(0)
            convert = _best(lambda: to_struct({"messages": wire.to_json(messages)}))  # noqa: B023
            wire.converted = wire.ConvertedMessages(64 * 2**20)
            to_struct({"messages": wire.to_json(messages)})
            convert_kept = _best(lambda: to_struct({"messages": wire.to_json(messages)}))  # noqa: B023
            print(f"{n} messages, {label:>15}: | {decode:.2f} | {decode_kept:.2f} | {convert:.2f} | {convert_kept:.2f}")


if __name__ == "__main__":
    main()
