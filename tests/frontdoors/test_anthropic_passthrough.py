"""Anthropic front door → Anthropic upstream: the passthrough path, through the official SDK and raw HTTP."""

from __future__ import annotations

import anthropic
import httpx
import orjson

from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import streamed

USER = [{"role": "user", "content": "Hello there"}]


def test_non_streaming_text(client: anthropic.Anthropic, fake) -> None:
    raw = client.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    message = raw.parse()
    assert raw.status_code == 200
    assert raw.headers["request-id"]
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert "You said: Hello there" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_upstream_gets_the_provider_key_never_the_master_key(client: anthropic.Anthropic, fake) -> None:
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    headers = fake.last_request("/v1/messages")["headers"]
    assert headers["x-api-key"] == UPSTREAM_KEY
    assert MASTER_KEY not in str(headers)


def test_body_bytes_and_beta_headers_are_forwarded_untouched(http: httpx.Client, fake) -> None:
    body = (
        b'{"model": "claude-sonnet-4-6",  "max_tokens": 20, "messages": [{"role": "user", "content": "hi \\u00e9"}],'
        b' "some_future_field": {"nested": [1, 2.50, true]}, "context_management": {"edits": []}}'
    )
    betas = "claude-code-20250219,interleaved-thinking-2025-05-14,future-beta-2099-01-01"
    r = http.post(
        "/v1/messages?beta=true",
        content=body,
        headers={"anthropic-beta": betas, "anthropic-version": "2099-12-31", "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    seen = fake.last_request("/v1/messages")
    assert seen["raw_body"] == streamed(body)  # the one change: the provider forces streaming
    assert seen["headers"]["anthropic-beta"] == betas
    assert seen["headers"]["anthropic-version"] == "2099-12-31"


def test_alias_rewrites_only_the_model(http: httpx.Client, fake) -> None:
    body = {"model": "sonnet", "max_tokens": 20, "messages": USER, "x_unknown": {"a": "é"}}
    r = http.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    sent = fake.last_request("/v1/messages")["body"]
    assert sent == {**body, "model": "claude-sonnet-4-6", "stream": True}  # forced to stream


def test_streaming_event_order_and_text(client: anthropic.Anthropic, fake) -> None:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100, messages=USER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1
    whole = client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    assert final.content[0].text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_streaming_is_byte_for_byte_the_upstream_stream(http: httpx.Client, fake, upstream) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": True, "messages": USER}
    through = http.post("/v1/messages", json=body)
    headers = {"x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01"}
    direct = httpx.post(upstream.base_url + "/v1/messages", json=body, headers=headers)
    assert through.headers["content-type"].startswith("text/event-stream")
    strip = lambda text: [line for line in text.splitlines() if '"id"' not in line]  # noqa: E731
    assert strip(through.text) == strip(direct.text)


def test_tool_round_trip(client: anthropic.Anthropic, fake) -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100, messages=USER, tools=tools) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    follow_up = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees"}]},
    ]
    second = client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=follow_up, tools=tools)
    assert second.stop_reason == "end_turn"
    assert "18 degrees" in second.content[0].text


def test_thinking_signature_survives(client: anthropic.Anthropic, fake) -> None:
    fake.script(thinking="Let me think about it.")
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=USER,
    ) as stream:
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "thinking_delta") in kinds
    assert ("content_block_delta", "signature_delta") in kinds
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "Let me think about it." and thinking.signature
    # Send it back: the fake verifies the signature it issued.
    follow_up = [*USER, {"role": "assistant", "content": [b.model_dump() for b in final.content]}]
    follow_up.append({"role": "user", "content": "and?"})
    again = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=follow_up,
    )
    assert again.stop_reason == "end_turn"


def test_images_documents_system_blocks_cache_control_metadata(http: httpx.Client, fake) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": '{"session_id":"abc"}'},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "A doc."}},
                    {"type": "text", "text": "Describe", "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
    }
    r = http.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert fake.last_request("/v1/messages")["body"] == {**body, "stream": True}  # forced to stream


def test_system_role_inside_messages_and_auth_as_bearer(gateway, fake) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 20,
        "messages": [*USER, {"role": "assistant", "content": "Hi"}, {"role": "system", "content": "Be brief"}],
    }
    r = httpx.post(gateway.base_url + "/v1/messages", json=body, headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200, r.text
    assert fake.last_request("/v1/messages")["body"] == {**body, "stream": True}  # forced to stream


def test_count_tokens_is_forwarded(client: anthropic.Anthropic, fake) -> None:
    result = client.messages.count_tokens(model="claude-sonnet-4-6", messages=USER, system="Be brief.")
    assert result.input_tokens > 0
    assert fake.last_request("/v1/messages/count_tokens")["body"]["system"] == "Be brief."


def test_prefixed_routes_and_probes(gateway, http: httpx.Client, fake) -> None:
    r = http.post("/api/anthropic/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": USER})
    assert r.status_code == 200
    assert httpx.head(gateway.base_url + "/").status_code == 200
    assert httpx.head(gateway.base_url + "/api/hello").status_code == 200
    health = httpx.get(gateway.base_url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_models_list_in_anthropic_shape_with_paging(client: anthropic.Anthropic, http: httpx.Client) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[:3] == ["claude-sonnet-4-6", "claude-sonnet-4-6-thinking", "claude-haiku-4-5"]
    assert "claude-*" not in ids
    page = http.get("/v1/models", params={"limit": 3}).json()
    assert (
        page["has_more"] is True and page["first_id"] == "claude-sonnet-4-6" and page["last_id"] == "claude-haiku-4-5"
    )
    assert page["data"][0] == {
        "type": "model",
        "id": "claude-sonnet-4-6",
        "display_name": "Claude Sonnet 4.6",
        "created_at": page["data"][0]["created_at"],
    }
    rest = http.get("/v1/models", params={"after_id": "claude-haiku-4-5", "limit": 1000}).json()
    assert [m["id"] for m in rest["data"][:2]] == ["claude-haiku-4-5-thinking", "sonnet"]
    assert client.models.retrieve("claude-sonnet-4-6").display_name == "Claude Sonnet 4.6"
    assert client.models.retrieve("claude-sonnet-4-6-thinking").display_name == "Claude Sonnet 4.6 (thinking)"
    assert orjson.loads(http.get("/v1/models", params={"limit": 0}).content)["error"]["type"] == "invalid_request_error"


def test_query_and_client_identity_reach_the_upstream(http: httpx.Client, fake) -> None:
    headers = {"user-agent": "claude-cli/2.1.330 (external, sdk-cli)", "x-app": "cli", "x-stainless-os": "Linux"}
    body = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": USER}
    assert http.post("/v1/messages?beta=true", json=body, headers=headers).status_code == 200
    seen = fake.last_request("/v1/messages")
    assert seen["query"] == "beta=true"
    assert seen["headers"]["user-agent"] == headers["user-agent"] and seen["headers"]["x-app"] == "cli"
    assert "x-stainless-os" not in seen["headers"]
    assert http.post("/v1/messages/count_tokens?beta=true", json=body).status_code == 200
    assert fake.last_request("/v1/messages/count_tokens")["query"] == "beta=true"
