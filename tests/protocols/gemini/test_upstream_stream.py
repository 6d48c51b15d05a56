"""A Gemini upstream's ``alt=sse`` stream → IR events: golden fixtures (``fixtures/upstream_streams``)
fed as Google frames them (``data: …\\r\\n\\r\\n``) in small pieces, and Anthropic's stream invariants.
A frame is an object (sent as JSON) or a string (sent as it is); ``finish()`` is always called
after the last frame, as the provider does when the upstream body ends."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.protocols import gemini as codec
from modelgate.protocols.sse import SSEParser
from tests.protocols.streams import check_stream_order, decode_in_pieces, sse_body

from .helpers import as_json, check, load, names


def run_stream(frames: list[Any], piece: int = 7) -> list[ir.StreamEvent]:
    return decode_in_pieces(sse_body(frames, b"\r\n\r\n"), codec.StreamDecoder(), piece)


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
    """Anthropic's order: see :mod:`tests.protocols.streams`."""
    check_stream_order(run_stream(load("upstream_streams", name)["frames"]))


def test_finish_waits_for_the_body_to_end() -> None:
    frames = load("upstream_streams", "thoughts_text_and_calls")["frames"]
    decoder = codec.StreamDecoder()
    parser = SSEParser()
    raw = sse_body(frames, b"\r\n\r\n")
    events = [e for frame in parser.feed(raw) for e in decoder.decode(frame)]
    assert not any(isinstance(e, ir.MessageDelta) for e in events)
    end = decoder.finish()
    assert isinstance(end[-2], ir.MessageDelta) and end[-2].stop_reason == "tool_use"
    assert end[-2].usage == ir.Usage(10, 25, reasoning_tokens=5)
