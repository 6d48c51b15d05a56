"""IR → a Gemini upstream's request: golden fixtures (``fixtures/upstream_requests``) for IR built the
way the Anthropic codec builds it from Claude Code, and the policies of ``protocols.gemini.upstream_request``."""

from __future__ import annotations

import copy

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import WireProtocol
from modelgate.protocols import gemini as codec
from modelgate.protocols.cleanup import clean_request

from .helpers import check

SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


def user(*blocks: ir.Block) -> ir.Message:
    return ir.Message("user", list(blocks))


def assistant(*blocks: ir.Block) -> ir.Message:
    return ir.Message("assistant", list(blocks))


REQUESTS: dict[str, ir.Request] = {
    "claude_code_tool_loop": ir.Request(
        model="gemini-2.5-flash",
        system=[
            ir.TextBlock("x-anthropic-billing-header: cc_version=2.0; cch=abc;\nYou are Claude Code."),
            ir.TextBlock("Be careful.", cache_control={"type": "ephemeral"}),
        ],
        messages=[
            user(ir.TextBlock("run ls")),
            assistant(
                ir.ThinkingBlock("I will run it", "sig-anthropic", "anthropic"),
                ir.TextBlock("Running."),
                ir.ToolUseBlock("toolu_01", "Bash", {"command": "ls"}),
                ir.ToolUseBlock("toolu_02", "Bash", {"command": "pwd"}),
            ),
            user(
                ir.ToolResultBlock("toolu_01", [ir.TextBlock("a.txt")]),
                ir.ToolResultBlock("toolu_02", [ir.TextBlock("no such dir")], is_error=True),
                ir.TextBlock("and now?", cache_control={"type": "ephemeral"}),
            ),
        ],
        max_tokens=32000,
        temperature=1.0,
        tools=[ir.Tool("Bash", "Run a command", SCHEMA, extras={"strict": True})],
        tool_choice=ir.ToolChoice("auto", disable_parallel_tool_use=True),
        thinking=ir.Thinking("enabled", 4096),
        metadata={"user_id": "u"},
        extras={"context_management": {"edits": []}},
    ),
    "gemini_history_round_trip": ir.Request(
        model="gemini-3-pro-preview",
        messages=[
            user(ir.TextBlock("weather?")),
            assistant(
                ir.ThinkingBlock("thought", "sig-thought", "gemini"),
                ir.TextBlock("Checking", signature="sig-text"),
                ir.ToolUseBlock("gmcall_resp1_0", "get_weather", {"city": "Paris"}, signature="sig-call"),
                ir.ToolUseBlock("gmcall_resp1_1", "get_weather", {"city": "Rome"}),
            ),
            user(
                ir.ToolResultBlock("gmcall_resp1_0", [ir.TextBlock('{"output": "sun"}')]),
                ir.ToolResultBlock("gmcall_resp1_1", [ir.TextBlock("rain"), ir.ImageBlock("image/png", "iVBO")]),
            ),
        ],
        max_tokens=1000,
        effort="medium",
        tools=[ir.Tool("get_weather", None, {"type": "object"})],
        tool_choice=ir.ToolChoice("tool", "get_weather"),
    ),
    "media_and_structured_output": ir.Request(
        model="gemini-2.5-flash",
        messages=[
            user(
                ir.ImageBlock("image/jpeg", "AAAA"),
                ir.ImageBlock(url="https://example.com/cat.webp"),
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": "JVBE"}),
                ir.DocumentBlock({"type": "url", "url": "https://example.com/a.pdf"}),
                ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": "notes"}, title="Notes"),
                ir.DocumentBlock(
                    {"type": "content", "content": [{"type": "text", "text": "chunk"}]}, context="From the wiki"
                ),
                ir.TextBlock(""),
                ir.TextBlock("Summarize as JSON."),
            )
        ],
        max_tokens=500,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        output_format={"type": "json_schema", "schema": {"type": "object"}},
        thinking=ir.Thinking("disabled"),
    ),
    "adaptive_thinking_json_object": ir.Request(
        model="gemini-2.5-pro",
        messages=[user(ir.TextBlock("hi"))],
        max_tokens=100,
        thinking=ir.Thinking("adaptive"),
        output_format={"type": "json_object"},
        tool_choice=ir.ToolChoice("any"),
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_upstream_request_golden(name: str) -> None:
    req = copy.deepcopy(REQUESTS[name])
    clean_request(req, WireProtocol.GEMINI)  # as the pipeline does before the codec
    check("upstream_requests", name, codec.encode_request(req))


def test_first_call_of_each_turn_gets_a_signature() -> None:
    body = codec.encode_request(REQUESTS["claude_code_tool_loop"])
    calls = [p for p in body["contents"][1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in calls[1]


@pytest.mark.parametrize(
    ("model", "effort", "thinking", "expected"),
    [
        ("gemini-3-pro-preview", "low", None, {"includeThoughts": True, "thinkingLevel": "low"}),
        ("gemini-3-flash", "max", ir.Thinking("adaptive"), {"includeThoughts": True, "thinkingLevel": "high"}),
        ("gemini-2.5-flash", "high", None, {"includeThoughts": True, "thinkingBudget": 24576}),
        ("gemini-2.5-flash", None, ir.Thinking("enabled", 2000), {"includeThoughts": True, "thinkingBudget": 2000}),
        ("gemini-2.5-flash", None, ir.Thinking("adaptive"), {"includeThoughts": True, "thinkingBudget": -1}),
        ("gemini-2.5-flash", "high", ir.Thinking("disabled"), None),
    ],
)
def test_thinking_config(model: str, effort: str | None, thinking: ir.Thinking | None, expected: dict | None) -> None:
    req = ir.Request(model=model, messages=[user(ir.TextBlock("x"))], max_tokens=10, effort=effort, thinking=thinking)
    assert codec.encode_request(req)["generationConfig"].get("thinkingConfig") == expected


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (
            ir.Request("m", [user(ir.ToolResultBlock("toolu_x", [ir.TextBlock("r")]))], 5),
            "no earlier tool_use block has id 'toolu_x'",
        ),
        (
            ir.Request(
                "m", [user(ir.TextBlock("x"))], 5, tools=[ir.Tool("web_search", extras={"type": "web_search_20250305"})]
            ),
            "Anthropic server tool",
        ),
        (ir.Request("m", [user(ir.DocumentBlock({"type": "file", "file_id": "f"}))], 5), "a file document source"),
        (ir.Request("m", [user(ir.TextBlock("x"))], 5, extras={"mcp_servers": [{"url": "u"}]}), "mcp_servers"),
    ],
)
def test_refused(req: ir.Request, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.encode_request(req)
    assert message in info.value.message
