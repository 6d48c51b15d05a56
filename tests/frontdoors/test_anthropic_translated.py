"""Anthropic front door → OpenAI-compatible upstream: translation through the IR, both ways."""

from __future__ import annotations

import anthropic
import httpx
import pytest

USER = [{"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def test_text_non_streaming(client: anthropic.Anthropic, fake) -> None:
    message = client.messages.create(model="qwen-local", max_tokens=100, messages=USER, system="Be brief.")
    assert message.model == "qwen-local"
    assert message.content[0].type == "text" and "You said: Hello there" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    sent = fake.last_request("/v1/chat/completions")
    assert sent["headers"]["authorization"] == "Bearer sk-upstream-secret-0123456789"
    assert sent["body"]["model"] == "qwen2.5:0.5b"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["body"]["max_tokens"] == 100


def test_streaming_matches_non_streaming(client: anthropic.Anthropic, fake) -> None:
    with client.messages.stream(model="qwen-local", max_tokens=100, messages=USER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    whole = client.messages.create(model="qwen-local", max_tokens=100, messages=USER)
    assert final.content[0].text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens > 0
    assert final.usage.input_tokens == whole.usage.input_tokens > 0
    assert fake.last_request("/v1/chat/completions")["body"].get("stream") is not True


def test_streamed_parallel_tool_calls_and_round_trip(client: anthropic.Anthropic, fake) -> None:
    fake.script(
        tool_calls=[
            {"name": "get_weather", "input": {"city": "Paris, with a long name to split"}},
            {"name": "get_weather", "input": {"city": "Tokyo"}},
        ]
    )
    with client.messages.stream(model="qwen-local", max_tokens=100, messages=USER, tools=TOOLS) as stream:
        deltas = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        first = stream.get_final_message()
    assert len(deltas) > 2  # arguments arrive in pieces
    assert first.stop_reason == "tool_use"
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [c.input["city"] for c in calls] == ["Paris, with a long name to split", "Tokyo"]
    assert all(c.id for c in calls)
    sent_tools = fake.last_request("/v1/chat/completions")["body"]["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"
    results = [{"type": "tool_result", "tool_use_id": c.id, "content": f"sunny in {c.input['city']}"} for c in calls]
    follow_up = [*USER, {"role": "assistant", "content": [b.model_dump() for b in first.content]}]
    follow_up.append({"role": "user", "content": results})
    second = client.messages.create(model="qwen-local", max_tokens=100, messages=follow_up, tools=TOOLS)
    assert "sunny in" in second.content[0].text and second.stop_reason == "end_turn"
    sent = fake.last_request("/v1/chat/completions")["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [t["tool_call_id"] for t in sent[2:]] == [c.id for c in calls]


def test_image_is_sent_as_data_url(client: anthropic.Anthropic, fake) -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "text", "text": "What is this?"},
    ]
    client.messages.create(model="qwen-local", max_tokens=20, messages=[{"role": "user", "content": content}])
    parts = fake.last_request("/v1/chat/completions")["body"]["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert parts[1] == {"type": "text", "text": "What is this?"}


def test_stop_reasons_map(client: anthropic.Anthropic, fake) -> None:
    fake.script(stop_reason="max_tokens")
    assert client.messages.create(model="qwen-local", max_tokens=5, messages=USER).stop_reason == "max_tokens"
    fake.script(stop_reason="max_tokens")
    with client.messages.stream(model="qwen-local", max_tokens=5, messages=USER) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"


def test_reasoning_content_becomes_a_thinking_block(client: anthropic.Anthropic, fake) -> None:
    fake.script(thinking="Pondering.", quirks=["reasoning_content"])
    with client.messages.stream(model="qwen-local", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == "Pondering."
    assert final.content[1].type == "text"


def test_sloppy_servers_without_usage_or_with_null_choices(client: anthropic.Anthropic, fake) -> None:
    fake.script(quirks=["no_usage"])
    with client.messages.stream(model="qwen-local", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].text and final.usage.output_tokens == 0
    fake.script(quirks=["null_choices"])
    with client.messages.stream(model="qwen-local", max_tokens=100, messages=USER) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens > 0


def test_count_tokens_is_a_local_estimate(client: anthropic.Anthropic, fake) -> None:
    short = client.messages.count_tokens(model="qwen-local", messages=USER).input_tokens
    long = client.messages.count_tokens(model="qwen-local", messages=USER, system="x" * 3000, tools=TOOLS).input_tokens
    assert 0 < short < long
    assert long >= 1000
    assert fake.requests("/v1/chat/completions") == []


def test_thinking_maps_to_reasoning_effort(http: httpx.Client, fake) -> None:
    body = {
        "model": "qwen-local",
        "max_tokens": 3000,
        "messages": USER,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    assert http.post("/v1/messages", json=body).status_code == 200
    assert fake.last_request("/v1/chat/completions")["body"]["reasoning_effort"] == "medium"


def test_max_tokens_capped_at_the_model_limit(http: httpx.Client, fake) -> None:
    assert (
        http.post("/v1/messages", json={"model": "qwen-local", "max_tokens": 32000, "messages": USER}).status_code
        == 200
    )
    assert fake.last_request("/v1/chat/completions")["body"]["max_tokens"] == 4096


def test_context_overflow_is_reworded_for_claude_code(client: anthropic.Anthropic, fake) -> None:
    message = "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens."
    fake.script(error={"status": 400, "message": message})
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model="qwen-local", max_tokens=100, messages=USER)
    assert info.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 9000 tokens > 4096 maximum",
    }


def test_quiet_upstream_gets_pings_on_translated_streams(http: httpx.Client, fake) -> None:
    fake.script(words=3, stall=1.0)
    body = {"model": "qwen-local", "max_tokens": 100, "stream": True, "messages": USER}
    r = http.post("/v1/messages", json=body)
    events = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("ping") >= 2
    assert r.text.count('"type":"text_delta"') == 3
