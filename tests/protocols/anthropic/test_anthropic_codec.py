"""Anthropic codec: golden fixtures from the documented examples, request and stream round trips."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from modelgate import ir
from modelgate.errors import ErrorKind, GatewayError, InvalidRequest, UpstreamHTTPError
from modelgate.protocols import anthropic as codec
from modelgate.protocols.sse import SSEParser

FIXTURES = Path(__file__).parent / "fixtures"


def frames(name: str):
    parser = SSEParser()
    return parser.feed((FIXTURES / name).read_bytes()) + parser.flush()


@pytest.mark.parametrize("name", ["stream_tool_use.sse", "stream_thinking.sse"])
def test_documented_streams_round_trip_event_by_event(name: str) -> None:
    decoder = codec.StreamDecoder()
    for frame in frames(name):
        events = decoder.decode(frame)
        assert len(events) == 1
        out = SSEParser().feed(codec.encode_event(events[0]))
        assert len(out) == 1
        assert out[0].event == frame.event
        original, again = orjson.loads(frame.data), orjson.loads(out[0].data)
        if frame.event == "message_start":
            for key in ("id", "model", "role", "content", "stop_reason"):
                assert again["message"][key] == original["message"][key]
        elif frame.event == "message_delta":
            assert again["delta"] == original["delta"]
        else:
            assert again == original
    assert decoder.finish() == []


def test_stream_decoder_reports_a_stream_cut_before_message_stop() -> None:
    decoder = codec.StreamDecoder()
    for frame in frames("stream_tool_use.sse")[:5]:
        decoder.decode(frame)
    [event] = decoder.finish()
    assert isinstance(event, ir.StreamError)
    assert event.error.status == 502


def test_stream_usage_is_cumulative() -> None:
    decoder = codec.StreamDecoder()
    events = [e for f in frames("stream_tool_use.sse") for e in decoder.decode(f)]
    [delta] = [e for e in events if isinstance(e, ir.MessageDelta)]
    assert (delta.usage.input_tokens, delta.usage.output_tokens, delta.stop_reason) == (472, 89, "tool_use")


def test_upstream_error_event_becomes_stream_error() -> None:
    parser = SSEParser()
    [frame] = parser.feed(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    [event] = codec.StreamDecoder().decode(frame)
    assert isinstance(event.error, UpstreamHTTPError)
    assert (event.error.status, event.error.kind, event.error.message) == (529, "overloaded", "Overloaded")
    assert codec.error_body(event.error) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig=="},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "And this?", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Get the weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "metadata": {"user_id": "u1"},
    "context_management": {"edits": []},
}


def test_request_round_trip_keeps_everything() -> None:
    req = codec.decode_request(REQUEST)
    assert req.extras == {"context_management": {"edits": []}}
    assert req.system[0].cache_control == {"type": "ephemeral"}
    assert codec.encode_request(req) == REQUEST


def test_system_messages_inside_messages_fold_into_system() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": "base",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "be brief"},
            {"role": "assistant", "content": "ok"},
        ],
    }
    req = codec.decode_request(body)
    assert [b.text for b in req.system] == ["base", "be brief"]
    assert [m.role for m in req.messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Request body must be a JSON object"),
        ({"max_tokens": 1, "messages": []}, "model: Field required"),
        ({"model": "m", "messages": []}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": "10", "messages": []}, "max_tokens: Input should be a valid integer"),
        ({"model": "m", "max_tokens": 0, "messages": []}, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": "m", "max_tokens": 1}, "messages: Field required"),
        ({"model": "m", "max_tokens": 1, "messages": {}}, "messages: Input should be a valid list"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ],
)
def test_invalid_requests_name_the_field(body, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.decode_request(body)
    assert message in info.value.message


def test_response_round_trip() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 4,
            "output_tokens": 5,
        },
    }
    assert codec.encode_response(codec.decode_response(body)) == body


def test_gateway_errors_render_in_the_anthropic_envelope() -> None:
    err = GatewayError("slow down", status=429, kind=ErrorKind.RATE_LIMIT, retry_after=3)
    assert codec.error_body(err, "req_1") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
        "request_id": "req_1",
    }


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            "prompt is too long: 5000 tokens > 4096 maximum",
        ),
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130415 tokens.",
            "prompt is too long: 130415 tokens > 128000 maximum",
        ),
        ("the request exceeds the available context size, try increasing it", "prompt is too long: the request"),
        ("temperature must be between 0 and 2", "temperature must be between 0 and 2"),
    ],
)
def test_foreign_context_overflow_is_worded_like_anthropic(upstream: str, expected: str) -> None:
    err = UpstreamHTTPError(upstream, status=400, kind=ErrorKind.INVALID_REQUEST, protocol="openai_chat")
    assert codec.error_body(err)["error"]["message"].startswith(expected)


def test_output_config_moves_into_ir_slots_and_back() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {}}, "future": 1},
    }
    req = codec.decode_request(body)
    assert req.effort == "high" and req.output_format == {"type": "json_schema", "schema": {}}
    assert req.extras == {"output_config": {"future": 1}}
    assert codec.encode_request(req) == body


def test_foreign_reasoning_is_not_sent_to_anthropic() -> None:
    req = codec.decode_request({"model": "m", "max_tokens": 5, "messages": []})
    req.messages = [
        ir.Message("assistant", [ir.ThinkingBlock("from gpt", origin="openai"), ir.TextBlock("hi")]),
        ir.Message("assistant", [ir.ThinkingBlock("mine", "sig", origin="anthropic")]),
    ]
    content = [m["content"] for m in codec.encode_request(req)["messages"]]
    assert content == [[{"type": "text", "text": "hi"}], [{"type": "thinking", "thinking": "mine", "signature": "sig"}]]


def fitted(**kw) -> dict:
    messages = kw.pop("messages", [ir.Message("user", [ir.TextBlock("hi")])])
    return codec.encode_request(ir.Request(model="m", messages=messages, **kw))


def test_thinking_budget_fits_below_max_tokens_or_goes() -> None:
    assert fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 16000))["thinking"]["budget_tokens"] == 7999
    assert "thinking" not in fitted(max_tokens=1000, thinking=ir.Thinking("enabled", 16000))


def test_thinking_goes_with_forced_tools_or_unthought_tool_turns() -> None:
    forced = fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 2000), tool_choice=ir.ToolChoice("any"))
    assert "thinking" not in forced
    turn = [
        ir.Message("user", [ir.TextBlock("hi")]),
        ir.Message("assistant", [ir.ToolUseBlock("t1", "f", {})]),
        ir.Message("user", [ir.ToolResultBlock("t1", [ir.TextBlock("ok")])]),
    ]
    assert "thinking" not in fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 2000), messages=turn)
    turn[1].content.insert(0, ir.ThinkingBlock("hm", "sig", "anthropic"))
    assert (
        fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 2000), messages=turn)["thinking"]["type"] == "enabled"
    )


def test_sampling_that_anthropic_refuses_is_dropped() -> None:
    body = fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 2000), temperature=0.2, top_p=0.5, top_k=5)
    assert {"temperature", "top_p", "top_k"}.isdisjoint(body)
    assert fitted(max_tokens=10, temperature=1.7)["temperature"] == 1.0
    assert fitted(max_tokens=10, temperature=0.3, top_k=5)["top_k"] == 5


def test_effort_only_with_adaptive_thinking_and_formats_reduced() -> None:
    body = fitted(max_tokens=8000, thinking=ir.Thinking("enabled", 2000), effort="high")
    assert "output_config" not in body
    body = fitted(max_tokens=10, output_format={"type": "json_schema", "schema": {"type": "object"}, "name": "x"})
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    body = fitted(max_tokens=10, output_format={"type": "json_object"})
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("model", "adaptive"),
    [
        ("claude-sonnet-4-6", True),
        ("claude-opus-4-6-20260101", True),
        ("claude-opus-5-5", True),
        ("claude-haiku-4-5", False),
        ("claude-sonnet-4-5-20250929", False),
        ("claude-sonnet-4-20250514", False),
        ("claude-opus-4-1", False),
        ("claude-3-7-sonnet-latest", False),
    ],
)
def test_adaptive_thinking_only_where_the_model_has_it(model: str, adaptive: bool) -> None:
    req = ir.Request(model=model, messages=[], max_tokens=20000, thinking=ir.Thinking("adaptive"), effort="high")
    body = codec.encode_request(req)
    if adaptive:
        assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "high"}
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 16384} and "output_config" not in body
