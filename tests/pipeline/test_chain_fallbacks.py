"""Deployments and fallbacks in the chain (``Chain._recover``): a failed deployment hands the
request to the next at once; when every deployment of a model has failed with a failure of a
class in ``router.fallback_on``, the model's fallbacks are tried in order — across upstream
kinds, through translation — and the answer names the model that served it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.testing.gateway_runner import free_port
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    OPENAI_HEADERS,
    anthropic_body,
    chat_body,
    configured_gateway,
    provider_config,
    record_settlements,
)

MESSAGES = "/v1/messages"


def config(fake: FakeUpstream, models: list[dict[str, Any]], **router: Any) -> dict[str, Any]:
    return {
        "providers": [
            provider_config("anth", "anthropic", fake.anthropic_base_url),
            provider_config("anth-eu", "anthropic", fake.anthropic_base_url),
            provider_config("local", "openai-compatible", fake.openai_base_url),
            provider_config("gem", "gemini", fake.base_url),
            provider_config("dead", "anthropic", f"http://127.0.0.1:{free_port()}", connect_timeout=2.0),
        ],
        "models": models,
        # a backoff long enough to show when the chain sleeps where it should not
        "router": {"backoff": 5, "backoff_max": 5, **router},
    }


SONNET_TWICE = {
    "name": "claude-sonnet-4-6",
    "deployments": [
        {"provider": "anth", "priority": 0},
        {"provider": "anth-eu", "upstream_model": "claude-sonnet-4-6-eu", "priority": 1},
    ],
}
DEAD_WITH_FALLBACKS = {"name": "claude-sonnet-4-6", "provider": "dead", "fallbacks": ["qwen-local", "flash"]}
QWEN = {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b"}
FLASH = {"name": "flash", "provider": "gem", "upstream_model": "gemini-2.5-flash"}


def sdk(gw: Gateway) -> anthropic.AsyncAnthropic:
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw.asgi()), base_url="http://gw")
    return anthropic.AsyncAnthropic(base_url="http://gw", api_key=MASTER_KEY, http_client=client, max_retries=0)


def served(r: httpx.Response) -> tuple[str, str, str]:
    return r.headers["x-modelgate-model"], r.headers["x-modelgate-provider"], r.headers["x-mapped-model"]


# --------------------------------------------------------------------------- deployments


async def test_a_failed_deployment_hands_over_to_the_next_at_once(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with configured_gateway(config(fake, [SONNET_TWICE])) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(error={"status": 529})
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert time.perf_counter() - started < 2  # no backoff before another upstream
    assert r.status_code == 200
    assert served(r) == ("claude-sonnet-4-6", "anth-eu", "claude-sonnet-4-6-eu")
    assert [(a.provider, a.upstream_model, a.status) for a in settled.only.attempts] == [
        ("anth", "claude-sonnet-4-6", 529),
        ("anth-eu", "claude-sonnet-4-6-eu", 200),
    ]
    assert [q["body"]["model"] for q in fake.requests(MESSAGES)] == ["claude-sonnet-4-6", "claude-sonnet-4-6-eu"]


async def test_deployments_are_retried_round_after_round_with_a_backoff(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, [SONNET_TWICE], backoff=0.3, backoff_max=1, jitter=0)) as (_, client):
        fake.script(error={"status": 503}, times=2)
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert served(r) == ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6")  # round two, first deployment
    assert 0.3 <= elapsed < 1.5  # one backoff: between the rounds only
    assert len(fake.requests(MESSAGES)) == 3


async def test_the_happy_path_uses_the_first_deployment(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, [SONNET_TWICE])) as (_, client):
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert served(r) == ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6")
    assert len(fake.requests(MESSAGES)) == 1


# --------------------------------------------------------------------------- fallbacks


@pytest.fixture
async def falling(fake: FakeUpstream) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with configured_gateway(config(fake, [DEAD_WITH_FALLBACKS, QWEN, FLASH], attempts=1)) as pair:
        yield pair


async def test_a_dead_provider_falls_back_to_another_upstream_kind(
    falling: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, _ = falling
    settled = record_settlements(gw, monkeypatch)
    fake.script(text="served by the fallback")
    response = await sdk(gw).messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    message = await response.parse()
    assert [b.text for b in message.content if b.type == "text"] == ["served by the fallback"]
    assert message.model == "qwen-local"  # the model that served, by its public name
    assert (
        response.headers["x-modelgate-model"],
        response.headers["x-modelgate-provider"],
        response.headers["x-mapped-model"],
    ) == ("qwen-local", "local", "qwen2.5:0.5b")
    assert [(a.provider, a.status, a.passthrough) for a in settled.only.attempts] == [
        ("dead", 502, True),
        ("local", 200, False),
    ]


async def test_a_stream_falls_back_before_its_first_byte(falling: tuple[Gateway, httpx.AsyncClient]) -> None:
    gw, _ = falling
    async with sdk(gw).messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text.startswith("Hello from the fake upstream.")
    assert final.model == "qwen-local" and final.stop_reason == "end_turn"


async def test_fallbacks_are_tried_in_order(
    falling: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, client = falling
    settled = record_settlements(gw, monkeypatch)
    fake.script(error={"status": 503, "message": "local is down"}, match={"endpoint": "chat.completions"})
    r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert served(r) == ("flash", "gem", "gemini-2.5-flash")
    assert [a.provider for a in settled.only.attempts] == ["dead", "local", "gem"]


async def test_when_every_fallback_fails_the_last_error_is_the_answer(
    falling: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = falling
    fake.script(error={"status": 503}, match={"endpoint": "chat.completions"})
    fake.script(
        error={"status": 429, "retry_after": 7, "message": "gemini quota"}, match={"endpoint": "generateContent"}
    )
    r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"] == {"type": "rate_limit_error", "message": "gemini quota"}


async def test_a_failure_that_does_not_fall_back_is_answered_at_once(fake: FakeUpstream) -> None:
    models = [{**SONNET_TWICE, "fallbacks": ["qwen-local"]}, QWEN]
    async with configured_gateway(config(fake, models)) as (_, client):
        fake.script(error={"status": 400, "message": "messages: roles must alternate"})
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "messages: roles must alternate"
    assert len(fake.requests()) == 1


async def test_a_context_overflow_falls_back_when_configured(fake: FakeUpstream) -> None:
    models = [
        {"name": "small", "provider": "local", "upstream_model": "qwen2.5:0.5b", "fallbacks": ["big"]},
        {"name": "big", "provider": "anth", "upstream_model": "claude-sonnet-4-6"},
    ]
    overflow = {"status": 400, "message": "This model's maximum context length is 32768 tokens."}
    async with configured_gateway(config(fake, models, fallback_on=["context_window"])) as (_, client):
        fake.script(error=overflow, match={"endpoint": "chat.completions"})
        r = await client.post("/v1/chat/completions", json=chat_body("small"), headers=OPENAI_HEADERS)
    assert r.status_code == 200
    assert served(r) == ("big", "anth", "claude-sonnet-4-6")
    assert r.json()["model"] == "big"


# --------------------------------------------------------------------------- breakers


async def test_a_failing_deployment_is_set_aside_then_tried_again(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = {
        "name": "claude-sonnet-4-6",
        "deployments": [{"provider": "anth"}, {"provider": "anth-eu", "upstream_model": "eu-sonnet", "priority": 1}],
    }
    data = config(fake, [model], health={"failures": 2, "cooloff": 30})
    async with configured_gateway(data) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(error={"status": 529}, match={"model": "claude-sonnet-4-6"}, times=2)
        for _ in range(3):
            r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
            assert served(r) == ("claude-sonnet-4-6", "anth-eu", "eu-sonnet")
        assert [[a.provider for a in ctx.attempts] for ctx, _ in settled] == [
            ["anth", "anth-eu"],
            ["anth", "anth-eu"],
            ["anth-eu"],  # anth is aside: not tried
        ]
        health = (await client.get("/healthz")).json()
        assert health["details"]["deployments"] == [
            {
                "model": "claude-sonnet-4-6",
                "provider": "anth",
                "upstream_model": "claude-sonnet-4-6",
                "state": "open",
                "failures": 2,
                "seconds_left": pytest.approx(30, abs=1),
            }
        ]
        for h in gw.catalog.health():
            h.open_until = min(h.open_until, time.monotonic() - 1)  # the cool-off is over
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert served(r) == ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6")  # tried again, and healthy
        assert "details" not in (await client.get("/healthz")).json()


async def test_a_model_set_aside_whole_goes_straight_to_its_fallback(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config(fake, [DEAD_WITH_FALLBACKS, QWEN, FLASH], attempts=1, health={"failures": 1})
    async with configured_gateway(data) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        for _ in range(2):
            r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
            assert served(r) == ("qwen-local", "local", "qwen2.5:0.5b")
    assert [[a.provider for a in ctx.attempts] for ctx, _ in settled] == [["dead", "local"], ["local"]]


# --------------------------------------------------------------------------- a session moved to an older model


#: What Claude Code sends for a model with adaptive thinking (claude-sonnet-4-6).
CLAUDE_CODE_TURN = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64000,
    "thinking": {"type": "adaptive"},
    "output_config": {"effort": "medium"},
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}
    ],
    "metadata": {"user_id": '{"session_id":"0b7c"}'},
    "stream": True,
}


async def test_an_alias_to_an_older_model_fits_a_claude_code_turn_to_it(fake: FakeUpstream) -> None:
    models = [{"name": "claude-sonnet-4-6", "provider": "anth", "upstream_model": "claude-opus-4-1"}]
    async with configured_gateway(config(fake, models)) as (_, client):
        r = await client.post(MESSAGES, json=CLAUDE_CODE_TURN, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.content.endswith(b'data: {"type":"message_stop"}\n\n')
    sent = fake.last_request(MESSAGES)["body"]
    assert sent["model"] == "claude-opus-4-1"
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}  # the budget for "medium"
    assert "output_config" not in sent  # effort: refused by the older model too
    assert sent["max_tokens"] == 32000  # the older model's limit
    assert sent["system"] == CLAUDE_CODE_TURN["system"] and sent["messages"] == CLAUDE_CODE_TURN["messages"]


async def test_a_fallback_to_an_older_model_fits_a_claude_code_turn_to_it(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = [
        {"name": "claude-sonnet-4-6", "provider": "dead", "fallbacks": ["claude-haiku-4-5"]},
        {"name": "claude-haiku-4-5", "provider": "anth"},
    ]
    async with configured_gateway(config(fake, models, attempts=1)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        r = await client.post(MESSAGES, json=CLAUDE_CODE_TURN, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.content.endswith(b'data: {"type":"message_stop"}\n\n')
    assert served(r) == ("claude-haiku-4-5", "anth", "claude-haiku-4-5")
    assert [(a.provider, a.passthrough) for a in settled.only.attempts] == [("dead", True), ("anth", True)]
    sent = fake.last_request(MESSAGES)["body"]
    assert (sent["model"], sent["thinking"]) == ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 4096})


async def test_the_same_model_gets_the_clients_bytes_untouched(fake: FakeUpstream) -> None:
    models = [{"name": "claude-sonnet-4-6", "provider": "anth"}]
    raw = orjson.dumps(CLAUDE_CODE_TURN)
    async with configured_gateway(config(fake, models)) as (_, client):
        r = await client.post(MESSAGES, content=raw, headers={**ANTHROPIC_HEADERS, "content-type": "application/json"})
    assert r.status_code == 200
    assert fake.last_request(MESSAGES)["raw_body"] == raw.decode()


# --------------------------------------------------------------------------- auto

AUTO_MODELS = [
    {"name": "claude-sonnet-4-6", "provider": "anth"},
    {"name": "claude-haiku-4-5", "provider": "anth"},
    QWEN,
]


async def test_auto_cheapest_picks_the_cheapest_model_and_names_it(fake: FakeUpstream) -> None:
    auto = {"policy": "cheapest", "models": ["qwen-local", "claude-sonnet-4-6", "claude-haiku-4-5"]}
    async with configured_gateway(config(fake, AUTO_MODELS, auto=auto)) as (_, client):
        r = await client.post(MESSAGES, json=anthropic_body("auto"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        assert served(r) == ("claude-haiku-4-5", "anth", "claude-haiku-4-5")
        assert r.json()["model"] == "claude-haiku-4-5"  # the upstream's own answer, relayed
        assert fake.last_request(MESSAGES)["body"]["model"] == "claude-haiku-4-5"
        chat = await client.post("/v1/chat/completions", json=chat_body("auto"), headers=OPENAI_HEADERS)
    assert chat.status_code == 200
    assert chat.json()["model"] == "claude-haiku-4-5"  # translated: the public name of the model that served


async def test_auto_moves_on_to_its_next_model_when_one_fails(fake: FakeUpstream) -> None:
    auto = {"policy": "priority", "models": ["claude-sonnet-4-6", "qwen-local"]}
    async with configured_gateway(config(fake, AUTO_MODELS, auto=auto, attempts=1)) as (_, client):
        fake.script(error={"status": 529}, match={"endpoint": "messages"})
        r = await client.post(MESSAGES, json=anthropic_body("auto"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert served(r) == ("qwen-local", "local", "qwen2.5:0.5b")
    assert r.json()["model"] == "qwen-local"


async def test_auto_latency_puts_the_fastest_first(fake: FakeUpstream) -> None:
    auto = {"policy": "latency", "models": ["claude-sonnet-4-6", "claude-haiku-4-5", "qwen-local"]}
    async with configured_gateway(config(fake, AUTO_MODELS, auto=auto)) as (gw, _):
        latencies = {"claude-sonnet-4-6": 0.9, "claude-haiku-4-5": 0.2}  # qwen-local: not measured yet
        for health in gw.catalog.health():
            health.latency = latencies.get(health.model)
        plan = gw.catalog.plan("auto")
    assert [r.name for r in plan.candidates] == ["claude-haiku-4-5"]
    assert plan.fallbacks == ("claude-sonnet-4-6", "qwen-local")


async def test_auto_latency_measures_the_deployments_as_they_serve(fake: FakeUpstream) -> None:
    auto = {"policy": "latency", "models": ["claude-sonnet-4-6", "qwen-local"]}
    async with configured_gateway(config(fake, AUTO_MODELS, auto=auto)) as (gw, client):
        r = await client.post(MESSAGES, json=anthropic_body("auto"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        measured = {h.model: h.latency for h in gw.catalog.health()}
    assert measured["claude-sonnet-4-6"] is not None and measured["claude-sonnet-4-6"] > 0
    assert measured["qwen-local"] is None


async def test_auto_weighted_puts_each_model_first_in_turn(fake: FakeUpstream) -> None:
    auto = {"policy": "weighted", "models": ["claude-sonnet-4-6", "claude-haiku-4-5"]}
    async with configured_gateway(config(fake, AUTO_MODELS, auto=auto)) as (gw, _):
        firsts = {gw.catalog.plan("auto").candidates[0].name for _ in range(200)}
    assert firsts == {"claude-sonnet-4-6", "claude-haiku-4-5"}


async def test_auto_is_an_unknown_model_unless_configured(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, AUTO_MODELS)) as (_, client):
        r = await client.post(MESSAGES, json=anthropic_body("auto"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 404
    assert r.json()["error"] == {"type": "not_found_error", "message": "model: no provider serves model 'auto'"}


# --------------------------------------------------------------------------- error answers


async def test_an_upstream_error_answer_names_the_deployment_that_gave_it(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, [SONNET_TWICE], attempts=2)) as (_, client):
        fake.script(error={"status": 529}, times=2)
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 529
    assert r.json()["error"]["type"] == "overloaded_error"
    assert served(r) == ("claude-sonnet-4-6", "anth-eu", "claude-sonnet-4-6-eu")  # the last one tried


async def test_an_error_made_before_any_attempt_names_no_deployment(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, [SONNET_TWICE])) as (_, client):
        r = await client.post(MESSAGES, json=anthropic_body("claude-nothing"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 404
    assert not {"x-modelgate-model", "x-modelgate-provider", "x-mapped-model"} & set(r.headers)
    assert fake.requests(MESSAGES) == []
