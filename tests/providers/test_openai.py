"""The ``openai`` provider kind: OpenAI's rules on the Chat Completions path, and the Responses API
for the models only it serves, driven through the Anthropic front door (Claude Code → OpenAI)."""

from __future__ import annotations

import anthropic
import pytest

from modelgate.config import ModelConfig, ProviderConfig
from modelgate.providers import build_provider
from modelgate.providers.http import HttpClient
from modelgate.providers.openai import OpenAIProvider, is_reasoning_model, needs_responses_api
from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX
from tests.conftest import UPSTREAM_KEY

USER = [{"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.mark.parametrize(
    ("model", "responses", "reasoning"),
    [
        ("gpt-4o", False, False),
        ("gpt-4.1-mini", False, False),
        ("gpt-5", False, True),
        ("gpt-5-chat-latest", False, False),
        ("o3", False, True),
        ("o4-mini", False, True),
        ("gpt-5-codex", True, True),
        ("gpt-5.1-codex-max", True, True),
        ("codex-mini-latest", True, True),
        ("o1-pro", True, True),
        ("o3-pro-2025-06-10", True, True),
        ("gpt-5-pro", True, True),
        ("computer-use-preview", True, False),
        ("o3-deep-research", True, True),
    ],
)
def test_built_in_model_lists(model: str, responses: bool, reasoning: bool) -> None:
    assert (needs_responses_api(model), is_reasoning_model(model)) == (responses, reasoning)


def test_config_api_overrides_the_list_by_upstream_model() -> None:
    provider = build_provider(
        ProviderConfig(name="oai", type="openai"),
        HttpClient(),
        [
            ModelConfig(name="fast", provider="oai", upstream_model="gpt-5-mini", api="responses"),
            ModelConfig(name="my-codex", provider="oai", upstream_model="gpt-5-codex", api="chat"),
            ModelConfig(name="ft:gpt-4o*", provider="oai", api="responses"),
            ModelConfig(name="gpt-4.1", provider="oai", api="responses"),
            ModelConfig(name="gpt-4.1-nano", provider="other", api="responses"),
        ],
    )
    assert isinstance(provider, OpenAIProvider) and provider.protocols == {"openai_chat", "openai_responses"}
    assert provider.api_for("gpt-5-mini") == "responses" and provider.api_for("gpt-5-codex") == "chat"
    assert provider.api_for("ft:gpt-4o:acme") == "responses" and provider.api_for("gpt-4.1") == "responses"
    assert provider.api_for("gpt-4.1-nano") == "chat"  # another provider's model
    assert provider.responses_url == "https://api.openai.com/v1/responses"


def test_chat_path_uses_openai_rules(client: anthropic.Anthropic, fake) -> None:
    message = client.messages.create(
        model="gpt-4o",
        max_tokens=300,
        extra_body={"top_k": 5, "temperature": 0.3},  # this SDK release has no keywords for them
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=USER,
    )
    assert message.content[-1].text == ECHO_PREFIX + "Hello there" and message.model == "gpt-4o"
    sent = fake.last_request("/v1/chat/completions")
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    body = sent["body"]
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body
    assert "top_k" not in body and body["temperature"] == 0.3
    assert "reasoning_effort" not in body  # gpt-4o refuses it


def test_chat_path_streams(client: anthropic.Anthropic, fake) -> None:
    with client.messages.stream(model="gpt-4o", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == ECHO_PREFIX + "Hello there" and final.usage.output_tokens > 0
    body = fake.last_request("/v1/chat/completions")["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 100


def test_responses_only_model_goes_to_responses(client: anthropic.Anthropic, fake) -> None:
    message = client.messages.create(
        model="gpt-5-codex",
        max_tokens=2000,
        system="Be brief.",
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=USER,
    )
    assert fake.requests("/v1/chat/completions") == []
    body = fake.last_request("/v1/responses")["body"]
    assert body["instructions"] == "Be brief." and body["store"] is False
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]}
    ]
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"] and body["max_output_tokens"] == 2000
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.signature.startswith("gAAAAB")
    assert text.text == ECHO_PREFIX + "Hello there" and message.stop_reason == "end_turn"


def test_responses_stream_and_tool_loop(client: anthropic.Anthropic, fake) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris, with a long name to split"}}])
    with client.messages.stream(model="gpt-5-mini", max_tokens=500, messages=USER, tools=TOOLS) as stream:
        kinds = [e.type for e in stream]
        first = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.input == {"city": "Paris, with a long name to split"} and call.id.startswith("call_")
    sent = fake.last_request("/v1/responses")["body"]
    assert sent["stream"] is True and sent["tools"][0]["name"] == "get_weather"
    follow = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = client.messages.create(model="gpt-5-mini", max_tokens=500, messages=follow, tools=TOOLS)
    assert second.content[-1].text == TOOL_RESULT_PREFIX + "sunny"
    items = fake.last_request("/v1/responses")["body"]["input"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1]["call_id"] == items[2]["call_id"] == call.id


def test_responses_errors_reach_claude_code(client: anthropic.Anthropic, fake) -> None:
    fake.script(error={"status": 429, "retry_after": 3})
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="gpt-5-codex", max_tokens=100, messages=USER)
    assert info.value.response.headers["retry-after"] == "3"
    fake.script(error={"status": 500, "after": 3, "message": "boom"})
    with (
        pytest.raises(anthropic.APIStatusError),
        client.messages.stream(model="gpt-5-codex", max_tokens=100, messages=USER) as stream,
    ):
        stream.get_final_message()
