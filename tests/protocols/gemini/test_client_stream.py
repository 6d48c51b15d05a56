"""IR stream events → what a Gemini client reads from ``streamGenerateContent``: golden bytes in both
framings (``fixtures/client_streams``: ``sse`` for ``?alt=sse``, ``array`` without it), and the
properties every answer must have."""

from __future__ import annotations

import json

import pytest

from modelgate import ir
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini import signatures
from tests.protocols.gateway_errors import overloaded

from .helpers import check

START = ir.MessageStart("msg_1", "claude-sonnet-4-6", ir.Usage(10, 1))
END = [ir.MessageDelta("end_turn", ir.Usage(10, 5)), ir.MessageStop()]

STREAMS: dict[str, tuple[list[ir.StreamEvent], bool]] = {
    "text": (
        [
            START,
            ir.BlockStart(0, ir.TextBlock("")),
            ir.BlockDelta(0, "text", "Hel"),
            ir.BlockDelta(0, "text", "lo"),
            ir.BlockStop(0),
            *END,
        ],
        False,
    ),
    "thinking_text_and_tool_calls": (
        [
            START,
            ir.BlockStart(0, ir.ThinkingBlock("", origin="anthropic")),
            ir.BlockDelta(0, "thinking", "Need "),
            ir.BlockDelta(0, "thinking", "weather."),
            ir.BlockDelta(0, "signature", "sig-a"),
            ir.BlockStop(0),
            ir.BlockStart(1, ir.TextBlock("")),
            ir.BlockDelta(1, "text", "Checking."),
            ir.BlockStop(1),
            ir.BlockStart(2, ir.ToolUseBlock("toolu_1", "get_weather")),
            ir.BlockDelta(2, "input_json", ""),
            ir.BlockDelta(2, "input_json", '{"city": '),
            ir.BlockDelta(2, "input_json", '"Paris"}'),
            ir.BlockStop(2),
            ir.Ping(),
            ir.BlockStart(3, ir.ToolUseBlock("toolu_2", "get_time")),
            ir.BlockStop(3),
            ir.MessageDelta("tool_use", ir.Usage(10, 30, cache_read_tokens=4)),
            ir.MessageStop(),
        ],
        True,
    ),
    "thinking_hidden": (
        [
            START,
            ir.BlockStart(0, ir.ThinkingBlock("", origin="openai")),
            ir.BlockDelta(0, "thinking", "private"),
            ir.BlockStop(0),
            ir.BlockStart(1, ir.TextBlock("")),
            ir.BlockDelta(1, "text", "Done"),
            ir.BlockStop(1),
            ir.MessageDelta("max_tokens", ir.Usage(10, 9)),
            ir.MessageStop(),
        ],
        False,
    ),
    "no_usage_until_the_end": (
        [
            ir.MessageStart("chatcmpl-1", "qwen-local", ir.Usage()),
            ir.BlockStart(0, ir.TextBlock("")),
            ir.BlockDelta(0, "text", "Hi"),
            ir.BlockStop(0),
            ir.MessageDelta("end_turn", ir.Usage(7, 1)),
            ir.MessageStop(),
        ],
        False,
    ),
    "empty_answer": ([START, *END], False),
}


def encode(events: list[ir.StreamEvent], *, sse: bool, include: bool) -> str:
    encoder = codec.StreamEncoder(sse=sse, include_thoughts=include)
    out = b"".join(encoder.encode(e) for e in events) + encoder.end()
    return out.decode()


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_client_stream_golden(name: str) -> None:
    events, include = STREAMS[name]
    check(
        "client_streams",
        name,
        {"sse": encode(events, sse=True, include=include), "array": encode(events, sse=False, include=include)},
    )


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_both_framings_carry_the_same_chunks(name: str) -> None:
    events, include = STREAMS[name]
    sse = encode(events, sse=True, include=include)
    assert sse.endswith("\r\n\r\n") and "\n\n" not in sse.replace("\r\n\r\n", "")
    frames = [json.loads(f.removeprefix("data: ")) for f in sse[:-4].split("\r\n\r\n")]
    array = encode(events, sse=False, include=include)
    assert array.startswith("[{") and array.endswith("\n]")
    assert json.loads(array) == frames
    last = frames[-1]
    assert last["candidates"][0]["finishReason"] and "usageMetadata" in last
    assert all("finishReason" not in f["candidates"][0] for f in frames[:-1])
    assert all(f["responseId"] == frames[0]["responseId"] and f["modelVersion"] for f in frames)


def test_each_chunk_goes_out_when_the_next_event_comes() -> None:
    encoder = codec.StreamEncoder(sse=True, include_thoughts=False)
    assert encoder.encode(START) == b""
    assert encoder.encode(ir.BlockStart(0, ir.TextBlock(""))) == b""
    assert encoder.encode(ir.BlockDelta(0, "text", "a")) == b""  # held: the finish reason may join it
    assert b'"text":"a"' in encoder.encode(ir.BlockDelta(0, "text", "b"))
    assert b'"text":"b"' in encoder.encode(ir.Ping())  # a quiet upstream releases it
    assert encoder.encode(ir.Ping()) == b""


def test_packed_reasoning_on_the_streamed_call() -> None:
    events, _ = STREAMS["thinking_text_and_tool_calls"]
    frames = [
        json.loads(f.removeprefix("data: ")) for f in encode(events, sse=True, include=False)[:-4].split("\r\n\r\n")
    ]
    calls = [p for f in frames for p in f["candidates"][0]["content"]["parts"] if "functionCall" in p]
    assert calls[0]["functionCall"] == {"id": "toolu_1", "name": "get_weather", "args": {"city": "Paris"}}
    assert signatures.unpack(calls[0]["thoughtSignature"]) == [ir.ThinkingBlock("Need weather.", "sig-a", "anthropic")]
    assert calls[1] == {"functionCall": {"id": "toolu_2", "name": "get_time", "args": {}}}


@pytest.mark.parametrize("sse", [True, False])
def test_error_after_the_start(sse: bool) -> None:
    encoder = codec.StreamEncoder(sse=sse, include_thoughts=False)
    out = b"".join(
        encoder.encode(e) for e in [START, ir.BlockStart(0, ir.TextBlock("")), ir.BlockDelta(0, "text", "Hi")]
    )
    out += encoder.error(overloaded("Overloaded"))
    assert encoder.end() == b"" and encoder.encode(ir.MessageStop()) == b""
    error = {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}
    if sse:
        frames = out.decode()[:-4].split("\r\n\r\n")
        assert json.loads(frames[-1].removeprefix("data: ")) == error and len(frames) == 2
    else:
        chunks = json.loads(out)
        assert chunks[-1] == error and len(chunks) == 2


def test_error_before_anything_in_array_framing() -> None:
    encoder = codec.StreamEncoder(sse=False, include_thoughts=False)
    assert json.loads(encoder.error(overloaded("busy"))) == [
        {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
    ]
    assert codec.StreamEncoder(sse=False, include_thoughts=False).end() == b"[]"
