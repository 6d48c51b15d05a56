"""IR events → Anthropic SSE frames: the documented streams come back frame for frame, and the
encoder the front door uses."""

from __future__ import annotations

import orjson
import pytest

from modelgate import ir
from modelgate.errors import ErrorKind, GatewayError
from modelgate.protocols import anthropic as codec
from modelgate.protocols.sse import SSEParser
from tests.protocols.anthropic.helpers import frames


@pytest.mark.parametrize("name", ["stream_tool_use.sse", "stream_thinking.sse"])
def test_documented_streams_round_trip_event_by_event(name: str) -> None:
    decoder = codec.StreamDecoder()
    for frame in frames(name):
        events = decoder.decode(frame)
        assert len(events) == 1
        out = SSEParser().feed(codec.encode_event(events[0]))
        assert len(out) == 1
        assert out[0].event == frame.event
        original, again = orjson.loads(frame.data), orjson.loads(out[0].data)
        if frame.event == "message_start":
            for key in ("id", "model", "role", "content", "stop_reason"):
                assert again["message"][key] == original["message"][key]
        elif frame.event == "message_delta":
            assert again["delta"] == original["delta"]
        else:
            assert again == original
    assert decoder.finish() == []


def test_stream_encoder_writes_each_event_as_encode_event_does() -> None:
    encoder = codec.StreamEncoder()
    events: list[ir.StreamEvent] = [
        ir.MessageStart("msg_1", "claude-sonnet-4-6", ir.Usage(12)),
        ir.BlockStart(0, ir.TextBlock("")),
        ir.BlockDelta(0, "text", "Hi"),
        ir.BlockStop(0),
        ir.Ping(),
        ir.MessageDelta("end_turn", ir.Usage(12, 3)),
        ir.MessageStop(),
    ]
    for event in events:
        assert encoder.encode(event) == codec.encode_event(event)
    assert encoder.end() == b""


def test_stream_encoder_error_is_an_error_event_in_the_envelope() -> None:
    err = GatewayError("Overloaded", status=529, kind=ErrorKind.OVERLOADED)
    [frame] = SSEParser().feed(codec.StreamEncoder().error(err))
    assert frame.event == "error"
    assert orjson.loads(frame.data) == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
