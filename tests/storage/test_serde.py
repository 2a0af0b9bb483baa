"""The checkpoint serializer decodes what LangGraph's decodes, remembers within its bounds, and
keeps doing so for the serializers LangGraph derives from it (strict msgpack allowlists)."""

import datetime as dt
import pathlib
import sys

import ormsgpack

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graphrun_server.storage.serde import BYTES_PER_ENCODED_BYTE, CachingSerializer

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "graphs"))
from values import every_kind  # noqa: E402


def _dumps(messages):
    return [(type(m).__name__, m.model_dump(), m.model_fields_set) for m in messages]


def test_decoding_twice_gives_langgraphs_messages_each_time_and_never_the_same_objects():
    stored = JsonPlusSerializer().dumps_typed(every_kind())
    expected = JsonPlusSerializer().loads_typed(stored)
    serde = CachingSerializer()
    first, second = serde.loads_typed(stored), serde.loads_typed(stored)
    assert len(serde.messages) == len(expected)
    assert _dumps(first) == _dumps(second) == _dumps(expected)
    for a, b in zip(first, second):
        assert a is not b and a.additional_kwargs is not b.additional_kwargs
    first[2].tool_calls[0]["args"]["query"] = "changed"
    assert serde.loads_typed(stored)[2].tool_calls[0]["args"]["query"] == "roof"


def test_the_first_kept_go_first_beyond_the_limit_and_a_message_read_again_is_kept_again():
    encoded = [JsonPlusSerializer().dumps_typed([HumanMessage(f"message {i}", id=str(i))]) for i in range(50)]
    one = len(encoded[0][1]) * BYTES_PER_ENCODED_BYTE  # about: the list's header adds a byte or two
    serde = CachingSerializer(cache_bytes=10 * one)
    for stored in encoded:
        serde.loads_typed(stored)
        serde.loads_typed(encoded[0])  # read again and again: kept again once dropped
    assert serde.messages.size <= serde.messages.limit
    assert 5 <= len(serde.messages) <= 10
    own_bytes = [ormsgpack.unpackb(stored[1], ext_hook=lambda _code, data: data)[0] for stored in encoded]
    assert serde.messages.get(own_bytes[0]) is not None and serde.messages.get(own_bytes[1]) is None
    assert serde.messages.get(own_bytes[-1]) is not None


def test_a_serializer_derived_with_a_strict_allowlist_shares_what_is_kept():
    serde = CachingSerializer(allowed_msgpack_modules=None)  # strict: what LANGGRAPH_STRICT_MSGPACK sets
    derived = serde.with_msgpack_allowlist([("tests.somewhere", "Thing")])
    assert derived is not serde and derived.messages is serde.messages
    stored = JsonPlusSerializer().dumps_typed([AIMessage("hi", id="a")])
    expected = _dumps(JsonPlusSerializer().loads_typed(stored))
    assert _dumps(serde.loads_typed(stored)) == expected
    assert _dumps(derived.loads_typed(stored)) == expected and serde.messages.hits == 1


def test_a_message_holding_more_than_plain_data_is_decoded_each_time():
    held = [ToolMessage("found", tool_call_id="c", id="t", artifact={"when": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}),
            HumanMessage("plain", id="h")]
    stored = JsonPlusSerializer().dumps_typed(held)
    serde = CachingSerializer()
    first, second = serde.loads_typed(stored), serde.loads_typed(stored)
    assert _dumps(first) == _dumps(second) == _dumps(JsonPlusSerializer().loads_typed(stored))
    assert len(serde.messages) == 1 and serde.messages.hits == 1  # the plain one only
    assert first[0].artifact["when"] is not second[0].artifact["when"] or first[0] is not second[0]


def test_no_memory_no_remembering():
    serde = CachingSerializer(cache_bytes=0)
    stored = serde.dumps_typed([HumanMessage("hi", id="h")])
    expected = _dumps(JsonPlusSerializer().loads_typed(stored))
    assert _dumps(serde.loads_typed(stored)) == expected and len(serde.messages) == 0
