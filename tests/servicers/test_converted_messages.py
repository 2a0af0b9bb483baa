"""Answers convert a message once and answer it so while it stays the same (wire.ConvertedMessages):
the same type for type, or converted anew; never an error the conversion itself would not raise."""

import decimal
import json

import pytest
from google.protobuf import json_format
from langchain_core.messages import AIMessage, ToolMessage

from graphrun_server import wire
from graphrun_server.servicers.convert import to_struct


@pytest.fixture
def kept(monkeypatch):
    converted = wire.ConvertedMessages(1 << 20)
    monkeypatch.setattr(wire, "converted", converted)
    return converted


def _answered(messages: list) -> list:
    """The messages as an answer carries them: JSON, then the protobuf Struct, read back."""
    return json_format.MessageToDict(to_struct({"messages": wire.to_json(messages)}))["messages"]


@pytest.mark.parametrize("before, after", [
    (1, True),  # equal in Python, not on the wire
    (0, False),
    (1, decimal.Decimal(1)),  # a number, then the string "1"
    ([1, 2], (1, 2)),
    ("a", "b"),
])
def test_a_field_changed_under_the_same_id_is_answered_as_it_is_now(kept, before, after):
    message = AIMessage("same", id="m", additional_kwargs={"value": before})
    _answered([message])
    _answered([message])
    changed = AIMessage("same", id="m", additional_kwargs={"value": after})
    expected = [json_format.MessageToDict(to_struct(wire._message_to_json(changed)))]
    # As text (in Python 1.0 == True), keys sorted (a Struct is a map: its order is not kept).
    assert json.dumps(_answered([changed]), sort_keys=True) == json.dumps(expected, sort_keys=True)


class Touchy:
    """A value whose comparison fails, as a numpy array's does."""

    def __eq__(self, other):
        raise ValueError("the truth value of an array is ambiguous")

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy")

    def __str__(self):
        return "touchy"


def test_a_message_holding_an_object_is_answered_every_time_as_the_first(kept):
    message = ToolMessage("found", tool_call_id="c", id="t", artifact=Touchy())
    first = _answered([message])
    assert _answered([message]) == first and first[0]["artifact"] == "touchy"
    assert len(kept) == 0


def test_kept_messages_stay_within_the_limit(monkeypatch):
    converted = wire.ConvertedMessages(64 * 1024)
    monkeypatch.setattr(wire, "converted", converted)
    for i in range(200):
        _answered([AIMessage("x" * 1000, id=f"m{i}")])
    assert converted.size <= converted.limit and 0 < len(converted) < 200
    assert wire.to_json([AIMessage("x" * 1000, id="m199")]) and converted.hits >= 1
