"""The Anthropic answer tap, on real answers of the fake upstream (``/v1/messages``)."""

from __future__ import annotations

import orjson
import pytest

from modelgate import ir
from modelgate.protocols import anthropic as codec
from modelgate.protocols import tap as tap_module
from modelgate.protocols.anthropic import AnthropicTap
from modelgate.protocols.sse import SSEParser
from tests.protocols.taps import USAGE, crlf, fetch, same_everywhere, seen, sse_frames

MODEL = "claude-sonnet-4-6"
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
#: ``taps.USAGE`` in Anthropic's terms (Anthropic reports no reasoning count of its own).
EXPECTED = ir.Usage(input_tokens=120, output_tokens=30, cache_read_tokens=40, cache_write_tokens=7)


def answer(fake, prompt: str, *, stream: bool = True) -> bytes:
    body = {"model": MODEL, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    return fetch(fake.base_url + "/v1/messages", HEADERS, json=body)


def decoded(raw: bytes) -> tuple[ir.Usage, str | None, str]:
    """The codec's own reading of a whole stream: final usage, stop reason, model."""
    decoder, parser = codec.StreamDecoder(), SSEParser()
    events = [e for f in parser.feed(raw) + parser.flush() for e in decoder.decode(f)]
    start = next(e for e in events if isinstance(e, ir.MessageStart))
    delta = [e for e in events if isinstance(e, ir.MessageDelta)][-1]
    return delta.usage, delta.stop_reason, start.model


@pytest.mark.parametrize("framing", ["lf", "crlf"])
def test_streamed_answer(fake_upstream, framing: str) -> None:
    raw = answer(fake_upstream, USAGE + ' [[fake:thinking pondering]] [[fake:tool Bash {"command": "ls"}]] hi')
    usage, stop, model = decoded(raw)
    assert (usage, stop, model) == (EXPECTED, "tool_use", MODEL)
    if framing == "crlf":
        raw = crlf(raw)
    assert same_everywhere(AnthropicTap, sse_frames(raw)) == (EXPECTED, True, False, "tool_use", MODEL)


def test_output_is_a_running_total_and_counts_resent_in_message_delta_win() -> None:
    tap = AnthropicTap()
    start = {
        "type": "message_start",
        "message": {"model": "m", "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}},
    }
    tap.feed(b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n")
    assert tap.usage == ir.Usage(input_tokens=10, output_tokens=1, cache_read_tokens=5)
    for output in (7, 20):
        delta = {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": output}}
        tap.feed(b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n")
    assert tap.usage == ir.Usage(input_tokens=10, output_tokens=20, cache_read_tokens=5)
    assert tap.stop_reason is None and not tap.ended
    resent = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3, "output_tokens": 21},
    }
    tap.feed(b"event: message_delta\ndata: " + orjson.dumps(resent) + b"\n\n")
    assert tap.usage == ir.Usage(input_tokens=12, output_tokens=21, cache_read_tokens=5, cache_write_tokens=3)
    tap.feed(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert seen(tap) == (tap.usage, True, False, "max_tokens", "m")


def test_cut_short(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " [[fake:break 5]] hi")
    frames = sse_frames(raw)
    assert len(frames) == 5 and b"message_stop" not in raw
    # What message_start said: the input and cache counts, and its small first output count.
    usage = ir.Usage(input_tokens=120, output_tokens=1, cache_read_tokens=40, cache_write_tokens=7)
    assert same_everywhere(AnthropicTap, frames) == (usage, False, False, None, MODEL)


def test_upstream_error_event(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " [[fake:error 529 after=4]] hi")
    frames = sse_frames(raw)
    assert frames[-1].startswith(b"event: error\n")
    usage = ir.Usage(input_tokens=120, output_tokens=1, cache_read_tokens=40, cache_write_tokens=7)
    assert same_everywhere(AnthropicTap, frames) == (usage, False, True, None, MODEL)
    tap = AnthropicTap()
    tap.feed(b"".join(frames))
    assert tap.error is not None and (tap.error.kind, tap.error.status, tap.error.protocol) == (
        "overloaded",
        529,
        "anthropic",
    )


def test_text_that_looks_like_events_is_not_read(fake_upstream) -> None:
    """Quotes inside text are escaped: a delta quoting an event type or an error is just text."""
    text = 'the "message_stop" event and {"type": "error"} and data: [DONE]'
    raw = answer(fake_upstream, f"[[fake:text {text}]]")
    assert b'\\"message_stop\\"' in raw
    tap = AnthropicTap()
    for frame in sse_frames(raw)[:-2]:  # all but message_delta and message_stop
        tap.feed(frame)
    assert not tap.ended and not tap.failed and tap.stop_reason is None


def test_only_the_message_frames_are_parsed(fake_upstream, monkeypatch) -> None:
    raw = answer(fake_upstream, "[[fake:words 200]]")
    parsed = []
    original = tap_module.load
    monkeypatch.setattr("modelgate.protocols.anthropic.tap.load", lambda data: parsed.append(data) or original(data))
    tap = AnthropicTap()
    for frame in sse_frames(raw):
        tap.feed(frame)
    assert tap.ended and tap.usage is not None and tap.usage.output_tokens == 200
    assert tap.model == MODEL
    # message_stop is recognised by its event line: nothing in it needs parsing; the last
    # message_delta repeats every count of message_start, whose model is read without parsing.
    assert [orjson.loads(d)["type"] for d in parsed] == ["message_delta"]
    # A server whose message_delta gives only the output count: message_start is read too.
    partial = [f.replace(b'"input_tokens":', b'"in":') if b"message_delta" in f else f for f in sse_frames(raw)]
    parsed.clear()
    tap = AnthropicTap()
    for frame in partial:
        tap.feed(frame)
    assert tap.usage is not None and tap.usage.output_tokens == 200 and tap.usage.input_tokens > 0
    assert [orjson.loads(d)["type"] for d in parsed] == ["message_delta", "message_start"]


def test_whole_answer(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " hi", stream=False)
    assert codec.decode_response(orjson.loads(raw)).usage == EXPECTED
    tap = AnthropicTap()
    tap.whole(raw)
    assert seen(tap) == (EXPECTED, True, False, "end_turn", MODEL)


def test_whole_error_and_broken_bodies() -> None:
    tap = AnthropicTap()
    tap.whole(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert seen(tap) == (None, False, True, None, None)
    tap = AnthropicTap()
    tap.whole(b'{"id":"msg_1","type":"message","usage":{"input_tok')  # cut in half
    assert seen(tap) == (None, False, False, None, None)


def test_a_stream_without_event_lines(fake_upstream) -> None:
    """A server that writes only ``data:`` lines (the type inside) is read from its data."""
    raw = answer(fake_upstream, USAGE + ' [[fake:tool Bash {"command": "ls"}]] hi')
    frames = [b"\n".join(line for line in f.split(b"\n") if not line.startswith(b"event:")) for f in sse_frames(raw)]
    assert not any(f.startswith(b"event:") for f in frames)
    assert same_everywhere(AnthropicTap, frames) == (EXPECTED, True, False, "tool_use", MODEL)


def test_pings_between_the_end_events_are_passed_over() -> None:
    start = {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}}
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}
    ping = b'event: ping\ndata: {"type": "ping"}\n\n'
    frames = [
        b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n",
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"event: message_stop"}}\n\n',
        ping,
        b"event: message_delta\ndata: " + orjson.dumps(delta) + b"\n\n",
        ping,
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    usage = ir.Usage(input_tokens=3, output_tokens=9)
    assert same_everywhere(AnthropicTap, frames) == (usage, True, False, "end_turn", "m")
    assert same_everywhere(AnthropicTap, [crlf(f) for f in frames]) == (usage, True, False, "end_turn", "m")


def test_whole_answer_read_from_its_end_or_whole() -> None:
    """Anthropic's key order lets the tap parse only the message's end; any other layout, or a
    ``stop_reason`` key inside a tool's input, is read whole, with the same findings."""
    usage = {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 2}
    expected = (ir.Usage(input_tokens=5, output_tokens=7, cache_read_tokens=2), True, False, "tool_use", "m-1")
    tool = {"type": "tool_use", "id": "t", "name": "x", "input": {"stop_reason": "no", "usage": {"input_tokens": 1}}}
    layouts = [
        {"id": "a", "type": "message", "model": "m-1", "content": [tool], "stop_reason": "tool_use", "usage": usage},
        {"usage": usage, "stop_reason": "tool_use", "model": "m-1", "content": [tool], "id": "a"},
        {"id": "a", "content": [tool], "model": "m-1", "stop_reason": "tool_use", "usage": usage},
        {"id": "a", "model": "m-1", "content": [tool], "usage": usage, "stop_reason": "tool_use"},
    ]
    for message in layouts:
        for body in (orjson.dumps(message), orjson.dumps(message, option=orjson.OPT_INDENT_2)):
            tap = AnthropicTap()
            tap.whole(body)
            assert seen(tap) == expected, body
