"""A Gemini client's ``GenerateContentRequest`` → IR: golden fixtures (``fixtures/client_requests``,
inputs modeled on Google's documented REST examples, the google-genai SDK and Gemini CLI) and
what must be refused, with Google's wording and the field named."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini import signatures

from .helpers import as_json, check, load, names

TEXT = {"contents": [{"parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("body", [[], "hi", 3, None])
def test_check_request_wants_an_object(body: Any) -> None:
    """The one check the passthrough path gets too; Google's wording (an empty body is ``{}``)."""
    codec.check_request({})
    codec.check_request(TEXT)
    with pytest.raises(InvalidRequest) as info:
        codec.check_request(body)
    assert info.value.message == 'Invalid JSON payload received. Unknown name "": Root element must be a message.'


@pytest.mark.parametrize("name", names("client_requests"))
def test_client_request_golden(name: str) -> None:
    req = codec.decode_request(load("client_requests", name)["request"])
    check("client_requests", name, as_json(req), key="expected")


def test_packed_reasoning_is_unpacked_first_in_the_turn() -> None:
    req = codec.decode_request(load("client_requests", "packed_reasoning_comes_back")["request"])
    turn = req.messages[1].content
    assert [type(b).__name__ for b in turn] == [
        "ThinkingBlock",  # unpacked from the call's thoughtSignature (url-safe, as google-genai sends it)
        "RedactedThinkingBlock",
        "ThinkingBlock",  # the Gemini thought part, kept with origin "gemini"
        "TextBlock",
        "ToolUseBlock",
    ]
    assert turn[0] == ir.ThinkingBlock("Let me check the weather tool.", "c2lnLWFudGhyb3BpYw==", "anthropic")
    assert turn[2].origin == "gemini"
    assert turn[4].signature is None  # the packed value is not a Gemini signature
    assert req.messages[2].content[0].is_error


def test_pack_round_trip() -> None:
    blocks = [ir.ThinkingBlock("t", "s", "openai_responses", "rs_1"), ir.RedactedThinkingBlock("d")]
    packed = signatures.pack(blocks)
    assert signatures.unpack(packed) == blocks
    assert signatures.unpack(packed.replace("+", "-").replace("/", "_").rstrip("=")) == blocks
    assert signatures.unpack("skip_thought_signature_validator") is None
    assert signatures.unpack("CikBcsjafFK168IbtVtoxVV0Tsn8O+eU45rzJahzwuKGmMbdMdfpmNpg") is None


def test_defaults() -> None:
    req = codec.decode_request(TEXT)
    assert req.max_tokens == codec.DEFAULT_MAX_TOKENS
    assert (req.temperature, req.top_p, req.thinking, req.tools, req.tool_choice, req.system) == (None,) * 6


def test_top_p_one_is_left_out() -> None:
    req = codec.decode_request({**TEXT, "generationConfig": {"temperature": 0, "topP": 1}})
    assert (req.temperature, req.top_p) == (0, None)
    assert codec.decode_request({**TEXT, "generationConfig": {"topP": 0.9}}).top_p == 0.9


@pytest.mark.parametrize(
    ("config", "thinking", "effort"),
    [
        ({"thinkingBudget": 0}, ir.Thinking("disabled"), None),
        ({"thinkingBudget": -1}, ir.Thinking("adaptive"), None),
        ({"thinkingBudget": 2048}, ir.Thinking("enabled", 2048), None),
        ({"thinkingBudget": 10}, ir.Thinking("enabled", 10), None),  # as asked: upstream codecs fit it
        ({"includeThoughts": True}, ir.Thinking("adaptive"), None),
        ({"includeThoughts": False}, None, None),
        ({"thinkingLevel": "high"}, ir.Thinking("adaptive"), "high"),
        ({"thinkingLevel": "MEDIUM"}, ir.Thinking("adaptive"), "medium"),
        ({"thinking_level": "minimal"}, ir.Thinking("disabled"), None),
    ],
)
def test_thinking_config(config: dict, thinking: ir.Thinking | None, effort: str | None) -> None:
    req = codec.decode_request({**TEXT, "generationConfig": {"thinkingConfig": config}})
    assert (req.thinking, req.effort) == (thinking, effort)


def test_include_thoughts_flag() -> None:
    assert codec.include_thoughts({**TEXT, "generation_config": {"thinking_config": {"include_thoughts": True}}})
    assert not codec.include_thoughts(TEXT)
    assert not codec.include_thoughts({"generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}})


def test_output_formats() -> None:
    def fmt(config: dict) -> Any:
        return codec.decode_request({**TEXT, "generationConfig": config}).output_format

    assert fmt({"responseMimeType": "application/json"}) == {"type": "json_object"}
    assert fmt({"responseMimeType": "text/plain"}) is None
    schema = {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}}
    assert fmt({"responseMimeType": "application/json", "responseJsonSchema": schema}) == {
        "type": "json_schema",
        "schema": {"type": "object", "properties": {"x": {"type": "string"}}},
    }


def test_allowed_function_names_narrow_the_tools() -> None:
    decls = [{"name": n} for n in ("a", "b", "c")]
    body = {**TEXT, "tools": [{"functionDeclarations": decls}]}
    req = codec.decode_request(
        {**body, "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "c"]}}}
    )
    assert [t.name for t in req.tools] == ["a", "c"] and req.tool_choice == ir.ToolChoice("any")
    req = codec.decode_request({**body, "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}})
    assert len(req.tools) == 3 and req.tool_choice == ir.ToolChoice("auto")
    req = codec.decode_request({**TEXT, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}})
    assert req.tool_choice is None  # no tools: no tool choice to send


def test_count_tokens_bodies() -> None:
    req = codec.decode_count_request({"contents": TEXT["contents"]})
    assert req.max_tokens == 1 and req.messages[0].content == [ir.TextBlock("hi")]
    inner = {"model": "models/x", **TEXT, "systemInstruction": {"parts": [{"text": "s"}]}}
    req = codec.decode_count_request({"generateContentRequest": inner})
    assert req.system == [ir.TextBlock("s")] and req.max_tokens == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
        ({"contents": [{"parts": []}]}, "contents[0].parts: contents.parts must not be empty"),
        ({"contents": [{"parts": [{"thought": True}]}]}, "required oneof field 'data' must have one initialized field"),
        ({**TEXT, "stream": True}, 'Unknown name "stream": Cannot find field.'),
        ({"contents": [{"parts": [{"text": "x", "foo": 1}]}]}, "Unknown name \"foo\" at 'contents[0].parts[0]'"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "Invalid value at 'contents[0].parts[0].text'"),
        ({**TEXT, "generationConfig": {"candidateCount": 3}}, "generationConfig.candidateCount"),
        ({**TEXT, "generationConfig": {"maxOutputTokens": 0}}, "generationConfig.maxOutputTokens"),
        ({**TEXT, "generationConfig": {"presencePenalty": 0.5}}, "generationConfig.presencePenalty"),
        ({**TEXT, "generationConfig": {"responseModalities": ["IMAGE"]}}, "generationConfig.responseModalities"),
        (
            {**TEXT, "generationConfig": {"responseSchema": {"type": "STRING"}}},
            "needs responseMimeType application/json",
        ),
        ({**TEXT, "generationConfig": {"thinkingConfig": {"thinkingLevel": "extreme"}}}, "thinking_level"),
        ({**TEXT, "generationConfig": {"bogus": 1}}, "Unknown name \"bogus\" at 'generationConfig'"),
        ({**TEXT, "tools": [{"googleSearch": {}}]}, "tools[0].googleSearch: the built-in Gemini tool Google Search"),
        ({**TEXT, "tools": [{"url_context": {}}]}, "tools[0].urlContext"),
        ({**TEXT, "tools": [{"functionDeclarations": [{"name": ""}]}]}, "Name cannot be empty"),
        ({**TEXT, "cachedContent": "cachedContents/x"}, "cachedContent: cached content is only available"),
        (
            {**TEXT, "systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}},
            "systemInstruction.parts[0]",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4", "data": "AA=="}}]}]},
            "inline data of type video/mp4",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "text/plain", "data": "@@"}}]}]},
            "Base64 decoding failed",
        ),
        ({"contents": [{"parts": [{"fileData": {"fileUri": "gs://bucket/a.png"}}]}]}, "contents[0].parts[0].fileData"),
        ({"contents": [{"parts": [{"fileData": {"fileUri": "https://youtu.be/abc"}}]}]}, "YouTube"),
        ({"contents": [{"parts": [{"fileData": {"fileUri": "https://example.com/a.mp3"}}]}]}, "a file of type unknown"),
        ({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}, "code execution"),
        (
            {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "there is no earlier functionCall named 'f'",
        ),
        (
            {
                **TEXT,
                "tools": [{"functionDeclarations": [{"name": "a"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["z"]}},
            },
            "'z' is not a declared function",
        ),
        (
            {**TEXT, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "Invalid value at 'toolConfig.functionCallingConfig.mode'",
        ),
        ({**TEXT, "safetySettings": [{"category": "x", "level": 1}]}, "Unknown name \"level\" at 'safetySettings[0]'"),
    ],
)
def test_refused_with_the_field_named(body: dict, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.decode_request(body)
    assert message in info.value.message
    assert info.value.status == 400
