"""IR request → Chat Completions request for an OpenAI-compatible upstream: golden fixtures in
``fixtures/requests/<case>.json``, one per builder in ``REQUESTS``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import openai_chat as codec

from .helpers import check, names

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"


def user(*blocks: ir.Block) -> ir.Message:
    return ir.Message("user", list(blocks))


def assistant(*blocks: ir.Block) -> ir.Message:
    return ir.Message("assistant", list(blocks))


def text_only() -> ir.Request:
    return ir.Request(model="claude-x", messages=[user(ir.TextBlock("Hello"))], max_tokens=256)


def system_and_sampling() -> ir.Request:
    cc = {"type": "ephemeral"}
    return ir.Request(
        model="claude-x",
        system=[ir.TextBlock("You are terse.", cache_control=cc), ir.TextBlock("Answer in French.")],
        messages=[
            user(ir.TextBlock("<system-reminder>be brief</system-reminder>"), ir.TextBlock("Hi", cache_control=cc)),
            assistant(ir.TextBlock("Bonjour. "), ir.TextBlock("Ça va ?")),
            user(ir.TextBlock("Oui")),
        ],
        max_tokens=1024,
        stream=True,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["\n\nHuman:", "END"],
        metadata={"user_id": "user-42"},
    )


def images() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(
                ir.TextBlock("Compare these:"),
                ir.ImageBlock(media_type="image/png", data=PNG),
                ir.ImageBlock(url="https://example.com/cat.jpg"),
            )
        ],
        max_tokens=100,
    )


def documents() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}, title="report.pdf"),
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}),
                ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": "plain body"}, title="Notes"),
                ir.DocumentBlock(
                    {"type": "content", "content": [{"type": "text", "text": "chunk one"}]}, context="from the wiki"
                ),
                ir.TextBlock("Summarise them."),
            )
        ],
        max_tokens=100,
    )


def tool_loop() -> ir.Request:
    tools = [
        ir.Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}),
        ir.Tool("get_time", None, {"type": "object"}, cache_control={"type": "ephemeral"}, extras={"strict": True}),
    ]
    return ir.Request(
        model="claude-x",
        messages=[
            user(ir.TextBlock("Weather and time in Paris?")),
            assistant(
                ir.ThinkingBlock("Two tools, in parallel.", signature="sig=="),
                ir.TextBlock("Checking both."),
                ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
                ir.ToolUseBlock("toolu_2", "get_time", {}),
            ),
            user(
                ir.ToolResultBlock("toolu_1", [ir.TextBlock("18°C, sunny")]),
                ir.ToolResultBlock("toolu_2", [ir.TextBlock("clock unavailable")], is_error=True),
                ir.TextBlock("Also, be quick."),
            ),
            assistant(ir.ToolUseBlock("toolu_3", "get_time", {"_raw": "{tz: Paris"})),
            user(ir.ToolResultBlock("toolu_3", [], is_error=True)),
        ],
        max_tokens=2048,
        tools=tools,
        tool_choice=ir.ToolChoice("any", disable_parallel_tool_use=True),
    )


def tool_result_media() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(ir.TextBlock("Screenshot the page")),
            assistant(ir.ToolUseBlock("toolu_a", "screenshot", {}), ir.ToolUseBlock("toolu_b", "read_pdf", {})),
            user(
                ir.ToolResultBlock(
                    "toolu_a", [ir.TextBlock("Captured."), ir.ImageBlock(media_type="image/jpeg", data=PNG)]
                ),
                ir.ToolResultBlock(
                    "toolu_b",
                    [ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}, title="a.pdf")],
                ),
                ir.TextBlock("What do you see?"),
            ),
        ],
        max_tokens=512,
        tools=[ir.Tool("screenshot"), ir.Tool("read_pdf")],
    )


def claude_code() -> ir.Request:
    """The shape of a Claude Code turn: adaptive thinking, output_config, context_management."""
    return ir.Request(
        model="claude-sonnet-4-5",
        system=[
            ir.TextBlock("x-anthropic-billing-header: cc_version=2.1.100.7b4; cc_entrypoint=cli; cch=eb6c6;"),
            ir.TextBlock(
                "x-anthropic-billing-header: cch=00000;\nYou are Claude Code.", cache_control={"type": "ephemeral"}
            ),
            ir.TextBlock("Be careful."),
        ],
        messages=[user(ir.TextBlock("List files"))],
        max_tokens=32000,
        stream=True,
        tools=[ir.Tool("Bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}})],
        tool_choice=ir.ToolChoice("tool", "Bash"),
        thinking=ir.Thinking("adaptive"),
        metadata={
            "user_id": '{"device_id":"d1e2","account_uuid":"","session_id":"0f6c3c1e-5b7a-4f7e-9b1e-2f3d4c5b6a7e"}'
        },
        effort="high",
        output_format={"type": "json_schema", "schema": {"type": "object", "properties": {"title": {}}}},
        extras={
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "service_tier": "auto",
            "some_future_field": {"x": 1},
        },
    )


def thinking_budget() -> ir.Request:
    req = text_only()
    req.thinking = ir.Thinking("enabled", 16000)
    req.tools = [ir.Tool("noop")]
    req.tool_choice = ir.ToolChoice("none")
    return req


REQUESTS: dict[str, Callable[[], ir.Request]] = {
    "text_only": text_only,
    "system_and_sampling": system_and_sampling,
    "images": images,
    "documents": documents,
    "tool_loop": tool_loop,
    "tool_result_media": tool_result_media,
    "claude_code": claude_code,
    "thinking_budget": thinking_budget,
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_encode_request_golden(name: str) -> None:
    check("requests", name, codec.encode_request(REQUESTS[name](), "local-model"))


def test_every_request_fixture_has_a_builder() -> None:
    assert names("requests") == sorted(REQUESTS)


def test_unmapped_extras_names_only_unknown_fields() -> None:
    assert codec.unmapped_extras(claude_code()) == ["some_future_field"]


def test_tool_messages_follow_the_assistant_tool_calls() -> None:
    messages = codec.encode_request(tool_loop(), "m")["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "tool", "user", "assistant", "tool"]
    call_ids = [c["id"] for c in messages[1]["tool_calls"]]
    assert [m["tool_call_id"] for m in messages[2:4]] == call_ids


@pytest.mark.parametrize(
    ("thinking", "effort", "expected"),
    [
        (ir.Thinking("enabled", 1024), None, "low"),
        (ir.Thinking("enabled", 1025), None, "medium"),
        (ir.Thinking("enabled", 8192), None, "medium"),
        (ir.Thinking("enabled", 8193), None, "high"),
        (ir.Thinking("enabled", None), None, "medium"),
        (ir.Thinking("enabled", 2000), "high", "medium"),
        (ir.Thinking("adaptive"), None, "medium"),
        (ir.Thinking("adaptive"), "low", "low"),
        (ir.Thinking("disabled"), "high", None),
        (None, "max", "high"),
        (None, "low", "low"),
        (None, None, None),
    ],
)
def test_reasoning_effort(thinking: ir.Thinking | None, effort: str | None, expected: str | None) -> None:
    req = text_only()
    req.thinking = thinking
    req.effort = effort
    assert codec.encode_request(req, "m").get("reasoning_effort") == expected


def test_tool_choice_and_parallel_are_sent_only_with_tools() -> None:
    req = text_only()
    req.tool_choice = ir.ToolChoice("auto", disable_parallel_tool_use=True)
    body = codec.encode_request(req, "m")
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body


def test_short_user_id_is_kept_and_long_one_is_hashed() -> None:
    assert codec.encode_request(system_and_sampling(), "m")["user"] == "user-42"
    hashed = codec.encode_request(claude_code(), "m")["user"]
    assert len(hashed) == 64 and int(hashed, 16) >= 0


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: setattr(r, "tools", [ir.Tool("web_search", extras={"type": "web_search_20250305"})]), "web_search"),
        (lambda r: r.extras.update(mcp_servers=[{"type": "url", "url": "https://mcp"}]), "mcp_servers"),
        (
            lambda r: r.messages[0].content.append(ir.DocumentBlock({"type": "url", "url": "https://x/a.pdf"})),
            "messages.0.content.1.source",
        ),
        (
            lambda r: r.messages[0].content.append(ir.DocumentBlock({"type": "file", "file_id": "file_1"})),
            "file document source",
        ),
        (lambda r: r.messages[0].content.append(ir.ToolUseBlock("t", "x")), "tool_use block cannot appear in a user"),
        (lambda r: r.messages.append(assistant(ir.ImageBlock(url="https://x"))), "assistant turn"),
    ],
)
def test_untranslatable_requests_raise(mutate: Callable[[ir.Request], None], fragment: str) -> None:
    req = text_only()
    mutate(req)
    with pytest.raises(InvalidRequest) as info:
        codec.encode_request(req, "m")
    assert fragment in info.value.message
    assert info.value.status == 400


def test_empty_mcp_servers_and_unknown_server_tool_free_requests_pass() -> None:
    req = text_only()
    req.extras["mcp_servers"] = []
    req.tools = [ir.Tool("custom_tool", extras={"type": "custom", "defer_loading": True})]
    body = codec.encode_request(req, "m")
    assert body["tools"] == [
        {"type": "function", "function": {"name": "custom_tool", "parameters": {"type": "object"}}}
    ]
