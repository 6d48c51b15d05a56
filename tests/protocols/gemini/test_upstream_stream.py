"""A Gemini upstream's ``alt=sse`` stream → IR events: golden fixtures (``fixtures/upstream_streams``)
fed as Google frames them (``data: …\\r\\n\\r\\n``) in small pieces, and Anthropic's stream invariants.
A frame is an object (sent as JSON) or a string (sent as it is); ``finish()`` is always called
after the last frame, as the provider does when the upstream body ends."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate import ir
from modelgate.protocols import gemini as codec
from modelgate.protocols.sse import SSEParser

from .helpers import as_json, check, load, names


def run_stream(frames: list[Any], piece: int = 7) -> list[ir.StreamEvent]:
    raw = b"".join(b"data: " + (f.encode() if isinstance(f, str) else orjson.dumps(f)) + b"\r\n\r\n" for f in frames)
    parser, decoder = SSEParser(), codec.StreamDecoder()
    events: list[ir.StreamEvent] = []
    for i in range(0, len(raw), piece):
        for frame in parser.feed(raw[i : i + piece]):
            events += decoder.decode(frame)
    for frame in parser.flush():
        events += decoder.decode(frame)
    return events + decoder.finish()


@pytest.mark.parametrize("name", names("upstream_streams"))
def test_upstream_stream_golden(name: str) -> None:
    events = run_stream(load("upstream_streams", name)["frames"])
    check("upstream_streams", name, as_json(events), key="expected")


@pytest.mark.parametrize("name", names("upstream_streams"))
def test_chunking_does_not_matter(name: str) -> None:
    frames = load("upstream_streams", name)["frames"]
    assert as_json(run_stream(frames, piece=1)) == as_json(run_stream(frames, piece=4096))


@pytest.mark.parametrize("name", names("upstream_streams"))
def test_stream_invariants(name: str) -> None:
    """Anthropic's order: one start, contiguous blocks opened and stopped once, one end or one error."""
    events = run_stream(load("upstream_streams", name)["frames"])
    errors = [e for e in events if isinstance(e, ir.StreamError)]
    assert len(errors) <= 1
    if errors:
        assert events[-1] is errors[0]
        events = events[:-1]
    else:
        assert isinstance(events[0], ir.MessageStart)
        assert isinstance(events[-2], ir.MessageDelta) and isinstance(events[-1], ir.MessageStop)
    assert sum(isinstance(e, ir.MessageStart) for e in events) <= 1
    open_index: int | None = None
    next_index = 0
    for e in events:
        if isinstance(e, ir.BlockStart):
            assert open_index is None and e.index == next_index
            open_index, next_index = e.index, next_index + 1
        elif isinstance(e, ir.BlockDelta):
            assert e.index == open_index
        elif isinstance(e, ir.BlockStop):
            assert e.index == open_index
            open_index = None
    assert open_index is None or errors


def test_finish_waits_for_the_body_to_end() -> None:
    frames = load("upstream_streams", "thoughts_text_and_calls")["frames"]
    decoder = codec.StreamDecoder()
    parser = SSEParser()
    raw = b"".join(b"data: " + orjson.dumps(f) + b"\r\n\r\n" for f in frames)
    events = [e for frame in parser.feed(raw) for e in decoder.decode(frame)]
    assert not any(isinstance(e, ir.MessageDelta) for e in events)
    end = decoder.finish()
    assert isinstance(end[-2], ir.MessageDelta) and end[-2].stop_reason == "tool_use"
    assert end[-2].usage == ir.Usage(10, 25, reasoning_tokens=5)
