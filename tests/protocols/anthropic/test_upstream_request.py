"""IR → a Messages request: round trips of client requests, and the fitting of translated
requests to what the Messages API accepts (thinking, sampling, effort, formats)."""

from __future__ import annotations

import pytest

from modelgate import ir
from modelgate.protocols import anthropic as codec

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


# --------------------------------------------------------------------------- a client's body fitted to another model

CLAUDE_CODE = {
    "model": "claude-sonnet-4-6",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}],
    "max_tokens": 64000,
    "thinking": {"type": "adaptive"},
    "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "metadata": {"user_id": '{"session_id":"s1"}'},
    "stream": True,
}


def test_adaptive_thinking_becomes_a_budget_for_an_older_model() -> None:
    fitted = codec.fit_body(CLAUDE_CODE, "claude-haiku-4-5", 64000)
    assert list(fitted) == list(CLAUDE_CODE)  # nothing added, nothing reordered
    assert fitted["model"] == "claude-haiku-4-5"
    assert fitted["thinking"] == {"type": "enabled", "budget_tokens": 16384}  # the budget for "high"
    assert fitted["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    for kept in ("messages", "context_management", "metadata", "stream", "max_tokens"):
        assert fitted[kept] == CLAUDE_CODE[kept]
    assert CLAUDE_CODE["thinking"] == {"type": "adaptive"}  # the client's body is not changed


def test_max_tokens_is_capped_and_the_budget_kept_under_it() -> None:
    fitted = codec.fit_body(
        {**CLAUDE_CODE, "thinking": {"type": "enabled", "budget_tokens": 40000}}, "claude-opus-4-1", 32000
    )
    assert (fitted["max_tokens"], fitted["thinking"]) == (32000, {"type": "enabled", "budget_tokens": 31999})


def test_thinking_goes_when_no_budget_fits() -> None:
    body = {**CLAUDE_CODE, "max_tokens": 1, "output_config": {"effort": "low"}}
    fitted = codec.fit_body(body, "claude-haiku-4-5")
    assert "thinking" not in fitted and "output_config" not in fitted
    assert fitted["max_tokens"] == 1  # the /model probe still reaches the model


def test_a_model_with_adaptive_thinking_keeps_the_body_as_it_was() -> None:
    fitted = codec.fit_body(CLAUDE_CODE, "claude-opus-4-6")
    assert fitted == {**CLAUDE_CODE, "model": "claude-opus-4-6"}
