"""Reading upstream streams (``providers/streams.py``): SSE bytes re-cut on frame boundaries,
and SSE parsed into batches of IR events, one batch per upstream read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from modelgate import ir
from modelgate.errors import (
    ErrorKind,
    GatewayError,
    InvalidRequest,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelgate.protocols.anthropic import StreamDecoder as AnthropicDecoder
from modelgate.protocols.sse import SSEFrame
from modelgate.providers.http import HttpClient, Timeouts
from modelgate.providers.streams import frame_aligned, sse_events
from tests.providers.conftest import CHUNKED_200, RawRequest, chunk


async def source(chunks: list[bytes], error: BaseException | None = None) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c
    if error is not None:
        raise error


async def aligned(chunks: list[bytes]) -> list[bytes]:
    return [c async for c in frame_aligned(source(chunks))]


# ----------------------------------------------------------------------------- frame_aligned


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        # one frame split across three reads
        ([b"event: a\nda", b'ta: {"x"', b":1}\n\n"], [b'event: a\ndata: {"x":1}\n\n']),
        # several frames in one read
        ([b"data: 1\n\ndata: 2\n\ndata: 3\n\n"], [b"data: 1\n\ndata: 2\n\ndata: 3\n\n"]),
        # whole frames go now, the partial one waits for its end
        ([b"data: 1\n\ndata: 2\n\ndata: 3", b"\n", b"\n"], [b"data: 1\n\ndata: 2\n\n", b"data: 3\n\n"]),
        # the blank line itself split
        ([b"data: 1\n", b"\ndata: 2\n", b"\n"], [b"data: 1\n\n", b"data: 2\n\n"]),
        # CRLF frames, the boundary split inside
        ([b"data: 1\r\n\r\ndata: 2\r", b"\n\r", b"\n"], [b"data: 1\r\n\r\n", b"data: 2\r\n\r\n"]),
        # a trailing partial frame is flushed at the end
        ([b"data: 1\n\ndata: 2"], [b"data: 1\n\n", b"data: 2"]),
        ([b"data: only, no blank line"], [b"data: only, no blank line"]),
        # a whitespace-only remainder is dropped
        ([b"data: 1\n\n", b" \r\n"], [b"data: 1\n\n"]),
        ([b"data: 1\n\n\r\n"], [b"data: 1\n\n"]),
        # extra blank lines after a boundary stay with it
        ([b"data: 1\n\n\n\n"], [b"data: 1\n\n\n\n"]),
        ([], []),
        ([b"", b""], []),
    ],
)
async def test_frame_aligned_cuts_on_frame_boundaries(chunks: list[bytes], expected: list[bytes]) -> None:
    assert await aligned(chunks) == expected


async def test_frame_aligned_releases_frames_as_soon_as_they_are_whole() -> None:
    pulled: list[bytes] = []

    async def counted() -> AsyncIterator[bytes]:
        for c in [b"data: a", b"\n\ndata: b", b"\n\n", b"data: c\n\n"]:
            pulled.append(c)
            yield c

    out = frame_aligned(counted())
    assert await anext(out) == b"data: a\n\n"
    assert len(pulled) == 2  # not read to the end first
    assert await anext(out) == b"data: b\n\n"
    assert len(pulled) == 3
    assert [c async for c in out] == [b"data: c\n\n"]


async def test_frame_aligned_drops_half_a_frame_in_front_of_an_error() -> None:
    error = UpstreamUnavailable("upstream x closed the connection unexpectedly")
    got = []
    with pytest.raises(UpstreamUnavailable) as info:
        async for c in frame_aligned(source([b"data: 1\n\ndata: 2\n\ndata: hal", b"f a fr"], error)):
            got.append(c)
    assert info.value is error
    assert got == [b"data: 1\n\ndata: 2\n\n"]


SAMPLE_LF = (
    b'event: message_start\ndata: {"type":"message_start","text":"h\xc3\xa9"}\n\n'
    b": a comment\n\n"
    b"data: line one\ndata: line two\n\n"
    b"event: ping\ndata: {}\n\n"
    b"id: 7\nevent: done\ndata: [DONE]\n\n"
)
SAMPLE_CRLF = SAMPLE_LF.replace(b"\n", b"\r\n")


@pytest.mark.parametrize(("sample", "boundary"), [(SAMPLE_LF, b"\n\n"), (SAMPLE_CRLF, b"\r\n\r\n")])
async def test_frame_aligned_output_joins_to_its_input_at_every_split(sample: bytes, boundary: bytes) -> None:
    frames = [f + boundary for f in sample.split(boundary)[:-1]]
    assert b"".join(frames) == sample
    for i in range(len(sample) + 1):
        for j in range(i, len(sample) + 1):
            out = await aligned([sample[:i], sample[i:j], sample[j:]])
            assert b"".join(out) == sample, (i, j)
            # every piece is whole frames: it ends on a boundary, and no frame straddles two pieces
            assert all(piece.endswith(boundary) for piece in out), (i, j, out)
            edges = {len(b"".join(out[: k + 1])) for k in range(len(out))}
            frame_ends = {len(b"".join(frames[: k + 1])) for k in range(len(frames))}
            assert edges <= frame_ends, (i, j, out)


# ----------------------------------------------------------------------------- sse_events


class FakeResponse:
    """What ``sse_events`` needs of an :class:`UpstreamResponse`: ``iter_chunks(idle)`` and ``close()``."""

    def __init__(self, chunks: list[bytes], error: BaseException | None = None) -> None:
        self.chunks = chunks
        self.error = error
        self.idle: object = "never asked"
        self.closed = 0

    async def iter_chunks(self, idle: float | None = None) -> AsyncIterator[bytes]:
        self.idle = idle
        for c in self.chunks:
            yield c
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed += 1


def text(value: str) -> ir.BlockDelta:
    return ir.BlockDelta(0, "text", value)


class Recorder:
    """A decoder: every frame's data becomes one text delta; ``fail`` maps a data value to an error."""

    def __init__(self, fail: dict[str, Exception] | None = None, end: list[ir.StreamEvent] | None = None) -> None:
        self.fail = fail or {}
        self.end = [ir.MessageStop()] if end is None else end
        self.frames: list[SSEFrame] = []
        self.finished = 0

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        self.frames.append(frame)
        if frame.data in self.fail:
            raise self.fail[frame.data]
        return [text(frame.data)]

    def finish(self) -> list[ir.StreamEvent]:
        self.finished += 1
        return list(self.end)


async def batches(resp: FakeResponse, dec: Recorder, idle: float | None = None) -> list[list[ir.StreamEvent]]:
    return [b async for b in sse_events(resp, dec.decode, dec.finish, idle)]


async def test_one_batch_per_upstream_read_then_finish() -> None:
    resp = FakeResponse([b"data: a\n\ndata: b\n\n", b"data: c", b"\r\n\r\n", b"event: x\ndata: d\n\ndata: e"])
    dec = Recorder()
    assert await batches(resp, dec, idle=0.25) == [
        [text("a"), text("b")],
        [text("c")],  # the read that brought no whole frame brought no batch
        [text("d")],
        [text("e"), ir.MessageStop()],  # the unterminated last frame, flushed, then finish()
    ]
    assert [(f.event, f.data) for f in dec.frames] == [(None, "a"), (None, "b"), (None, "c"), ("x", "d"), (None, "e")]
    assert (resp.idle, resp.closed, dec.finished) == (0.25, 1, 1)


async def test_finish_alone_makes_the_last_batch_and_an_empty_finish_none() -> None:
    resp = FakeResponse([b"data: a\n\n"])
    assert await batches(resp, Recorder()) == [[text("a")], [ir.MessageStop()]]
    assert resp.idle is None
    assert await batches(FakeResponse([b"data: a\n\n"]), Recorder(end=[])) == [[text("a")]]
    assert await batches(FakeResponse([]), Recorder(end=[])) == []


async def test_an_idle_marker_becomes_a_ping() -> None:
    resp = FakeResponse([b"data: a\n\n", b"", b"data: b", b"", b"\n\n"])
    assert await batches(resp, Recorder(), idle=0.05) == [
        [text("a")],
        [ir.Ping()],
        [ir.Ping()],  # a ping in the middle of a frame leaves the frame whole
        [text("b")],
        [ir.MessageStop()],
    ]


async def test_a_transport_error_becomes_the_last_event() -> None:
    error = UpstreamTimeout("upstream anth timed out")
    resp = FakeResponse([b"data: a\n\n", b"data: half a fra"], error)
    dec = Recorder()
    out = await batches(resp, dec)
    assert out == [[text("a")], [ir.StreamError(error)]]
    assert out[-1][0].error is error
    assert (resp.closed, dec.finished) == (1, 0)  # finish() is not asked for a broken stream


async def test_a_gateway_error_from_the_decoder_follows_the_events_of_its_read() -> None:
    error = UpstreamHTTPError("Overloaded", status=529, kind=ErrorKind.OVERLOADED, protocol="anthropic")
    resp = FakeResponse([b"data: a\n\n", b"data: b\n\ndata: boom\n\ndata: never\n\n", b"data: nor this\n\n"])
    dec = Recorder(fail={"boom": error})
    out = await batches(resp, dec)
    assert out == [[text("a")], [text("b"), ir.StreamError(error)]]
    assert [f.data for f in dec.frames] == ["a", "b", "boom"]
    assert (resp.closed, dec.finished) == (1, 0)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad json"), KeyError("delta"), TypeError("not a dict"), AttributeError("get"), IndexError("0")],
)
async def test_an_event_the_decoder_cannot_read_is_upstream_unavailable(exc: Exception) -> None:
    resp = FakeResponse([b"data: a\n\n", b"data: b\n\ndata: bad\n\n"])
    dec = Recorder(fail={"bad": exc})
    out = await batches(resp, dec)
    assert out[:-1] == [[text("a")]]
    *before, last = out[-1]
    assert before == [text("b")]
    assert isinstance(last, ir.StreamError) and type(last.error) is UpstreamUnavailable
    assert last.error.message == f"upstream sent an invalid stream event: {type(exc).__name__}"
    assert (last.error.status, last.error.retryable) == (502, True)
    assert (resp.closed, dec.finished) == (1, 0)


async def test_a_codec_refusing_what_the_upstream_sent_is_not_the_clients_fault() -> None:
    refused = InvalidRequest("content.type: content block type 'server_tool_use' is not supported on this route")
    out = await batches(FakeResponse([b"data: a\n\ndata: odd\n\n"]), Recorder(fail={"odd": refused}))
    [[first, last]] = out
    assert first == text("a") and isinstance(last, ir.StreamError) and type(last.error) is UpstreamUnavailable
    assert last.error.message == f"upstream sent an event this route cannot translate: {refused.message}"
    assert (last.error.status, last.error.retryable) == (502, True)


async def test_an_unreadable_last_frame_found_by_the_final_flush() -> None:
    resp = FakeResponse([b"data: a\n\n", b"data: bad"])
    out = await batches(resp, Recorder(fail={"bad": ValueError()}))
    assert out[0] == [text("a")] and len(out) == 2 and len(out[1]) == 1
    assert out[1][0].error.message == "upstream sent an invalid stream event: ValueError"


async def test_other_exceptions_propagate_and_still_close() -> None:
    resp = FakeResponse([b"data: a\n\n", b"data: bug\n\n"])
    dec = Recorder(fail={"bug": RuntimeError("a bug")})
    events = sse_events(resp, dec.decode, dec.finish)
    assert await anext(events) == [text("a")]
    with pytest.raises(RuntimeError, match="a bug"):
        await anext(events)
    assert resp.closed == 1


async def test_a_consumer_that_leaves_early_closes_the_upstream() -> None:
    resp = FakeResponse([b"data: a\n\n", b"data: b\n\n"])
    dec = Recorder()
    events = sse_events(resp, dec.decode, dec.finish)
    assert await anext(events) == [text("a")]
    assert resp.closed == 0
    await events.aclose()
    assert (resp.closed, dec.finished) == (1, 0)


# ----------------------------------------------------------------------------- a real decoder


def frame(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


START = frame(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 3},
        },
    },
)
BLOCK = frame(
    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
PING = frame("ping", {"type": "ping"})
DELTA_1 = frame(
    "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hé"}}
)
DELTA_2 = frame(
    "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "llo"}}
)
STOP = frame("content_block_stop", {"type": "content_block_stop", "index": 0})
END = frame(
    "message_delta",
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    },
)
MESSAGE_STOP = frame("message_stop", {"type": "message_stop"})
EVENTS: list[ir.StreamEvent] = [
    ir.MessageStart("msg_01", "claude-sonnet-4-6", ir.Usage(12, 1, 3)),
    ir.BlockStart(0, ir.TextBlock("")),
    ir.Ping(),
    text("Hé"),
    text("llo"),
    ir.BlockStop(0),
    ir.MessageDelta("end_turn", ir.Usage(12, 5, 3)),
    ir.MessageStop(),
]


async def anthropic_batches(chunks: list[bytes], error: GatewayError | None = None) -> list[list[ir.StreamEvent]]:
    dec = AnthropicDecoder()
    return [b async for b in sse_events(FakeResponse(chunks, error), dec.decode, dec.finish)]


async def test_anthropic_stream_split_at_awkward_places() -> None:
    e_acute = DELTA_1.index("é".encode()) + 1  # between the two bytes of é
    reads = [
        START + BLOCK[:20],
        BLOCK[20:] + PING + DELTA_1[:e_acute],
        DELTA_1[e_acute:] + DELTA_2 + STOP,
        END + MESSAGE_STOP,
    ]
    assert await anthropic_batches(reads) == [EVENTS[:1], EVENTS[1:3], EVENTS[3:6], EVENTS[6:]]


async def test_anthropic_stream_cut_before_message_stop() -> None:
    out = await anthropic_batches([START + BLOCK + DELTA_1])
    assert out[0] == [EVENTS[0], EVENTS[1], EVENTS[3]]
    [[last]] = out[1:]
    assert isinstance(last, ir.StreamError) and type(last.error) is UpstreamUnavailable
    assert last.error.message == "upstream stream ended before message_stop"


async def test_anthropic_error_event_and_invalid_json() -> None:
    overloaded = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    [first, [last]] = await anthropic_batches([START, overloaded])
    assert first == EVENTS[:1]
    assert isinstance(last, ir.StreamError) and isinstance(last.error, UpstreamHTTPError)
    assert (last.error.status, last.error.kind, last.error.message) == (529, ErrorKind.OVERLOADED, "Overloaded")

    [[broken]] = await anthropic_batches([b"event: message_start\ndata: {not json\n\n"])
    assert isinstance(broken, ir.StreamError) and type(broken.error) is UpstreamUnavailable
    assert broken.error.message == "upstream sent an invalid stream event: JSONDecodeError"


async def test_anthropic_stream_from_a_real_upstream_that_dies_mid_frame(raw_server, http_client: HttpClient) -> None:
    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200 + chunk(START + BLOCK))
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(chunk(PING + DELTA_1 + DELTA_2[:30]))
        writer.close()

    server = await raw_server(handler)
    resp = await http_client.post(server.url + "/v1/messages", b"{}", {}, Timeouts(1.0, 1.0), "anth")
    dec = AnthropicDecoder()
    out = [b async for b in sse_events(resp, dec.decode, dec.finish)]
    flat = [e for b in out for e in b]
    assert flat[:-1] == EVENTS[:4]  # everything whole that arrived, the half frame dropped
    last = flat[-1]
    assert isinstance(last, ir.StreamError) and type(last.error) is UpstreamUnavailable
    assert last.error.message == "upstream anth closed the connection unexpectedly"
    assert out[-1][-1] is last  # the error ends the last batch
