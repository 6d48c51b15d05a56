"""Clients of the other protocols → a Gemini upstream (the ``gemini`` provider kind, translated)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX
from tests.conftest import MASTER_KEY, UPSTREAM_KEY

USER = [{"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def test_anthropic_client_text_and_stream(client: anthropic.Anthropic, fake) -> None:
    message = client.messages.create(model="gemini-2.5-flash", max_tokens=100, messages=USER, system="Be brief.")
    assert message.content[0].text == ECHO_PREFIX + "Hello there" and message.stop_reason == "end_turn"
    sent = fake.last_request()
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == UPSTREAM_KEY
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["generationConfig"] == {"maxOutputTokens": 100}
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == len(message.content[0].text.split())
    with client.messages.stream(model="gemini-2.5-flash", max_tokens=100, messages=USER) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert fake.last_request()["query"] == "alt=sse"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text == message.content[0].text and final.usage.output_tokens == message.usage.output_tokens


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3-pro-preview"])
def test_anthropic_client_tool_loop(client: anthropic.Anthropic, fake, model: str) -> None:
    """Gemini 3 checks function-call signatures; Anthropic clients cannot carry them back."""
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    first = client.messages.create(model=model, max_tokens=100, messages=USER, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    call = first.content[0]
    assert call.type == "tool_use" and call.input == {"city": "Paris"} and call.id.startswith("gmcall_")
    follow = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = client.messages.create(model=model, max_tokens=100, messages=follow, tools=TOOLS)
    assert second.content[0].text == TOOL_RESULT_PREFIX + "sunny"
    contents = fake.last_request()["body"]["contents"]
    assert contents[1]["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": "skip_thought_signature_validator",
    }
    assert contents[2]["parts"][0] == {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}


def test_anthropic_count_tokens_asks_gemini(client: anthropic.Anthropic, fake) -> None:
    count = client.messages.count_tokens(model="gemini-2.5-flash", messages=USER, system="sys", tools=TOOLS)
    sent = fake.last_request()
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:countTokens"
    inner = sent["body"]["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash" and "systemInstruction" in inner and "tools" in inner
    from modelgate.testing.fake_gemini import input_tokens

    assert count.input_tokens == input_tokens(inner)


def test_openai_client_text(gateway, fake) -> None:
    oai = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=MASTER_KEY, max_retries=0)
    resp = oai.chat.completions.create(model="gemini-2.5-flash", messages=USER)
    assert resp.choices[0].message.content == ECHO_PREFIX + "Hello there"
    assert fake.last_request()["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_upstream_errors_reach_an_anthropic_client(client: anthropic.Anthropic, fake) -> None:
    fake.script(error={"status": 429, "retry_after": 2})
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="gemini-2.5-flash", max_tokens=10, messages=USER)
    assert info.value.response.headers["retry-after"] == "2"
