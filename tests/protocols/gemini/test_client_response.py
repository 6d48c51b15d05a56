"""IR response → the ``GenerateContentResponse`` a Gemini client gets: golden fixtures
(``fixtures/client_responses``), usage and finish-reason mapping, reasoning packing."""

from __future__ import annotations

import pytest

from modelgate import ir
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini import signatures
from modelgate.protocols.gemini.client_response import encode_usage, finish_reason

from .helpers import check

RESPONSES: dict[str, tuple[ir.Response, bool]] = {
    "text": (
        ir.Response("msg_01", "claude-sonnet-4-6", [ir.TextBlock("Hello!")], "end_turn", ir.Usage(12, 3)),
        False,
    ),
    "thinking_and_tool_calls_with_thoughts": (
        ir.Response(
            "msg_02",
            "claude-sonnet-4-6",
            [
                ir.ThinkingBlock("Need the weather.", "sig-a", "anthropic"),
                ir.TextBlock("Let me check."),
                ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
                ir.ToolUseBlock("toolu_2", "get_weather", {"city": "Rome"}),
            ],
            "tool_use",
            ir.Usage(100, 40, cache_read_tokens=1000, cache_write_tokens=10),
        ),
        True,
    ),
    "thinking_hidden_without_include_thoughts": (
        ir.Response(
            "resp_3",
            "gpt-5",
            [
                ir.ThinkingBlock("summary", "enc-xyz", "openai_responses", "rs_1"),
                ir.ToolUseBlock("call_1", "f", {}),
            ],
            "tool_use",
            ir.Usage(5, 30, reasoning_tokens=20),
        ),
        False,
    ),
    "max_tokens_unsigned_reasoning": (
        ir.Response(
            "chatcmpl-4",
            "qwen",
            [ir.ThinkingBlock("local model reasoning", None, "openai"), ir.TextBlock("partial")],
            "max_tokens",
            ir.Usage(5, 8),
        ),
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_client_response_golden(name: str) -> None:
    resp, include = RESPONSES[name]
    check("client_responses", name, codec.encode_response(resp, include_thoughts=include))


def test_packed_reasoning_rides_on_the_first_following_call() -> None:
    resp, _ = RESPONSES["thinking_and_tool_calls_with_thoughts"]
    parts = codec.encode_response(resp, include_thoughts=False)["candidates"][0]["content"]["parts"]
    assert [list(p) for p in parts] == [["text"], ["functionCall", "thoughtSignature"], ["functionCall"]]
    assert signatures.unpack(parts[1]["thoughtSignature"]) == [resp.content[0]]


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("end_turn", "STOP"),
        ("tool_use", "STOP"),
        ("stop_sequence", "STOP"),
        ("pause_turn", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("refusal", "SAFETY"),
        (None, "STOP"),
    ],
)
def test_finish_reasons(stop: str | None, reason: str) -> None:
    assert finish_reason(stop) == reason


def test_usage_leaves_out_zero_counts() -> None:
    assert encode_usage(ir.Usage(7, 0)) == {"promptTokenCount": 7, "totalTokenCount": 7}
    assert encode_usage(ir.Usage(7, 10, reasoning_tokens=4, cache_read_tokens=3)) == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 6,
        "totalTokenCount": 20,
        "cachedContentTokenCount": 3,
        "thoughtsTokenCount": 4,
    }
