"""``{model}-thinking`` (``make_plan``, each door's ``think``): for a model whose upstream model can
think, the variant serves the base model with thinking on — adaptive where the model has it,
else ``router.thinking_budget`` — in each protocol's words, on the passthrough path and the
translated one; a request that already thinks keeps its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelgate.testing.runner import FakeUpstream
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    anthropic_body,
    chat_body,
    configured_gateway,
    gemini_body,
    provider_config,
    responses_body,
)

MESSAGES = "/v1/messages"


def served(r: httpx.Response) -> tuple[str, str, str]:
    return r.headers["x-modelgate-model"], r.headers["x-modelgate-provider"], r.headers["x-mapped-model"]


async def test_an_anthropic_model_with_adaptive_thinking_gets_it(ac: httpx.AsyncClient, fake: FakeUpstream) -> None:
    r = await ac.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6-thinking"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert served(r) == ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6")
    sent = fake.last_request(MESSAGES)["body"]
    assert (sent["model"], sent["thinking"]) == ("claude-sonnet-4-6", {"type": "adaptive"})
    # the client's fields, in order (then ``stream``: the provider forces streaming)
    assert list(sent) == ["model", "max_tokens", "messages", "thinking", "stream"]


async def test_an_older_model_gets_the_configured_budget(ac: httpx.AsyncClient, fake: FakeUpstream) -> None:
    body = anthropic_body("claude-haiku-4-5-thinking", max_tokens=16000)
    r = await ac.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert fake.last_request(MESSAGES)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    short = anthropic_body("claude-haiku-4-5-thinking", max_tokens=2000)
    await ac.post(MESSAGES, json=short, headers=ANTHROPIC_HEADERS)
    assert fake.last_request(MESSAGES)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1999}
    tiny = anthropic_body("claude-haiku-4-5-thinking", max_tokens=64)  # no budget fits: no thinking
    await ac.post(MESSAGES, json=tiny, headers=ANTHROPIC_HEADERS)
    assert "thinking" not in fake.last_request(MESSAGES)["body"]


async def test_a_request_that_thinks_already_keeps_its_own(ac: httpx.AsyncClient, fake: FakeUpstream) -> None:
    own = {"type": "enabled", "budget_tokens": 2048}
    body = anthropic_body("claude-sonnet-4-6-thinking", max_tokens=4096, thinking=own)
    await ac.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert fake.last_request(MESSAGES)["body"]["thinking"] == own


@pytest.mark.parametrize(
    ("path", "body", "headers", "upstream_path", "check"),
    [
        (  # translated: Chat client, Anthropic upstream
            "/v1/chat/completions",
            chat_body("claude-sonnet-4-6-thinking", max_tokens=16000),
            OPENAI_HEADERS,
            MESSAGES,
            lambda sent: sent["thinking"]["type"] in ("adaptive", "enabled"),
        ),
        (  # passthrough: Chat client, OpenAI upstream
            "/v1/chat/completions",
            chat_body("gpt-5-mini-thinking"),
            OPENAI_HEADERS,
            "/v1/responses",  # gpt-5-mini is a Responses model in the test config
            lambda sent: sent["reasoning"]["effort"] == "medium",
        ),
        (
            "/v1/responses",
            responses_body("gpt-5-mini-thinking"),
            OPENAI_HEADERS,
            "/v1/responses",
            lambda sent: sent["reasoning"] == {"effort": "medium"} and sent["model"] == "gpt-5-mini",
        ),
        (
            "/v1beta/models/gemini-2.5-flash-thinking:generateContent",
            gemini_body(),
            GEMINI_HEADERS,
            "/v1beta/models/gemini-2.5-flash:generateContent",
            lambda sent: sent["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192},
        ),
    ],
)
async def test_every_door_says_it_its_way(
    ac: httpx.AsyncClient, fake: FakeUpstream, path: str, body: Any, headers: Any, upstream_path: str, check: Any
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    sent = fake.last_request(upstream_path)["body"]
    assert check(sent), sent


async def test_models_that_cannot_think_have_no_variant(ac: httpx.AsyncClient) -> None:
    r = await ac.post(MESSAGES, json=anthropic_body("qwen-local-thinking"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model: no provider serves model 'qwen-local-thinking'"


async def test_variants_can_be_turned_off_and_the_budget_set(fake: FakeUpstream) -> None:
    data: dict[str, Any] = {
        "providers": [provider_config("anth", "anthropic", fake.anthropic_base_url)],
        "models": [{"name": "claude-haiku-4-5", "provider": "anth"}],
        "router": {"thinking_variants": False},
    }
    async with configured_gateway(data) as (_, client):
        r = await client.post(MESSAGES, json=anthropic_body("claude-haiku-4-5-thinking"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 404
        assert "claude-haiku-4-5-thinking" not in [
            m["id"] for m in (await client.get("/v1/models", headers=ANTHROPIC_HEADERS)).json()["data"]
        ]
    data["router"] = {"thinking_budget": 3000}
    async with configured_gateway(data) as (_, client):
        body = anthropic_body("claude-haiku-4-5-thinking", max_tokens=16000)
        r = await client.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert fake.last_request(MESSAGES)["body"]["thinking"] == {"type": "enabled", "budget_tokens": 3000}
