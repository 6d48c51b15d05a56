"""Forced internal streaming (``providers[].force_stream``), through the app in process with the
fake upstream: a non-streamed generation goes upstream as a stream and the client gets the
JSON answer the upstream would have given it unstreamed; a stream that fails or stops short is
a failed attempt (retried, then the protocol's error); a hung upstream is answered within the
router's deadline by the first-byte timeout; ``force_stream: false`` keeps the old path."""

from __future__ import annotations

import re
import time
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.config import ProviderConfig, RouterConfig
from modelgate.providers import build_provider
from modelgate.providers.http import HttpClient
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    OPENAI_HEADERS,
    USAGE,
    anthropic_body,
    chat_body,
    configured_gateway,
    provider_config,
    record_settlements,
)

MESSAGES = "/v1/messages"
MODEL = "claude-sonnet-4-6"
FAST = {"backoff": 0.01, "backoff_max": 0.02, "jitter": 0}


def config(fake: FakeUpstream, attempts: int = 2, *, force: bool | None = None, **timeouts: Any) -> dict[str, Any]:
    """One Anthropic provider (``force``: its ``force_stream``, None for the default), and an
    OpenAI-compatible, a Gemini and an OpenAI one forcing (``force`` unless it is False)."""
    anth = {**timeouts, **({} if force is None else {"force_stream": force})}
    others = {"force_stream": force is not False}
    return {
        "providers": [
            provider_config("anth", "anthropic", fake.anthropic_base_url, **anth),
            provider_config("local", "openai-compatible", fake.openai_base_url, **others),
            provider_config("gem", "gemini", fake.base_url, **others),
            provider_config("oai", "openai", fake.openai_base_url, **others),
        ],
        "models": [
            {"name": MODEL, "provider": "anth"},
            {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b"},
            {"name": "flash", "provider": "gem", "upstream_model": "gemini-2.5-flash"},
            {"name": "gpt-4o", "provider": "oai"},
            {"name": "gpt-5-mini", "provider": "oai", "api": "responses"},
        ],
        "router": {"attempts": attempts, **FAST},
    }


def sdk(gw: Gateway) -> anthropic.AsyncAnthropic:
    """The official Anthropic SDK over the in-process gateway (ASGI), its retries off."""
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw.asgi()), base_url="http://gw")
    return anthropic.AsyncAnthropic(base_url="http://gw", api_key=MASTER_KEY, http_client=client, max_retries=0)


def direct(fake: FakeUpstream, body: dict[str, Any]) -> httpx.Response:
    """``body`` sent straight to the fake upstream, not streamed: what an unforced relay returns."""
    headers = {"x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01"}
    return httpx.post(fake.anthropic_base_url + MESSAGES, json=body, headers=headers, timeout=10)


def without_ids(raw: bytes) -> bytes:
    """The answer's bytes with its message and tool ids (numbered by the fake) blanked."""
    return re.sub(rb'"(msg|toolu)_01\d+"', b'"ID"', raw)


SCRIPTS = {
    "text": {"text": "The capital of France is Paris.", "usage": USAGE},
    "tool_use": {"text": "Let me look.", "tool_calls": [{"name": "get_weather", "input": {"city": "Paris", "n": 2}}]},
    "thinking": {"thinking": "Paris is the capital; the Seine runs through it.", "text": "Paris."},
    "empty_tool_input": {"tool_calls": [{"name": "now", "input": {}}]},
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_a_non_streamed_call_is_sent_as_a_stream_and_answered_whole(fake: FakeUpstream, name: str) -> None:
    body = anthropic_body(MODEL, "What is the capital of France?", max_tokens=200)
    unknown = {"x_future_field": {"b": [1, 2]}}
    fake.script(**SCRIPTS[name])
    expected = direct(fake, {**body, **unknown})
    async with configured_gateway(config(fake)) as (gw, _):
        fake.script(**SCRIPTS[name])
        async with sdk(gw) as client:
            raw = await client.messages.with_raw_response.create(
                **body, extra_body=unknown, extra_headers={"anthropic-beta": "future-beta-2099-01-01"}
            )
            message = await raw.parse()
    sent = fake.requests(MESSAGES)[-1]
    assert sent["body"] == {**body, **unknown, "stream": True}  # the one change to the client's request
    assert sent["headers"]["anthropic-beta"] == "future-beta-2099-01-01"
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    assert raw.headers["request-id"].startswith("req_011C")  # the upstream's, as a relay passes it
    content = raw.http_response.content
    assert int(raw.headers["content-length"]) == len(content)
    assert without_ids(content) == without_ids(expected.content)  # the same bytes, but for ids
    sdk_expected = anthropic.types.Message.model_validate(orjson.loads(without_ids(expected.content)))
    assert anthropic.types.Message.model_validate(orjson.loads(without_ids(content))) == sdk_expected
    assert message.type == "message" and message.usage.output_tokens == sdk_expected.usage.output_tokens


async def test_the_usage_is_read_from_the_collected_answer(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    async with configured_gateway(config(fake)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(text="hi", usage={**USAGE, "cache_read_input_tokens": 3})
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    ctx = settled.only
    assert ctx.usage is not None
    assert (ctx.usage.input_tokens, ctx.usage.output_tokens, ctx.usage.cache_read_tokens) == (37, 5, 3)
    assert (ctx.ended, ctx.stop_reason, ctx.attempts[0].passthrough) == (True, "end_turn", True)


@pytest.mark.parametrize(("status", "kind"), [(529, "overloaded_error"), (429, "rate_limit_error"), (500, "api_error")])
async def test_an_error_event_first_is_the_answer(fake: FakeUpstream, status: int, kind: str) -> None:
    async with configured_gateway(config(fake, attempts=1)) as (_, client):
        fake.script(error={"status": status, "message": "Try later", "after": 0})
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
    assert r.status_code == status
    assert r.json()["error"] == {"type": kind, "message": "Try later"}
    assert r.json()["type"] == "error"


async def test_a_key_quoted_in_an_error_event_is_redacted(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, attempts=1)) as (_, client):
        fake.script(error={"status": 400, "message": "key {api_key} is not allowed", "after": 0})
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 400 and UPSTREAM_KEY not in r.text
    assert r.json()["error"]["message"] == "key [redacted] is not allowed"


async def test_an_error_event_first_is_retried(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(error={"status": 529, "after": 0})
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.json()["stop_reason"] == "end_turn"
    assert len(fake.requests(MESSAGES)) == 2


@pytest.mark.parametrize(
    "failure",
    [{"end_after": 4}, {"break_after": 4}, {"error": {"status": 529, "after": 4}}],
    ids=["ends-before-message_stop", "connection-broken", "error-event-midway"],
)
async def test_a_stream_that_fails_midway_is_retried_then_an_error(fake: FakeUpstream, failure: dict) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(words=30, **failure, times=2)
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert len(fake.requests(MESSAGES)) == 2
        if "error" in failure:  # the upstream's own error, as it said it
            assert (r.status_code, r.json()["error"]["type"]) == (529, "overloaded_error")
        else:
            assert (r.status_code, r.json()["error"]["type"]) == (502, "api_error")
        fake.script(words=30, **failure)  # once: the retry succeeds
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.json()["content"][0]["text"]
    assert len(fake.requests(MESSAGES)) == 4


async def test_a_hung_upstream_is_a_timeout_within_the_deadline(fake: FakeUpstream) -> None:
    """The defaults' bound, time-compressed: the first byte within ``first_byte_timeout``, no
    attempt past ``router.deadline``, so a silent upstream is answered by the deadline."""
    first_byte, deadline = 0.3, 0.8
    data = config(fake, attempts=3, first_byte_timeout=first_byte)
    data["router"]["deadline"] = deadline
    async with configured_gateway(data) as (_, client):
        fake.script(delay=5, times=5)
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert deadline <= elapsed < deadline + first_byte
    assert len(fake.requests(MESSAGES)) == 3  # 0.3 s, 0.3 s, then the 0.2 s left
    assert all(q["body"]["stream"] is True for q in fake.requests(MESSAGES))


def test_with_the_defaults_a_hung_anthropic_upstream_is_answered_within_90_seconds() -> None:
    """A non-streamed Anthropic call is forced to stream by default, so the first-byte
    timeout and the deadline bound it (the test above shows them at work)."""
    provider = build_provider(ProviderConfig(name="p", type="anthropic", api_keys=["k"]), HttpClient())
    router = RouterConfig()
    assert provider.force_stream
    assert provider.first_byte_timeout < router.deadline <= 90 - provider.config.connect_timeout / 2


@pytest.mark.parametrize(("kind", "forced"), [("anthropic", True), ("openai-compatible", False), ("gemini", False)])
def test_each_kind_has_its_default_and_the_config_wins(kind: str, forced: bool) -> None:
    base = {"name": "p", "type": kind, "base_url": "http://127.0.0.1:1", "api_keys": ["k"]}
    assert build_provider(ProviderConfig(**base), HttpClient()).force_stream is forced
    assert build_provider(ProviderConfig(**base, force_stream=not forced), HttpClient()).force_stream is not forced


async def test_a_stream_that_stalls_midway_is_cut_and_retried(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, idle_timeout=0.3)) as (_, client):
        fake.script(words=10, stall=1.0, times=2)
        started = time.perf_counter()
        r = await client.post(MESSAGES, json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert len(fake.requests(MESSAGES)) == 2 and elapsed < 1.5


async def test_a_client_stream_that_stalls_midway_ends_with_the_error_event(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, idle_timeout=0.3)) as (_, client):
        fake.script(words=10, stall=1.0)
        body = anthropic_body(MODEL, stream=True)
        r = await client.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.text.startswith("event: message_start")
    last = r.text.rstrip("\n").rsplit("\n\n", 1)[-1]
    assert last.startswith("event: error\n")
    assert orjson.loads(last.split("data: ", 1)[1])["error"]["type"] == "timeout_error"
    assert len(fake.requests(MESSAGES)) == 1  # the answer had started: never retried


async def test_force_stream_false_keeps_the_non_streamed_call(fake: FakeUpstream) -> None:
    raw = orjson.dumps(anthropic_body(MODEL))
    async with configured_gateway(config(fake, force=False)) as (_, client):
        r = await client.post(MESSAGES, content=raw, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    sent = fake.last_request(MESSAGES)
    assert sent["raw_body"] == raw.decode() and "stream" not in sent["body"]


async def test_count_tokens_is_never_forced(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        r = await client.post(MESSAGES + "/count_tokens", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.json()["input_tokens"] > 0
    assert fake.last_request(MESSAGES + "/count_tokens")["body"] == body


# --------------------------------------------------------------------------- translated path


def comparable(answer: Any) -> Any:
    """A translated answer without what differs between two calls (ids, the creation time)."""
    if isinstance(answer, dict):
        return {k: comparable(v) for k, v in answer.items() if k not in ("id", "created")}
    if isinstance(answer, list):
        return [comparable(v) for v in answer]
    return answer


@pytest.mark.parametrize(
    ("path", "body", "headers", "upstream_path"),
    [
        ("/v1/chat/completions", chat_body(MODEL), OPENAI_HEADERS, MESSAGES),
        (MESSAGES, anthropic_body("qwen-local", max_tokens=99), ANTHROPIC_HEADERS, "/v1/chat/completions"),
        (MESSAGES, anthropic_body("flash", max_tokens=99), ANTHROPIC_HEADERS, ":streamGenerateContent"),
        (MESSAGES, anthropic_body("gpt-4o", max_tokens=99), ANTHROPIC_HEADERS, "/v1/chat/completions"),
        (MESSAGES, anthropic_body("gpt-5-mini", max_tokens=99), ANTHROPIC_HEADERS, "/v1/responses"),
    ],
    ids=[
        "chat-to-anthropic",
        "anthropic-to-openai-compatible",
        "anthropic-to-gemini",
        "anthropic-to-openai-chat",
        "anthropic-to-openai-responses",
    ],
)
@pytest.mark.parametrize("script", ["text_and_tool", "thinking"])
async def test_a_translated_call_is_collected_into_the_same_answer(
    fake: FakeUpstream, path: str, body: dict[str, Any], headers: dict[str, str], upstream_path: str, script: str
) -> None:
    scripted = {
        "text_and_tool": {"text": "Let me look.", "tool_calls": [{"name": "lookup", "input": {"q": "Paris"}}]},
        "thinking": {"thinking": "Hmm.", "text": "Paris.", "usage": USAGE},
    }[script]
    answers = []
    for force in (True, False):
        async with configured_gateway(config(fake, force=force)) as (_, client):
            fake.script(**scripted)
            r = await client.post(path, json=body, headers=headers)
            assert r.status_code == 200, r.text
            answers.append(r.json())
            sent = fake.requests()[-1]
            if upstream_path == ":streamGenerateContent":  # Gemini streams at its own endpoint
                expected = ":streamGenerateContent" if force else ":generateContent"
                assert sent["path"].endswith(expected)
            else:
                assert sent["path"] == upstream_path and bool(sent["body"].get("stream")) is force
    assert comparable(answers[0]) == comparable(answers[1])


async def test_a_translated_stream_cut_short_is_retried(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(words=20, end_after=3)
        r = await client.post("/v1/chat/completions", json=chat_body(MODEL), headers=OPENAI_HEADERS)
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "stop"
    assert len(fake.requests(MESSAGES)) == 2
