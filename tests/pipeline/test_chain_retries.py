"""The chain's retries and key rotation (``Chain._recover``), against the fake upstream scripted
to fail: retryable failures are tried again after a backoff that honours ``retry-after``, an
upstream key refused with 429/401/403 rests and the request moves to the next key at once,
and nothing is ever retried once the answer has started."""

from __future__ import annotations

import logging
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
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    anthropic_body,
    chat_body,
    configured_gateway,
    gemini_body,
    provider_config,
    record_settlements,
)

MESSAGES = "/v1/messages"
#: Retries that do not slow the tests down (unless a test asks for a backoff of its own).
FAST = {"backoff": 0.01, "backoff_max": 0.02, "jitter": 0}


def config(fake: FakeUpstream, *, keys: tuple[str, ...] = (), router: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "providers": [
            provider_config("anth", "anthropic", fake.anthropic_base_url, keys),
            provider_config("local", "openai-compatible", fake.openai_base_url),
            provider_config("dead", "anthropic", f"http://127.0.0.1:{free_port()}", connect_timeout=2.0),
        ],
        "models": [
            {"name": "claude-sonnet-4-6", "provider": "anth"},
            {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b"},
            {"name": "dead-model", "provider": "dead"},
        ],
        "router": {**FAST, **(router or {})},
    }


@pytest.fixture
async def routed(fake: FakeUpstream) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with configured_gateway(config(fake)) as pair:
        yield pair


def sdk(gw: Gateway) -> anthropic.AsyncAnthropic:
    """The Anthropic SDK over the in-process gateway (over ASGI), with its own retries off."""
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw.asgi()), base_url="http://gw")
    return anthropic.AsyncAnthropic(base_url="http://gw", api_key=MASTER_KEY, http_client=client, max_retries=0)


# --------------------------------------------------------------------------- retries


async def test_a_request_survives_two_529s_by_retry(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, _ = routed
    settled = record_settlements(gw, monkeypatch)
    fake.script(error={"status": 529}, times=2)
    message = await sdk(gw).messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )
    assert message.content[0].type == "text"
    assert [r["status"] for r in fake.requests(MESSAGES)] == [529, 529, 200]
    ctx = settled.only
    assert [a.status for a in ctx.attempts] == [529, 529, 200]
    assert (ctx.status, ctx.error) == (200, None)


@pytest.mark.parametrize("stream", [False, True])
async def test_every_attempt_failing_ends_with_the_last_error(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, stream: bool
) -> None:
    _, client = routed
    fake.script(error={"status": 529, "message": "Overloaded, try later"}, times=3)
    r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6", stream=stream), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 529
    assert r.json()["error"] == {"type": "overloaded_error", "message": "Overloaded, try later"}
    assert len(fake.requests(MESSAGES)) == 3  # router.attempts
    assert fake.pending() == []


async def test_a_translated_request_is_retried_the_same_way(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = routed
    fake.script(error={"status": 503}, times=2)
    r = await client.post(MESSAGES, json=anthropic_body("qwen-local"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.json()["type"] == "message"
    assert [q["status"] for q in fake.requests("/v1/chat/completions")] == [503, 503, 200]


async def test_an_unreachable_upstream_is_retried_then_answered_502(
    routed: tuple[Gateway, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, client = routed
    settled = record_settlements(gw, monkeypatch)
    r = await client.post(MESSAGES, json=anthropic_body("dead-model"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 502
    assert r.json()["error"] == {"type": "api_error", "message": "could not connect to upstream dead"}
    assert [a.status for a in settled.only.attempts] == [502, 502, 502]


@pytest.mark.parametrize(
    "error",
    [
        {"status": 400, "message": "messages: bad"},  # the client's fault: the same everywhere
        {"status": 529, "message": "no"},  # ... when the upstream says so
    ],
)
async def test_what_is_not_retryable_is_answered_at_once(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, error: dict[str, Any]
) -> None:
    _, client = routed
    headers = {"x-should-retry": "false"} if error["status"] == 529 else {}
    fake.script(error=error, headers=headers, times=3)
    r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == error["status"]
    assert r.json()["error"]["message"] == error["message"]
    assert len(fake.requests(MESSAGES)) == 1


async def test_a_stream_broken_after_its_first_byte_is_not_retried(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = routed
    fake.script(words=20, error={"status": 529, "after": 3, "message": "Overloaded"})
    body = anthropic_body("claude-sonnet-4-6", stream=True)
    r = await client.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.content.startswith(b"event: message_start\n")
    last = r.content.rstrip().rsplit(b"\n\n", 1)[-1]  # the upstream's own error event, relayed
    assert last.startswith(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"')
    assert len(fake.requests(MESSAGES)) == 1


async def test_a_stream_whose_first_event_is_an_error_is_retried(
    routed: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = routed
    fake.script(error={"status": 529, "after": 0, "message": "Overloaded"})
    r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6", stream=True), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.content.startswith(b"event: message_start\n")
    assert r.content.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert [q["status"] for q in fake.requests(MESSAGES)] == [200, 200]  # the first one a 200 that was an error


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/chat/completions", chat_body("qwen-local", stream=True), OPENAI_HEADERS),
        ("/v1/responses", {"model": "gpt-4o", "input": "hi", "stream": True}, OPENAI_HEADERS),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini_body(), GEMINI_HEADERS),
    ],
)
async def test_a_stream_opened_with_an_error_is_retried_at_every_door(
    fake: FakeUpstream, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    data = config(fake)
    data["providers"] += [
        provider_config("oai", "openai", fake.openai_base_url),
        provider_config("gem", "gemini", fake.base_url),
    ]
    data["models"] += [{"name": "gpt-4o", "provider": "oai"}, {"name": "gemini-2.5-flash", "provider": "gem"}]
    async with configured_gateway(data) as (_, client):
        fake.script(error={"status": 503, "after": 0, "message": "busy"})
        r = await client.post(path, json=body, headers=headers)
    assert r.status_code == 200
    assert b"busy" not in r.content
    assert len(fake.requests()) == 2


# --------------------------------------------------------------------------- backoff and retry-after


async def test_retry_after_is_waited_for(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(error={"status": 429, "retry_after": 0.4})
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert 0.4 <= elapsed < 2
    assert [q["status"] for q in fake.requests(MESSAGES)] == [429, 200]


async def test_retry_after_ms_is_read_too(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(error={"status": 529}, headers={"retry-after-ms": "300"})
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert 0.3 <= elapsed < 2


async def test_a_retry_after_beyond_the_cap_reaches_the_client(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, router={"retry_after_cap": 5})) as (_, client):
        fake.script(error={"status": 429, "retry_after": 30, "message": "slow down"})
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert time.perf_counter() - started < 1
    assert r.status_code == 429
    assert r.headers["retry-after"] == "30"
    assert r.json()["error"] == {"type": "rate_limit_error", "message": "slow down"}
    assert len(fake.requests(MESSAGES)) == 1


async def test_backoff_grows_between_attempts(fake: FakeUpstream) -> None:
    router = {"backoff": 0.2, "backoff_max": 5, "jitter": 0}
    async with configured_gateway(config(fake, router=router)) as (_, client):
        fake.script(error={"status": 500}, times=2)
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert 0.6 <= elapsed < 2  # 0.2 s, then 0.4 s


async def test_no_attempt_starts_past_the_deadline(fake: FakeUpstream) -> None:
    router = {"backoff": 0.5, "backoff_max": 1, "deadline": 0.3}
    async with configured_gateway(config(fake, router=router)) as (_, client):
        fake.script(error={"status": 529}, times=3)
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert time.perf_counter() - started < 0.3
    assert r.status_code == 529
    assert len(fake.requests(MESSAGES)) == 1


# --------------------------------------------------------------------------- key pools


async def test_a_rate_limited_key_rotates_to_the_next_at_once(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = {"backoff": 5, "backoff_max": 5}  # a sleep would show
    async with configured_gateway(config(fake, keys=(UPSTREAM_KEY, UPSTREAM_KEY), router=slow)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(error={"status": 429, "retry_after": 20})
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert time.perf_counter() - started < 1
        assert r.status_code == 200
        assert [(a.key_id, a.status) for a in settled.only.attempts] == [("anth#0", 429), ("anth#1", 200)]
        for _ in range(3):  # the rate-limited key rests for its retry-after: every request takes the other
            await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert [ctx.attempts[0].key_id for ctx, _ in settled[1:]] == ["anth#1"] * 3
        assert gw.providers["anth"].keys.state()[0]["state"] == "rate_limited"


async def test_a_refused_key_is_taken_out_and_reported(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    keys = ("sk-revoked-key-0000", UPSTREAM_KEY)
    async with configured_gateway(config(fake, keys=keys)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        with caplog.at_level(logging.WARNING, logger="modelgate.keys"):
            r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        assert [(a.key_id, a.status) for a in settled.only.attempts] == [("anth#0", 401), ("anth#1", 200)]
        [warning] = [rec for rec in caplog.records if rec.name == "modelgate.keys"]
        assert warning.getMessage() == "upstream key anth#0 refused with 401 (invalid x-api-key): out for 3600 s"
        assert "sk-revoked" not in warning.getMessage()
        for _ in range(3):
            await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        assert [ctx.attempts[0].key_id for ctx, _ in settled[1:]] == ["anth#1"] * 3
        assert [q["headers"]["x-api-key"] for q in fake.requests(MESSAGES)] == [keys[0], *[UPSTREAM_KEY] * 4]


async def test_the_last_key_awake_is_never_taken_out(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, keys=("sk-revoked-key-0000",))) as (gw, client):
        for _ in range(2):
            r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
            assert r.status_code == 401  # the upstream's own refusal, each time
            assert r.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
        assert gw.providers["anth"].keys.state() == [{"id": "anth#0", "state": "ok"}]
    assert len(fake.requests(MESSAGES)) == 2  # a 401 is not retried


async def test_with_redis_unreachable_keys_still_rest_and_rotate_here(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = config(fake, keys=(UPSTREAM_KEY, UPSTREAM_KEY))
    data["server"] = {"redis_url": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="modelgate.routing.shared"):
        async with configured_gateway(data) as (gw, client):
            settled = record_settlements(gw, monkeypatch)
            fake.script(error={"status": 429, "retry_after": 20})
            for _ in range(3):
                r = await client.post(MESSAGES, json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
                assert r.status_code == 200, r.text
            assert [[(a.key_id, a.status) for a in ctx.attempts] for ctx, _ in settled] == [
                [("anth#0", 429), ("anth#1", 200)],
                [("anth#1", 200)],
                [("anth#1", 200)],
            ]
            health = (await client.get("/healthz")).json()
            assert health["routing_state"] == {"shared": True, "backend": "redis", "connected": False}
            assert health["details"]["keys"] == [
                {"id": "anth#0", "state": "rate_limited", "seconds_left": pytest.approx(20, abs=1)}
            ]
    assert any("could not write to Redis" in r.getMessage() for r in caplog.records)


async def test_a_translated_request_rotates_keys_too(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    data = config(fake)
    keys = (UPSTREAM_KEY, UPSTREAM_KEY)
    data["providers"][1] = provider_config("local", "openai-compatible", fake.openai_base_url, keys)
    async with configured_gateway(data) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(error={"status": 429, "retry_after": 10})
        r = await client.post("/v1/chat/completions", json=chat_body("qwen-local"), headers=OPENAI_HEADERS)
        assert r.status_code == 200
        assert [(a.key_id, a.status) for a in settled.only.attempts] == [("local#0", 429), ("local#1", 200)]
    assert len(fake.requests("/v1/chat/completions")) == 2


async def test_a_client_gone_during_a_backoff_ends_it(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelgate.pipeline.context import CLIENT_CLOSED
    from tests.pipeline.helpers import disconnect_after, make_request

    async with configured_gateway(config(fake, router={"backoff": 30, "backoff_max": 30})) as (gw, _):
        settled = record_settlements(gw, monkeypatch)
        fake.script(error={"status": 529}, times=3)
        raw = orjson.dumps(anthropic_body("claude-sonnet-4-6"))
        headers = {**ANTHROPIC_HEADERS, "content-type": "application/json", "content-length": str(len(raw))}
        sent = [False]

        async def receive() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await disconnect_after(0.3)()

        request = make_request(MESSAGES, headers=headers, receive=receive)
        started = time.perf_counter()
        response = await gw.anthropic.messages(request)
        assert time.perf_counter() - started < 5
    assert response.status_code == CLIENT_CLOSED
    assert settled.only.status == CLIENT_CLOSED
    assert len(fake.requests(MESSAGES)) == 1
