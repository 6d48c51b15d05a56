"""IR stream events → ``chat.completion.chunk`` SSE frames: golden fixtures in
``fixtures/client_streams`` (one per builder in ``STREAMS``; each holds the exact frames), the
frame invariants of OpenAI's stream, and the frames accumulated by the official SDK's own
``ChatCompletionStreamState`` into the completion a non-streamed call would give."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from modelgate import ir
from modelgate.errors import ErrorKind, UpstreamHTTPError
from modelgate.protocols import openai_chat as codec
from tests.protocols.gateway_errors import overloaded

from .helpers import check, names

CREATED = 1694268190
Events = list[ir.StreamEvent]


def text_stream() -> Events:
    """The shape of OpenAI's documented streaming example, from Anthropic-like events."""
    return [
        ir.MessageStart("chatcmpl-123", "upstream-model", ir.Usage(input_tokens=9)),
        ir.BlockStart(0, ir.TextBlock("")),
        ir.Ping(),
        ir.BlockDelta(0, "text", "Hello"),
        ir.BlockDelta(0, "text", ""),
        ir.BlockDelta(0, "text", "!"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn", ir.Usage(input_tokens=9, output_tokens=2)),
        ir.MessageStop(),
    ]


def parallel_tools() -> Events:
    return [
        ir.MessageStart("msg_1", "m", ir.Usage(input_tokens=50, cache_read_tokens=100)),
        ir.BlockStart(0, ir.ToolUseBlock("toolu_a", "get_weather")),
        ir.BlockDelta(0, "input_json", ""),
        ir.BlockDelta(0, "input_json", '{"city": '),
        ir.BlockDelta(0, "input_json", '"Paris"}'),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.ToolUseBlock("toolu_b", "get_weather", signature="g-sig")),
        ir.BlockDelta(1, "input_json", '{"city": "Rome"}'),
        ir.BlockStop(1),
        ir.MessageDelta("tool_use", ir.Usage(input_tokens=50, output_tokens=30, cache_read_tokens=100)),
        ir.MessageStop(),
    ]


def thinking_text_then_tool() -> Events:
    return [
        ir.MessageStart("msg_2", "m", ir.Usage(input_tokens=5)),
        ir.BlockStart(0, ir.ThinkingBlock("", origin="anthropic")),
        ir.BlockDelta(0, "thinking", "Let me "),
        ir.BlockDelta(0, "thinking", "think."),
        ir.BlockDelta(0, "signature", "sig-part1"),
        ir.BlockDelta(0, "signature", "-part2"),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.RedactedThinkingBlock("EqQB")),
        ir.BlockStop(1),
        ir.BlockStart(2, ir.TextBlock("")),
        ir.BlockDelta(2, "text", "Checking."),
        ir.BlockDelta(2, "citation", {"type": "char_location"}),
        ir.BlockStop(2),
        ir.BlockStart(3, ir.ToolUseBlock("toolu_c", "lookup")),
        ir.BlockDelta(3, "input_json", '{"q": "x"}'),
        ir.BlockStop(3),
        ir.MessageDelta("tool_use", ir.Usage(input_tokens=5, output_tokens=20)),
        ir.MessageStop(),
    ]


def unsigned_thinking() -> Events:
    """Reasoning from an upstream whose signatures mean nothing to Anthropic: text only."""
    return [
        ir.MessageStart("resp_1", "m", ir.Usage()),
        ir.BlockStart(0, ir.ThinkingBlock("", origin="openai_responses")),
        ir.BlockDelta(0, "thinking", "Hmm."),
        ir.BlockDelta(0, "signature", "encrypted"),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.TextBlock("")),
        ir.BlockDelta(1, "text", "Hi"),
        ir.BlockStop(1),
        ir.MessageDelta("max_tokens", ir.Usage(output_tokens=2)),
        ir.MessageStop(),
    ]


def no_output() -> Events:
    return [
        ir.MessageStart("msg_3", "m", ir.Usage(input_tokens=3)),
        ir.MessageDelta("end_turn", ir.Usage(input_tokens=3)),
        ir.MessageStop(),
    ]


def error_midway() -> Events:
    err = UpstreamHTTPError(
        "Overloaded", status=529, kind=ErrorKind.OVERLOADED, protocol="anthropic", body={"type": "error"}
    )
    return [
        ir.MessageStart("msg_4", "m", ir.Usage()),
        ir.BlockStart(0, ir.TextBlock("")),
        ir.BlockDelta(0, "text", "Partial"),
        ir.StreamError(err),
        ir.BlockDelta(0, "text", "never sent"),
    ]


STREAMS: dict[str, tuple[Callable[[], Events], bool]] = {
    "text": (text_stream, False),
    "text_with_usage": (text_stream, True),
    "parallel_tools_with_usage": (parallel_tools, True),
    "thinking_text_then_tool": (thinking_text_then_tool, False),
    "unsigned_thinking": (unsigned_thinking, False),
    "no_output": (no_output, False),
    "error_midway": (error_midway, True),
}


def encode(events: Events, include_usage: bool, model: str = "gpt-4o-mini") -> bytes:
    encoder = codec.StreamEncoder(model, CREATED, include_usage=include_usage)
    return b"".join(encoder.encode(e) for e in events) + encoder.end()


def frames(raw: bytes) -> list[str]:
    assert raw.endswith(b"\n\n")
    return raw.decode()[:-2].split("\n\n")


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_golden(name: str) -> None:
    build, include_usage = STREAMS[name]
    check("client_streams", name, frames(encode(build(), include_usage)))


def test_every_fixture_has_a_builder() -> None:
    assert names("client_streams") == sorted(STREAMS)


def chunks(raw: bytes) -> list[dict]:
    return [orjson.loads(f[6:]) for f in frames(raw) if f.startswith("data: {")]


@pytest.mark.parametrize("name", sorted(set(STREAMS) - {"error_midway"}))
def test_stream_invariants(name: str) -> None:
    """One id, created and model everywhere; role first; [DONE] last; usage only as documented."""
    build, include_usage = STREAMS[name]
    raw = encode(build(), include_usage)
    assert frames(raw)[-1] == "data: [DONE]"
    got = chunks(raw)
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in got} == {
        (got[0]["id"], CREATED, "gpt-4o-mini", "chat.completion.chunk")
    }
    assert got[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in got[1:] if c["choices"])
    body = [c for c in got if c["choices"]]
    assert [c["choices"][0]["finish_reason"] is not None for c in body] == [False] * (len(body) - 1) + [True]
    if include_usage:
        assert all(c["usage"] is None for c in body)
        assert got[-1]["choices"] == [] and got[-1]["usage"]["total_tokens"] >= 0
    else:
        assert all("usage" not in c for c in got)


@pytest.mark.parametrize("name", sorted(set(STREAMS) - {"error_midway"}))
def test_sdk_accumulates_the_same_answer_as_a_non_streamed_call(name: str) -> None:
    build, include_usage = STREAMS[name]
    events = build()
    state = ChatCompletionStreamState()
    for chunk in chunks(encode(events, include_usage)):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    streamed = state.current_completion_snapshot.choices[0]  # get_final_completion() raises on length
    whole = codec.encode_response(collect(events), CREATED)["choices"][0]
    assert streamed.finish_reason == whole["finish_reason"]
    assert streamed.message.content == whole["message"]["content"]
    calls = [(c.id, c.function.name, c.function.arguments) for c in streamed.message.tool_calls or ()]
    expected = [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in whole["message"].get("tool_calls", ())
    ]
    assert [(i, n, orjson.loads(a)) for i, n, a in calls] == [(i, n, orjson.loads(a)) for i, n, a in expected]


def collect(events: Events) -> ir.Response:
    """The non-streamed answer the same events describe (what a provider's ``complete`` returns)."""
    blocks: dict[int, ir.Block] = {}
    args: dict[int, str] = {}
    start = next(e for e in events if isinstance(e, ir.MessageStart))
    end = next(e for e in events if isinstance(e, ir.MessageDelta))
    for e in events:
        if isinstance(e, ir.BlockStart):
            blocks[e.index] = e.block
        elif isinstance(e, ir.BlockDelta):
            b = blocks[e.index]
            if e.kind == "text" and isinstance(b, ir.TextBlock):
                b.text += e.value
            elif e.kind == "thinking" and isinstance(b, ir.ThinkingBlock):
                b.thinking += e.value
            elif e.kind == "input_json":
                args[e.index] = args.get(e.index, "") + e.value
    for i, raw in args.items():
        blocks[i].input = orjson.loads(raw)  # type: ignore[union-attr]
    return ir.Response(start.id, start.model, [blocks[i] for i in sorted(blocks)], end.stop_reason, end.usage)


def test_error_after_the_start_ends_the_stream_without_done() -> None:
    raw = encode(error_midway(), True)
    last = frames(raw)[-1]
    assert last == (
        'data: {"error":{"message":"Overloaded","type":"service_unavailable_error","param":null,'
        '"code":"server_is_overloaded"}}'
    )
    assert b"[DONE]" not in raw and b"never sent" not in raw


def test_an_event_stream_that_just_stops_is_an_error_not_a_finish() -> None:
    events = text_stream()[:4]
    raw = encode(events, False)
    assert b"[DONE]" not in raw
    assert frames(raw)[-1].startswith('data: {"error":{"message":"upstream stream ended unexpectedly"')


def test_error_before_any_event_needs_no_message_start() -> None:
    encoder = codec.StreamEncoder("m", 0)
    assert encoder.error(overloaded("busy")) == (
        b'data: {"error":{"message":"busy","type":"service_unavailable_error","param":null,'
        b'"code":"server_is_overloaded"}}\n\n'
    )
    assert encoder.end() == b""
