"""A client's Chat Completions request → IR: golden fixtures in ``fixtures/client_requests``
(bodies after OpenAI's documented examples), refusals with OpenAI's ``param`` and ``code``, and
the thinking budget's fit inside ``max_tokens``."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import openai_chat as codec

from .helpers import as_json, check, load, names

USER = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("name", names("client_requests"))
def test_decode_request_golden(name: str) -> None:
    body = load("client_requests", name)["body"]
    check("client_requests", name, as_json(codec.decode_request(body)), key="expected")


def refusal(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        codec.decode_request({"model": "m", "messages": USER, **body})
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("body", "param", "code", "fragment"),
    [
        ({"n": 2}, "n", "unsupported_value", "n: only n=1 is supported"),
        ({"n": 0}, "n", "unsupported_value", "n: only n=1 is supported"),
        ({"logprobs": True}, "logprobs", "unsupported_value", "log probabilities"),
        ({"top_logprobs": 3}, "top_logprobs", "unsupported_value", "log probabilities"),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "unsupported_value", "token biases"),
        ({"modalities": ["text", "audio"]}, "modalities", "unsupported_value", "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "unsupported_value", "audio output"),
        ({"web_search_options": {}}, "web_search_options", "unsupported_value", "web search"),
        ({"moderation": {"model": "omni-moderation-latest"}}, "moderation", "unsupported_value", "moderated"),
        ({"frobnicate": 1}, "frobnicate", None, "Unrecognized request argument supplied: frobnicate"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value", "only allowed when 'stream'"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "invalid_value", "Invalid value: 'extreme'"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value", "Expected a value >= 1"),
        ({"max_completion_tokens": "9"}, "max_completion_tokens", "invalid_type", "expected an integer"),
        ({"temperature": 3}, "temperature", "decimal_above_max_value", "Expected a value <= 2"),
        ({"top_p": -1}, "top_p", "decimal_below_min_value", "Expected a value >= 0"),
        ({"stop": 5}, "stop", "invalid_type", "Invalid type for 'stop'"),
        ({"user": 5}, "user", "invalid_type", "Invalid type for 'user'"),
        ({"tool_choice": "required"}, "tool_choice", None, "only allowed when 'tools' are specified"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]", None, "custom tools"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", "missing_required_parameter", ""),
        ({"tools": [{"type": "mcp"}]}, "tools[0].type", "invalid_value", "Invalid value: 'mcp'"),
        ({"tools": {"type": "function"}}, "tools", "invalid_type", "expected an array"),
        ({"response_format": {"type": "yaml"}}, "response_format.type", "invalid_value", "Invalid value: 'yaml'"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
            "missing_required_parameter",
            "",
        ),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "invalid_type", ""),
    ],
)
def test_refused_fields_name_the_field(body: dict[str, Any], param: str, code: str | None, fragment: str) -> None:
    err = refusal(body)
    assert (err.param, getattr(err, "code", None)) == (param, code)
    assert fragment in err.message
    assert codec.error_body(err) == {
        "error": {"message": err.message, "type": "invalid_request_error", "param": param, "code": code}
    }


@pytest.mark.parametrize(
    ("messages", "param", "fragment"),
    [
        ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}],
         "messages[0].content[0]", "input_audio"),
        ([{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}],
         "messages[0].content[0].file.file_id", "uploaded files"),
        ([{"role": "user", "content": [{"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}}]}],
         "messages[0].content[0].file.file_data", "application/zip"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}],
         "messages[0].content[0].image_url.url", "base64"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}],
         "messages[0].content[0].image_url.url", "http(s)"),
        ([{"role": "user", "content": [{"type": "video"}]}], "messages[0].content[0].type", "Invalid value: 'video'"),
        ([{"role": "user", "content": 5}], "messages[0].content", "Invalid type for 'messages[0].content'"),
        ([{"role": "robot", "content": "x"}], "messages[0].role", "Invalid value: 'robot'"),
        ([{"content": "x"}], "messages[0].role", "Missing required parameter"),
        (["hello"], "messages[0]", "expected an object"),
        ([{"role": "system", "content": [{"type": "image_url"}]}], "messages[0].content[0].type", "'text'"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                   "function": {"name": "f", "arguments": "{bad"}}]}],
            "messages[0].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}],
            "messages[0].tool_calls[0].function.arguments",
            "JSON object",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom",
                                                   "custom": {"name": "f", "input": "x"}}]}],
            "messages[0].tool_calls[0].type",
            "function tool calls",
        ),
        ([{"role": "assistant", "tool_calls": [{"type": "function"}]}], "messages[0].tool_calls[0].id", "Missing"),
        ([{"role": "assistant", "content": "x", "audio": {"id": "audio_1"}}], "messages[0].audio", "audio"),
        ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id", "Missing required parameter"),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].name", "no earlier assistant function_call"),
    ],
)  # fmt: skip
def test_bad_messages_name_the_field(messages: list[Any], param: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.decode_request({"model": "m", "messages": messages})
    assert info.value.param == param
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        ([], "The request body must be a JSON object.", None, None),
        ({"messages": USER}, "you must provide a model parameter", None, None),
        ({"model": 5, "messages": USER}, "Invalid type for 'model': expected a string, but got an integer instead.",
         "model", "invalid_type"),
        ({"model": "m"}, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"),
        ({"model": "m", "messages": {}}, "Invalid type for 'messages': expected an array, but got an object instead.",
         "messages", "invalid_type"),
        ({"model": "m", "messages": []}, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
         "but got an empty array instead.", "messages", "empty_array"),
        ({"model": "m", "messages": USER, "stream": "yes"},
         "Invalid type for 'stream': expected a boolean, but got a string instead.", "stream", "invalid_type"),
    ],
)  # fmt: skip
def test_check_request_words_errors_as_openai(body: Any, message: str, param: str | None, code: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.check_request(body)
    assert (info.value.message, info.value.param, getattr(info.value, "code", None)) == (message, param, code)


@pytest.mark.parametrize(
    ("effort", "max_tokens", "cap", "expected_max", "expected_thinking"),
    [
        ("high", None, None, 4096 + 16384, ir.Thinking("enabled", 16384)),
        ("high", None, 8000, 8000, ir.Thinking("enabled", 7999)),
        ("medium", 2000, None, 2000, ir.Thinking("enabled", 1999)),
        ("low", 1024, None, 1024, None),  # no room for Anthropic's minimum budget
        ("low", 5000, None, 5000, ir.Thinking("enabled", 1024)),
        ("minimal", None, None, 4096, ir.Thinking("disabled")),
        (None, None, None, 4096, None),
    ],
)
def test_thinking_budget_fits_in_max_tokens(
    effort: str | None, max_tokens: int | None, cap: int | None, expected_max: int, expected_thinking: Any
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": USER}
    if effort:
        body["reasoning_effort"] = effort
    if max_tokens:
        body["max_completion_tokens"] = max_tokens
    req = codec.decode_request(body)
    codec.fit_thinking(req, min(req.max_tokens, cap) if cap else req.max_tokens)
    assert (req.max_tokens, req.thinking) == (expected_max, expected_thinking)


def test_extras_stay_empty_so_no_openai_field_reaches_another_provider() -> None:
    body = load("client_requests", "sampling_and_dropped_fields")["body"]
    assert codec.decode_request(body).extras == {}


def test_consecutive_tool_results_and_user_text_form_one_user_turn() -> None:
    req = codec.decode_request(load("client_requests", "tool_loop")["body"])
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert [b.type for b in req.messages[2].content] == ["tool_result", "tool_result", "text"]


def test_anthropic_thinking_object_wins_over_reasoning_effort() -> None:
    body = {"model": "m", "messages": USER, "reasoning_effort": "low"}
    body["thinking"] = {"type": "enabled", "budget_tokens": 2000}
    req = codec.decode_request(body)
    assert (req.thinking, req.effort, req.max_tokens) == (ir.Thinking("enabled", 2000), "low", 4096 + 2000)
    assert codec.decode_request({"model": "m", "messages": USER, "thinking": {"type": "adaptive"}}).thinking == (
        ir.Thinking("adaptive")
    )
    assert refusal({"thinking": {"type": "on"}}).param == "thinking.type"
