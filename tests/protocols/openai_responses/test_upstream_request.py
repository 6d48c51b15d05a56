"""IR → a Responses API request, for an upstream only the Responses API serves: golden fixtures
in ``fixtures/upstream_requests``, and what the Responses API cannot take is refused."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.openai_responses import encode_request

from .helpers import check

CLAUDE_CODE_TURN = ir.Request(
    model="claude",
    system=[
        ir.TextBlock("x-anthropic-billing-header: cc_version=1; cch=abc;\nYou are Claude Code."),
        ir.TextBlock("Be brief.", cache_control={"type": "ephemeral"}),
    ],
    messages=[
        ir.Message(
            "user",
            [
                ir.TextBlock("look"),
                ir.ImageBlock("image/png", "iVBORw0KGgo="),
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}, "a.pdf"),
            ],
        ),
        ir.Message(
            "assistant",
            [
                ir.ThinkingBlock("OpenAI reasoning", "gAAAAB-enc", "openai", "rs_1"),
                ir.ThinkingBlock("Claude thinking", "sig", "anthropic"),
                ir.TextBlock("Running it."),
                ir.ToolUseBlock("toolu_1", "Bash", {"command": "ls"}),
                ir.ToolUseBlock("toolu_2", "Read", {"_raw": "{bad"}),
            ],
        ),
        ir.Message(
            "user",
            [
                ir.ToolResultBlock("toolu_1", [ir.TextBlock("a.txt")]),
                ir.ToolResultBlock("toolu_2", [ir.TextBlock("no such file")], is_error=True),
                ir.ToolResultBlock("toolu_3", [ir.TextBlock("shot"), ir.ImageBlock(url="https://x/y.png")]),
                ir.TextBlock("continue"),
            ],
        ),
    ],
    max_tokens=32000,
    temperature=1.0,
    top_k=5,
    tools=[ir.Tool("Bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}})],
    tool_choice=ir.ToolChoice("any", disable_parallel_tool_use=True),
    thinking=ir.Thinking("enabled", 31999),
    output_format={"type": "json_schema", "schema": {"type": "object"}},
    metadata={"user_id": '{"device_id":"' + "d" * 64 + '","session_id":"s"}'},
    stream=True,
)
REQUESTS: dict[str, tuple[ir.Request, dict[str, Any]]] = {
    "claude_code_turn": (CLAUDE_CODE_TURN, {}),
    "adaptive_thinking_no_reasoning_model": (
        ir.Request("m", [ir.Message("user", [ir.TextBlock("hi")])], 8, thinking=ir.Thinking("adaptive")),
        {"reasoning": False},
    ),
    "adaptive_thinking_with_effort": (
        ir.Request(
            "m", [ir.Message("user", [ir.TextBlock("hi")])], 100, thinking=ir.Thinking("adaptive"), effort="max"
        ),
        {},
    ),
    "disabled_thinking_and_tool_choice": (
        ir.Request(
            "m",
            [ir.Message("user", [ir.TextBlock("hi")])],
            100,
            thinking=ir.Thinking("disabled"),
            effort="low",
            tools=[ir.Tool("f")],
            tool_choice=ir.ToolChoice("tool", "f"),
            output_format={"type": "json_object"},
        ),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_upstream_request_golden(name: str) -> None:
    req, options = REQUESTS[name]
    check("upstream_requests", name, encode_request(req, "gpt-5-codex", **options))


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"stop_sequences": ["\n"]}, "stop_sequences"),
        ({"tools": [ir.Tool("web_search", extras={"type": "web_search_20250305"})]}, "tools.0"),
        ({"extras": {"mcp_servers": [{"url": "x"}]}}, "mcp_servers"),
    ],
)
def test_upstream_request_refusals(change: dict[str, Any], param: str) -> None:
    req = ir.Request("m", [ir.Message("user", [ir.TextBlock("hi")])], 10)
    for name, value in change.items():
        setattr(req, name, value)
    with pytest.raises(InvalidRequest) as info:
        encode_request(req, "gpt-5-codex")
    assert info.value.param == param
