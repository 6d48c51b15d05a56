"""Client ``POST /v1/responses`` bodies → IR: golden fixtures (OpenAI's documented request examples
and Codex's shape) in ``fixtures/client_requests``, and the refusals and mappings one by one."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.openai_responses import decode_request, fit_thinking
from modelgate.protocols.openai_responses.client_input import SUMMARY_HEADER
from modelgate.protocols.openai_responses.common import (
    ToolNames,
    open_reasoning,
    open_summary,
    seal_reasoning,
    seal_summary,
    tool_names,
)

from .helpers import as_json, check, load, names


@pytest.mark.parametrize("name", names("client_requests"))
def test_client_request_golden(name: str) -> None:
    req = decode_request(load("client_requests", name)["request"])
    check("client_requests", name, as_json(req), key="expected")


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **fields}


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
        ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_parameter"),
        ({"background": True}, "background", "unsupported_parameter"),
        ({"context_management": [{"type": "compaction"}]}, "context_management", "unsupported_parameter"),
        ({"top_logprobs": 3}, "top_logprobs", "unsupported_parameter"),
        ({"include": ["message.output_text.logprobs"]}, "include", "unsupported_parameter"),
        ({"max_output_tokens": 15}, "max_output_tokens", "integer_below_min_value"),
        ({"max_output_tokens": "x"}, "max_output_tokens", "invalid_type"),
        ({"temperature": 3}, "temperature", "invalid_value"),
        ({"instructions": ["x"]}, "instructions", "invalid_type"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort", "invalid_value"),
        ({"reasoning": {"summary": "loud"}}, "reasoning.summary", "invalid_value"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type", "invalid_value"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
            "missing_required_parameter",
        ),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "missing_required_parameter"),
        (
            {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}},
            "tool_choice",
            "invalid_value",
        ),
        (
            {"tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}},
            "tool_choice",
            "unsupported_value",
        ),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "invalid_value"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "invalid_value"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
            "invalid_value",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
            "unsupported_parameter",
        ),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id", "missing_required_parameter"),
        (
            {"input": [{"type": "compaction", "encrypted_content": "gAAAA-openai"}]},
            "input[0].encrypted_content",
            "invalid_value",
        ),
        ({"input": 5}, "input", "invalid_type"),
        ({"input": None}, "input", "missing_required_parameter"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_request(body(**fields))
    assert (info.value.param, info.value.code, info.value.status) == (param, code, 400)


@pytest.mark.parametrize(
    ("reasoning", "max_output_tokens", "effort", "thinking"),
    [
        (None, None, None, None),
        ({"summary": "auto"}, None, None, None),
        ({"effort": "none"}, None, None, ir.Thinking("disabled")),
        ({"effort": "minimal"}, None, "low", ir.Thinking("enabled", 1024)),
        ({"effort": "low"}, None, "low", ir.Thinking("enabled", 1024)),
        ({"effort": "medium"}, None, "medium", ir.Thinking("enabled", 4096)),
        ({"effort": "high"}, 100000, "high", ir.Thinking("enabled", 16384)),
        ({"effort": "xhigh"}, 100000, "max", ir.Thinking("enabled", 32768)),
        ({"effort": "high"}, None, "high", ir.Thinking("enabled", 8191)),  # kept below the default 8192
        ({"effort": "high"}, 1000, "high", None),  # no room for Anthropic's minimum budget
    ],
)
def test_reasoning_effort_maps_to_effort_and_budget(reasoning, max_output_tokens, effort, thinking) -> None:
    fields: dict[str, Any] = {"reasoning": reasoning}
    if max_output_tokens:
        fields["max_output_tokens"] = max_output_tokens
    req = decode_request(body(**fields))
    assert (req.effort, req.thinking) == (effort, thinking)
    assert req.max_tokens == (max_output_tokens or 8192)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected", "names_left"),
    [
        ("auto", None, ir.ToolChoice("auto"), ["f", "g"]),
        ("required", None, ir.ToolChoice("any"), ["f", "g"]),
        ("none", None, ir.ToolChoice("none"), ["f", "g"]),
        ({"type": "function", "name": "g"}, None, ir.ToolChoice("tool", "g"), ["f", "g"]),
        (None, False, ir.ToolChoice("auto", disable_parallel_tool_use=True), ["f", "g"]),
        ("required", False, ir.ToolChoice("any", disable_parallel_tool_use=True), ["f", "g"]),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "g"}]},
            None,
            ir.ToolChoice("any"),
            ["g"],
        ),
    ],
)
def test_tool_choice(choice, parallel, expected, names_left) -> None:
    tools = [{"type": "function", "name": "f"}, {"type": "function", "name": "g", "parameters": {"type": "object"}}]
    fields: dict[str, Any] = {"tools": tools}
    if choice is not None:
        fields["tool_choice"] = choice
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    req = decode_request(body(**fields))
    assert req.tool_choice == expected
    assert [t.name for t in req.tools or ()] == names_left
    schemas = {t.name: t.input_schema for t in req.tools or ()}
    assert schemas.get("f", {"type": "object", "properties": {}}) == {"type": "object", "properties": {}}
    assert schemas["g"] == {"type": "object"}


def test_only_hosted_tools_means_no_tools() -> None:
    req = decode_request(
        body(tools=[{"type": "web_search"}, {"type": "web_search_preview_2025_03_11"}], tool_choice="auto")
    )
    assert req.tools is None and req.tool_choice is None


def test_consecutive_items_of_one_role_merge_and_system_folds_in_order() -> None:
    req = decode_request(
        body(
            instructions="one",
            input=[
                {"role": "system", "content": "two"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "input_text", "text": "b"}]},
                {"role": "developer", "content": [{"type": "input_text", "text": "three"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "c"}, {"type": "refusal", "refusal": "d"}],
                },
            ],
        )
    )
    assert [b.text for b in req.system or ()] == ["one", "two", "three"]
    assert [(m.role, [b.text for b in m.content]) for m in req.messages] == [
        ("user", ["a", "b"]),
        ("assistant", ["c", "d"]),
    ]


def test_reasoning_envelope_round_trip() -> None:
    for block in (
        ir.ThinkingBlock("thought ✓", "sig", "anthropic"),
        ir.ThinkingBlock("from gemini", "gsig", "gemini"),
        ir.ThinkingBlock("no signature", None, None),
    ):
        sealed = seal_reasoning(block)
        assert sealed.startswith("mg1:")
        assert open_reasoning(sealed, "ignored summary", "rs_1") == ir.ThinkingBlock(
            block.thinking, block.signature, block.origin, "rs_1"
        )
    assert open_reasoning(seal_reasoning(ir.RedactedThinkingBlock("opaque")), "", None) == ir.RedactedThinkingBlock(
        "opaque"
    )
    openai_own = ir.ThinkingBlock("summary", "gAAAAB-enc", "openai", "rs_2")
    assert seal_reasoning(openai_own) == "gAAAAB-enc"
    assert open_reasoning("gAAAAB-enc", "summary", "rs_2") == openai_own
    assert open_reasoning("mg1:!!!", "summary", "rs_3") == ir.ThinkingBlock("summary", "mg1:!!!", "openai", "rs_3")


def test_reasoning_without_encrypted_content_is_marked_openai() -> None:
    req = decode_request(
        body(input=[{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}]}])
    )
    assert req.messages[0].content == [ir.ThinkingBlock("s", None, "openai", "rs_1")]


def test_compaction_item_of_this_gateway_becomes_a_user_text() -> None:
    sealed = seal_summary("We did things ✓.")
    assert open_summary(sealed) == "We did things ✓." and open_summary("gAAAA") is None
    req = decode_request(
        body(input=[{"type": "compaction", "encrypted_content": sealed}, {"role": "user", "content": "next"}])
    )
    assert req.messages == [
        ir.Message("user", [ir.TextBlock(f"{SUMMARY_HEADER}\n\nWe did things ✓."), ir.TextBlock("next")])
    ]


def test_text_files_and_data_urls() -> None:
    content = [
        {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,aGVsbG8="},
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/"},
    ]
    blocks = decode_request(body(input=[{"role": "user", "content": content}])).messages[0].content
    assert blocks == [
        ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": "hello"}, "a.txt"),
        ir.DocumentBlock({"type": "url", "url": "https://example.com/a.pdf"}),
        ir.ImageBlock("image/jpeg", "/9j/"),
    ]


def test_tool_names_from_the_request() -> None:
    tools = [
        {"type": "custom", "name": "apply_patch"},
        {
            "type": "namespace",
            "name": "crm",
            "tools": [{"type": "function", "name": "find"}, {"type": "custom", "name": "q"}],
        },
        {"type": "namespace", "name": "mcp__x__", "tools": [{"type": "function", "name": "read"}]},
    ]
    assert tool_names(tools) == ToolNames(
        frozenset({"apply_patch", "crm__q"}),
        {"crm__find": ("crm", "find"), "crm__q": ("crm", "q"), "mcp__x__read": ("mcp__x__", "read")},
    )


@pytest.mark.parametrize(
    ("thinking", "cap", "expected"),
    [
        (ir.Thinking("enabled", 8191), 4096, ir.Thinking("enabled", 4095)),
        (ir.Thinking("enabled", 8191), 1000, None),
        (ir.Thinking("enabled", 2048), 8192, ir.Thinking("enabled", 2048)),
        (ir.Thinking("disabled"), 100, ir.Thinking("disabled")),
        (None, 100, None),
    ],
)
def test_fit_thinking_keeps_the_budget_below_the_capped_limit(thinking, cap, expected) -> None:
    req = ir.Request("m", [], 8192, thinking=thinking)
    fit_thinking(req, cap)
    assert (req.max_tokens, req.thinking) == (cap, expected)
