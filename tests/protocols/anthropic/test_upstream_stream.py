"""An Anthropic upstream's SSE frames → IR events: usage, a stream cut short, error events."""

from __future__ import annotations

from modelgate import ir
from modelgate.errors import UpstreamHTTPError
from modelgate.protocols import anthropic as codec
from modelgate.protocols.sse import SSEParser
from tests.protocols.anthropic.helpers import frames


def test_stream_decoder_reports_a_stream_cut_before_message_stop() -> None:
    decoder = codec.StreamDecoder()
    for frame in frames("stream_tool_use.sse")[:5]:
        decoder.decode(frame)
    [event] = decoder.finish()
    assert isinstance(event, ir.StreamError)
    assert event.error.status == 502


def test_stream_usage_is_cumulative() -> None:
    decoder = codec.StreamDecoder()
    events = [e for f in frames("stream_tool_use.sse") for e in decoder.decode(f)]
    [delta] = [e for e in events if isinstance(e, ir.MessageDelta)]
    assert (delta.usage.input_tokens, delta.usage.output_tokens, delta.stop_reason) == (472, 89, "tool_use")


def test_upstream_error_event_becomes_stream_error() -> None:
    parser = SSEParser()
    [frame] = parser.feed(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    [event] = codec.StreamDecoder().decode(frame)
    assert isinstance(event.error, UpstreamHTTPError)
    assert (event.error.status, event.error.kind, event.error.message) == (529, "overloaded", "Overloaded")
    assert codec.error_body(event.error) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
