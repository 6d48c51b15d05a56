"""The incremental SSE parser: frames survive any chunking, including split UTF-8 and CRLF."""

from __future__ import annotations

import pytest

from modelgate.protocols.sse import SSEFrame, SSEParser, encode_frame

STREAM = (
    'event: message_start\ndata: {"a":1}\n\n'
    ": a comment\n\n"
    'event: content_block_delta\ndata: {"text":"héllo — 世界 🎉"}\n\n'
    "data: line one\ndata: line two\n\n"
    "data: [DONE]\n\n"
).encode()

EXPECTED = [
    SSEFrame("message_start", '{"a":1}'),
    SSEFrame("content_block_delta", '{"text":"héllo — 世界 🎉"}'),
    SSEFrame(None, "line one\nline two"),
    SSEFrame(None, "[DONE]"),
]


def feed_all(parser: SSEParser, chunks: list[bytes]) -> list[SSEFrame]:
    frames: list[SSEFrame] = []
    for chunk in chunks:
        frames += parser.feed(chunk)
    return frames + parser.flush()


def test_whole_stream_in_one_chunk() -> None:
    assert feed_all(SSEParser(), [STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_every_chunk_size_gives_the_same_frames(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert feed_all(SSEParser(), chunks) == EXPECTED


def test_every_split_point_including_inside_multibyte_characters() -> None:
    for cut in range(1, len(STREAM)):
        assert feed_all(SSEParser(), [STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_crlf_line_endings_split_between_cr_and_lf() -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    for cut in range(1, len(crlf)):
        assert feed_all(SSEParser(), [crlf[:cut], crlf[cut:]]) == EXPECTED, cut


def test_flush_returns_a_final_frame_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x":1}\n') == []
    assert parser.flush() == [SSEFrame(None, '{"x":1}')]


def test_field_without_space_and_id() -> None:
    assert SSEParser().feed(b"event:ping\nid: 7\ndata:{}\n\n") == [SSEFrame("ping", "{}", "7")]


def test_encode_frame() -> None:
    assert encode_frame(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
    assert encode_frame(b"[DONE]") == b"data: [DONE]\n\n"
