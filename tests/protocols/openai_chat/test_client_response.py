"""IR response → ``chat.completion``: OpenAI's documented example reproduced exactly, golden
fixtures in ``fixtures/client_responses`` (one per builder in ``RESPONSES``), and the result read
back through the official SDK's types."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai.types.chat import ChatCompletion

from modelgate import ir
from modelgate.protocols import openai_chat as codec

from .helpers import check, names

CREATED = 1741569952


def text() -> ir.Response:
    return ir.Response(
        "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "gpt-4.1-2025-04-14",
        [ir.TextBlock("Hello! How can I assist you today?")],
        "end_turn",
        ir.Usage(input_tokens=19, output_tokens=10),
    )


def test_documented_example_is_reproduced() -> None:
    """OpenAI's API reference example of a chat completion (its ``service_tier`` aside: we do not know it)."""
    assert codec.encode_response(text(), CREATED) == {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I assist you today?",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }


def parallel_tool_calls() -> ir.Response:
    return ir.Response(
        "msg_01",
        "claude-sonnet-4-6",
        [
            ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
            ir.ToolUseBlock("toolu_2", "get_weather", {"city": "Rome"}, signature="gemini-sig"),
        ],
        "tool_use",
        ir.Usage(input_tokens=100, output_tokens=40, cache_read_tokens=1000, cache_write_tokens=200),
    )


def thinking_text_and_tool() -> ir.Response:
    return ir.Response(
        "msg_02",
        "claude-sonnet-4-6",
        [
            ir.ThinkingBlock("I should look it up.", "sig-a", "anthropic"),
            ir.RedactedThinkingBlock("EqQBCkYIAxgC"),
            ir.TextBlock("Let me check. "),
            ir.TextBlock("One moment.", citations=[{"type": "char_location"}]),
            ir.ToolUseBlock("toolu_3", "lookup", {"_raw": "{q: broken"}),
        ],
        "tool_use",
        ir.Usage(input_tokens=10, output_tokens=90, reasoning_tokens=50),
    )


def unsigned_reasoning() -> ir.Response:
    return ir.Response(
        "resp_9", "m", [ir.ThinkingBlock("Hmm.", origin="openai_responses"), ir.TextBlock("Hi")], "end_turn", ir.Usage()
    )


def length() -> ir.Response:
    return ir.Response("msg_04", "m", [ir.TextBlock("Once upon a")], "max_tokens", ir.Usage(5, 3))


def refusal() -> ir.Response:
    return ir.Response("msg_05", "m", [ir.TextBlock("I can't help with that.")], "refusal", ir.Usage(5, 6))


def empty() -> ir.Response:
    return ir.Response("chatcmpl-x", "m", [], "stop_sequence", ir.Usage(5, 0), stop_sequence="END")


RESPONSES: dict[str, Callable[[], ir.Response]] = {
    "text": text,
    "parallel_tool_calls": parallel_tool_calls,
    "thinking_text_and_tool": thinking_text_and_tool,
    "unsigned_reasoning": unsigned_reasoning,
    "length": length,
    "refusal": refusal,
    "empty": empty,
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_encode_response_golden(name: str) -> None:
    body = codec.encode_response(RESPONSES[name](), CREATED)
    check("client_responses", name, body)
    ChatCompletion.model_validate(body)  # the official SDK's own type accepts it


def test_every_fixture_has_a_builder() -> None:
    assert names("client_responses") == sorted(RESPONSES)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, finish: str) -> None:
    assert (
        codec.encode_response(ir.Response("i", "m", [], stop_reason, ir.Usage()), 0)["choices"][0]["finish_reason"]
        == finish
    )  # type: ignore[arg-type]


def test_usage_counts_cache_reads_and_writes_in_the_prompt() -> None:
    usage = codec.encode_usage(
        ir.Usage(input_tokens=100, output_tokens=40, cache_read_tokens=1000, cache_write_tokens=200)
    )
    assert usage["prompt_tokens"] == 1300 and usage["total_tokens"] == 1340
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1000, "audio_tokens": 0, "cache_write_tokens": 200}
    assert codec.decode_usage(usage) == ir.Usage(100, 40, 1000, 200)  # and back, losslessly


def test_an_upstream_without_an_id_gets_a_fresh_one() -> None:
    first = codec.encode_response(ir.Response("", "m", [], "end_turn", ir.Usage()), 0)["id"]
    second = codec.encode_response(ir.Response("", "m", [], "end_turn", ir.Usage()), 0)["id"]
    assert first.startswith("chatcmpl-") and len(first) == len("chatcmpl-") + 24 and first != second
