"""The shared tap helpers: finding the frames worth reading from the needles outwards gives
exactly the frames a full split would have picked, whatever the line ends."""

from __future__ import annotations

import pytest

from modelgate.protocols.tap import frame_bounds, frames_with, json_events, last_frame_with, split_frames

FRAMES = [
    b'event: message_start\ndata: {"type":"message_start","n":1}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","text":"a"}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","text":"b"}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","n":2}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]


def styles() -> list[list[bytes]]:
    crlf = [f.replace(b"\n", b"\r\n") for f in FRAMES]
    cr = [f.replace(b"\n", b"\r") for f in FRAMES]
    mixed = [FRAMES[0], crlf[1], FRAMES[2], crlf[3], FRAMES[4]]
    return [FRAMES, crlf, cr, mixed]


@pytest.mark.parametrize("frames", styles())
@pytest.mark.parametrize("needles", [(b'"message_',), (b'"text"',), (b"message_stop", b"message_start"), (b"nowhere",)])
def test_frames_with_picks_what_a_full_split_would(frames: list[bytes], needles: tuple[bytes, ...]) -> None:
    chunk = b"".join(frames)
    expected = [f for f in split_frames(chunk) if any(n in f for n in needles)]
    assert frames_with(chunk, needles) == expected


@pytest.mark.parametrize("frames", styles())
def test_last_frame_with(frames: list[bytes]) -> None:
    chunk = b"".join(frames)
    assert last_frame_with(chunk, b"content_block_delta") == frames[2]
    assert last_frame_with(chunk, b"message_start") == frames[0]
    assert last_frame_with(chunk, b"nowhere") is None


def test_a_last_frame_without_its_blank_line() -> None:
    chunk = FRAMES[0] + b'data: {"type":"message_stop"}'
    assert frame_bounds(chunk, len(chunk) - 3) == (len(FRAMES[0]), len(chunk))
    assert frames_with(chunk, (b"message_stop",)) == [b'data: {"type":"message_stop"}']


def test_json_events_parse_only_the_picked_frames_in_order() -> None:
    chunk = b"".join(FRAMES) + b"data: not json message_x\n\n"
    events = list(json_events(chunk, (b"message_",), lambda frame: b"message_stop" not in frame))
    assert events == [{"type": "message_start", "n": 1}, {"type": "message_delta", "n": 2}]
