"""The Responses answer tap, on real answers of the fake upstream (``/v1/responses``)."""

from __future__ import annotations

import orjson
import pytest

from modelgate import ir
from modelgate.protocols import openai_responses as codec
from modelgate.protocols import tap as tap_module
from modelgate.protocols.openai_responses import ResponsesTap
from modelgate.protocols.sse import SSEParser
from tests.protocols.taps import USAGE, crlf, fetch, groupings, same_everywhere, seen, sse_frames

MODEL = "gpt-5"
HEADERS = {"authorization": "Bearer test-key"}
#: ``taps.USAGE`` as Responses reports it (cache writes apart), decoded.
EXPECTED = ir.Usage(input_tokens=120, output_tokens=30, cache_read_tokens=40, cache_write_tokens=7, reasoning_tokens=5)
CREATED = 1_735_689_600  # the fake's fixed created_at


def answer(fake, prompt: str, *, stream: bool = True) -> bytes:
    body = {"model": MODEL, "input": prompt, "stream": stream, "max_output_tokens": 256}
    return fetch(fake.openai_base_url + "/responses", HEADERS, json=body)


def decoded_usage(raw: bytes) -> ir.Usage:
    decoder, parser = codec.StreamDecoder(), SSEParser()
    events = [e for f in parser.feed(raw) + parser.flush() for e in decoder.decode(f)]
    return [e for e in events if isinstance(e, ir.MessageDelta)][-1].usage


def watch(frames: list[bytes]) -> list[ResponsesTap]:
    """One tap per way of cutting ``frames``; all must agree (see ``same_everywhere``)."""
    taps = []
    for chunks in groupings(frames).values():
        tap = ResponsesTap()
        for chunk in chunks:
            assert tap.feed(chunk) is chunk
        taps.append(tap)
    return taps


def sequence_numbers(frames: list[bytes]) -> list[int]:
    return [orjson.loads(f.split(b"data: ", 1)[1])["sequence_number"] for f in frames]


@pytest.mark.parametrize("framing", ["lf", "crlf"])
def test_streamed_answer(fake_upstream, framing: str) -> None:
    raw = answer(fake_upstream, USAGE + ' [[fake:thinking hmm]] [[fake:tool get_time {"tz": "CET"}]]')
    assert decoded_usage(raw) == EXPECTED
    frames = sse_frames(raw)
    if framing == "crlf":
        frames = sse_frames(crlf(raw))
    assert same_everywhere(ResponsesTap, frames) == (EXPECTED, True, False, "completed", MODEL)
    last = sequence_numbers(sse_frames(raw))[-1]
    for tap in watch(frames):
        assert tap.next_sequence == last + 1
        assert tap.response is not None and tap.response["status"] == "in_progress"  # the first one
        assert tap.response["id"].startswith("resp_") and tap.created_at == CREATED


def test_incomplete_answer(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " [[fake:max_tokens]] hi")
    assert b"event: response.incomplete" in raw
    assert same_everywhere(ResponsesTap, sse_frames(raw)) == (EXPECTED, True, False, "incomplete", MODEL)


def test_cut_short(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " [[fake:break 6]] hi")
    frames = sse_frames(raw)
    assert len(frames) == 6
    assert same_everywhere(ResponsesTap, frames) == (None, False, False, None, MODEL)
    for tap in watch(frames):
        assert tap.next_sequence == 6 and tap.response is not None and tap.response["model"] == MODEL


def test_response_failed(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " [[fake:error 500 after=5]] hi")
    frames = sse_frames(raw)
    assert frames[-1].startswith(b"event: response.failed\n")
    # response.failed is the protocol's end too: ended, and failed.
    assert same_everywhere(ResponsesTap, frames) == (None, True, True, "failed", MODEL)
    whole = ResponsesTap()
    whole.feed(b"".join(frames))
    assert whole.error is not None and whole.error.protocol == "openai_responses"
    assert (whole.error.status, whole.error.code) == (500, None) and whole.error.message
    for tap in watch(frames):
        assert tap.next_sequence == 6


def test_error_event() -> None:
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "model": "m"}}
    error = {"type": "error", "sequence_number": 1, "code": "rate_limit_exceeded", "message": "Rate limit reached"}
    raw = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in (created, error))
    assert same_everywhere(ResponsesTap, sse_frames(raw)) == (None, False, True, None, "m")


def test_sequence_numbers_with_spaces_and_text_that_looks_like_an_end() -> None:
    tap = ResponsesTap()
    delta = {
        "type": "response.output_text.delta",
        "sequence_number": 41,
        "delta": '"response.completed" {"type":"error"}',
    }
    tap.feed(b"data: " + orjson.dumps(delta) + b"\n\n")
    assert seen(tap) == (None, False, False, None, None) and tap.next_sequence == 42
    tap.feed(b'data: {"type": "response.output_text.delta", "sequence_number": 107, "delta": "x"}\n\n')
    assert tap.next_sequence == 108


def test_only_the_first_and_last_events_are_parsed(fake_upstream, monkeypatch) -> None:
    raw = answer(fake_upstream, "[[fake:words 100]]")
    parsed = []
    original = tap_module.load  # json_events, in the shared module, parses what the tap picks
    monkeypatch.setattr(tap_module, "load", lambda data: parsed.append(data) or original(data))
    tap = ResponsesTap()
    for frame in sse_frames(raw):
        tap.feed(frame)
    assert tap.ended  # the kept chunks are read now
    assert [orjson.loads(d)["type"] for d in parsed] == ["response.created", "response.completed"]
    assert tap.ended and tap.usage is not None and tap.usage.output_tokens == 100


def test_whole_answer(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " hi", stream=False)
    assert codec.decode_response(orjson.loads(raw)).usage == EXPECTED
    tap = ResponsesTap()
    tap.whole(raw)
    assert seen(tap) == (EXPECTED, True, False, "completed", MODEL)
    assert tap.response is not None and tap.created_at == CREATED


def test_whole_failed_and_error_bodies() -> None:
    tap = ResponsesTap()
    tap.whole(b'{"id":"resp_1","object":"response","status":"failed","model":"m","usage":null,"error":{"code":"x"}}')
    assert seen(tap) == (None, True, True, "failed", "m")
    tap = ResponsesTap()
    tap.whole(b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}')
    assert seen(tap) == (None, False, True, None, None)
