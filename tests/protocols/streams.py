"""What the upstream stream decoder tests share: an upstream's SSE body, fed to a decoder the
way the provider feeds it, and Anthropic's stream order, which every decoder must produce (one
start, contiguous blocks opened and stopped once, one end or one error)."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.protocols.codec import StreamDecoder
from modelgate.protocols.sse import SSEParser


def sse_body(frames: list[Any], end: bytes = b"\n\n") -> bytes:
    """``data:`` frames as an upstream writes them: strings as they are, anything else as JSON."""
    return b"".join(b"data: " + (f.encode() if isinstance(f, str) else orjson.dumps(f)) + end for f in frames)


def decode_in_pieces(raw: bytes, decoder: StreamDecoder, piece: int) -> list[ir.StreamEvent]:
    """``raw`` through the SSE parser ``piece`` bytes at a time, every whole frame through
    ``decoder``, then ``finish()``, as the provider does when the upstream body ends."""
    parser = SSEParser()
    events: list[ir.StreamEvent] = []
    for i in range(0, len(raw), piece):
        for frame in parser.feed(raw[i : i + piece]):
            events += decoder.decode(frame)
    for frame in parser.flush():
        events += decoder.decode(frame)
    return events + decoder.finish()


def check_stream_order(events: list[ir.StreamEvent], *, always_starts: bool = False, strict: bool = False) -> None:
    """Assert the order of a decoded stream. ``always_starts``: the message starts even when
    the stream fails (the Responses decoder). ``strict``: text and thinking blocks start empty,
    no delta is empty and the message ends only once every block is stopped (the Chat decoder)."""
    errors = [e for e in events if isinstance(e, ir.StreamError)]
    assert len(errors) <= 1
    if errors:
        assert events[-1] is errors[0]
        events = events[:-1]
    else:
        assert isinstance(events[-2], ir.MessageDelta) and isinstance(events[-1], ir.MessageStop)
    starts = sum(isinstance(e, ir.MessageStart) for e in events)
    if always_starts:
        assert starts == 1 and isinstance(events[0], ir.MessageStart)
    else:
        assert starts <= 1 and (errors or isinstance(events[0], ir.MessageStart))
    open_index: int | None = None
    next_index = 0
    for e in events:
        if isinstance(e, ir.BlockStart):
            assert open_index is None and e.index == next_index
            open_index, next_index = e.index, next_index + 1
            if strict and isinstance(e.block, ir.TextBlock | ir.ThinkingBlock):
                assert getattr(e.block, "text", "") == "" and getattr(e.block, "thinking", "") == ""
        elif isinstance(e, ir.BlockDelta):
            assert e.index == open_index and not (strict and e.value == "")
        elif isinstance(e, ir.BlockStop):
            assert e.index == open_index
            open_index = None
        elif strict and isinstance(e, ir.MessageDelta | ir.MessageStop):
            assert open_index is None
    assert open_index is None or errors
