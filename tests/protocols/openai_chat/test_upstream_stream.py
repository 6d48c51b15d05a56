"""An upstream's chunk stream → IR events: golden fixtures in ``fixtures/streams`` and Anthropic's
stream invariants. A stream's frames are data strings (sent as they are) or objects (sent as
JSON); ``finish()`` is always called after the last frame, as the provider does when the
upstream body ends.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols import openai_chat as codec
from modelgate.protocols.openai_chat import StreamDecoder
from modelgate.protocols.sse import SSEFrame
from tests.protocols.streams import check_stream_order, decode_in_pieces, sse_body

from .helpers import as_json, check, load, names


def run_stream(frames: list[Any]) -> list[ir.StreamEvent]:
    decoder = StreamDecoder()
    events: list[ir.StreamEvent] = []
    for f in frames:
        if isinstance(f, dict) and "sse_event" in f:
            frame = SSEFrame(f["sse_event"], orjson.dumps(f["data"]).decode())
        else:
            frame = SSEFrame(None, f if isinstance(f, str) else orjson.dumps(f).decode())
        events += decoder.decode(frame)
    return events + decoder.finish()


@pytest.mark.parametrize("name", names("streams"))
def test_stream_golden(name: str) -> None:
    events = run_stream(load("streams", name)["frames"])
    check("streams", name, as_json(events), key="expected")


@pytest.mark.parametrize("name", names("streams"))
def test_stream_invariants(name: str) -> None:
    """Anthropic's order, strictly: see :mod:`tests.protocols.streams`."""
    check_stream_order(run_stream(load("streams", name)["frames"]), strict=True)


def test_stream_through_the_sse_parser_byte_by_byte() -> None:
    """The decoder works on frames as the SSE parser yields them, however the bytes are cut."""
    frames = load("streams", "parallel_tool_calls")["frames"]
    events = decode_in_pieces(sse_body(frames), StreamDecoder(), piece=1)
    assert as_json(events) == load("streams", "parallel_tool_calls")["expected"]


def test_nothing_after_the_end() -> None:
    decoder = StreamDecoder()
    decoder.decode(SSEFrame(None, '{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}'))
    assert isinstance(decoder.decode(SSEFrame(None, "[DONE]"))[-1], ir.MessageStop)
    assert decoder.decode(SSEFrame(None, '{"id":"c","choices":[{"index":0,"delta":{"content":"y"}}]}')) == []
    assert decoder.finish() == []


def test_abrupt_end_is_an_upstream_unavailable_error() -> None:
    decoder = StreamDecoder()
    decoder.decode(SSEFrame(None, '{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}'))
    (event,) = decoder.finish()
    assert isinstance(event, ir.StreamError) and isinstance(event.error, UpstreamUnavailable)
    assert event.error.status == 502


def test_stream_import_is_reexported() -> None:
    assert codec.StreamDecoder is StreamDecoder
