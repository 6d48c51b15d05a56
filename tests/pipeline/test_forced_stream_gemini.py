"""Forced internal streaming on the Gemini passthrough, through the app in process with the
fake upstream: a non-streamed ``:generateContent`` to a Gemini provider with ``force_stream``
goes upstream as ``:streamGenerateContent?alt=sse`` (same body, the client's other query
parameters kept) and the client — the official google-genai SDK — gets the answer the
upstream returns unstreamed; an error frame is the upstream's error, a stream cut short a
failed attempt (retried); a count and ``force_stream`` unset go as they came."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import GEMINI_HEADERS, USAGE, configured_gateway, provider_config, record_settlements

MODEL = "gemini-2.5-flash"
GENERATE = f"/v1beta/models/{MODEL}:generateContent"
STREAM = f"/v1beta/models/{MODEL}:streamGenerateContent"
FAST = {"backoff": 0.01, "backoff_max": 0.02, "jitter": 0}


def config(fake: FakeUpstream, attempts: int = 2, *, force: bool | None = True) -> dict[str, Any]:
    """One Gemini provider (``force``: its ``force_stream``, None for the default)."""
    extra = {} if force is None else {"force_stream": force}
    return {
        "providers": [provider_config("gem", "gemini", fake.base_url, **extra)],
        "models": [{"name": MODEL, "provider": "gem"}],
        "router": {"attempts": attempts, **FAST},
    }


def sdk(gw: Gateway) -> genai.Client:
    """The official google-genai SDK over the in-process gateway (ASGI), its retries off."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.asgi()), base_url="http://gw")
    options = types.HttpOptions(
        base_url="http://gw",
        api_version="v1beta",
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_async_client=client,
    )
    return genai.Client(api_key=MASTER_KEY, http_options=options)


def direct(fake: FakeUpstream, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` sent straight to the fake upstream, not streamed: what an unforced relay returns."""
    r = httpx.post(fake.base_url + GENERATE, json=body, headers={"x-goog-api-key": UPSTREAM_KEY}, timeout=10)
    assert r.status_code == 200, r.text
    return without_ids(r.json())


def without_ids(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "responseId"}


def body(thoughts: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": 200}
    if thoughts:
        config["thinkingConfig"] = {"includeThoughts": True}
    return {
        "contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}],
        "generationConfig": config,
    }


SCRIPTS: dict[str, tuple[dict[str, Any], bool]] = {
    "text": ({"text": "The capital of France is Paris, on the Seine.", "usage": USAGE}, False),
    "function_calls": (
        {
            "text": "Let me look.",
            "tool_calls": [{"name": "get_weather", "input": {"city": "Paris"}}, {"name": "now", "input": {}}],
        },
        False,
    ),
    "thinking_hidden": ({"thinking": "Paris is the capital.", "text": "Paris."}, False),
    "thinking_shown": ({"thinking": "Paris is the capital; the Seine runs through it.", "text": "Paris."}, True),
    "max_tokens": ({"text": "A long answer cut short here", "stop_reason": "max_tokens"}, False),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_a_non_streamed_call_is_sent_as_a_stream_and_answered_whole(fake: FakeUpstream, name: str) -> None:
    script, thoughts = SCRIPTS[name]
    async with configured_gateway(config(fake)) as (gw, _):
        fake.script(**script)
        client = sdk(gw)
        tools = [types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])]
        generation = types.GenerateContentConfig(
            max_output_tokens=200,
            thinking_config=types.ThinkingConfig(include_thoughts=True) if thoughts else None,
            tools=tools if name == "function_calls" else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        got = await client.aio.models.generate_content(
            model=MODEL, contents="What is the capital of France?", config=generation
        )
    sent = fake.requests()[-1]
    assert sent["path"] == STREAM and sent["query"] == "alt=sse"
    fake.script(**script)
    expected = direct(fake, sent["body"])  # the same request, not streamed
    want = types.GenerateContentResponse.model_validate(expected)
    assert got.sdk_http_response is not None
    got.sdk_http_response = None
    got.response_id = None
    assert got.model_dump(exclude_none=True) == want.model_dump(exclude_none=True)
    assert got.candidates and got.candidates[0].finish_reason == want.candidates[0].finish_reason  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_the_json_is_what_the_upstream_returns_unstreamed(fake: FakeUpstream, name: str) -> None:
    script, thoughts = SCRIPTS[name]
    request = body(thoughts)
    fake.script(**script)
    expected = direct(fake, request)
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(**script)
        r = await client.post(GENERATE + "?key=" + MASTER_KEY + "&trace=on&alt=json", json=request)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert int(r.headers["content-length"]) == len(r.content)
    answer = r.json()
    assert answer["responseId"] and without_ids(answer) == expected
    sent = fake.requests()[-1]
    assert sent["path"] == STREAM and sent["query"] == "alt=sse&trace=on"  # the key never goes upstream
    assert sent["raw_body"] == orjson.dumps(request).decode()  # the client's bytes, unchanged


async def test_the_usage_is_read_from_the_collected_answer(fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    async with configured_gateway(config(fake)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(text="hi", usage={**USAGE, "cache_read_input_tokens": 3})
        r = await client.post(GENERATE, json=body(), headers=GEMINI_HEADERS)
    assert r.status_code == 200
    ctx = settled.only
    assert ctx.usage is not None
    assert (ctx.usage.output_tokens, ctx.usage.cache_read_tokens) == (USAGE["output_tokens"], 3)
    assert (ctx.ended, ctx.stop_reason, ctx.attempts[0].passthrough) == (True, "STOP", True)


async def test_force_stream_unset_goes_as_it_came(fake: FakeUpstream) -> None:
    raw = orjson.dumps(body())
    async with configured_gateway(config(fake, force=None)) as (_, client):
        r = await client.post(GENERATE, content=raw, headers=GEMINI_HEADERS)
    assert r.status_code == 200 and r.json()["candidates"][0]["finishReason"] == "STOP"
    sent = fake.requests()[-1]
    assert (sent["path"], sent["query"], sent["raw_body"]) == (GENERATE, "", raw.decode())


async def test_a_streamed_call_and_a_count_are_never_changed(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        r = await client.post(STREAM, json=body(), headers=GEMINI_HEADERS)
        assert r.status_code == 200 and r.text.lstrip().startswith("[")
        assert (fake.requests()[-1]["path"], fake.requests()[-1]["query"]) == (STREAM, "")
        count = f"/v1beta/models/{MODEL}:countTokens"
        r = await client.post(count, json={"contents": body()["contents"]}, headers=GEMINI_HEADERS)
    assert r.status_code == 200 and r.json()["totalTokens"] > 0
    assert fake.requests()[-1]["path"] == count


async def test_an_error_frame_first_is_the_upstreams_error(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, attempts=1)) as (_, client):
        fake.script(error={"status": 503, "after": 0})
        r = await client.post(GENERATE, json=body(), headers=GEMINI_HEADERS)
    assert r.status_code == 503
    assert r.json()["error"]["status"] == "UNAVAILABLE"
    assert fake.requests()[-1]["path"] == STREAM


@pytest.mark.parametrize(
    "failure",
    [{"end_after": 2}, {"break_after": 2}, {"error": {"status": 503, "after": 2}}],
    ids=["ends-before-finish-reason", "connection-broken", "error-frame-midway"],
)
async def test_a_stream_that_fails_midway_is_retried(fake: FakeUpstream, failure: dict[str, Any]) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(words=30, **failure)  # once: the retry succeeds
        r = await client.post(GENERATE, json=body(), headers=GEMINI_HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["finishReason"] == "STOP"
    assert [q["path"] for q in fake.requests()] == [STREAM, STREAM]


async def test_an_error_answer_before_the_stream_passes_as_google_wrote_it(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, attempts=1)) as (_, client):
        fake.script(error={"status": 429, "retry_after": 7})
        r = await client.post(GENERATE, json=body(), headers=GEMINI_HEADERS)
    assert r.status_code == 429
    error = r.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error["details"]


async def test_a_hung_upstream_is_a_timeout(fake: FakeUpstream) -> None:
    data = config(fake, attempts=1)
    data["providers"][0]["first_byte_timeout"] = 0.3
    async with configured_gateway(data) as (_, client):
        fake.script(delay=3)
        r = await client.post(GENERATE, json=body(), headers=GEMINI_HEADERS)
    assert r.status_code == 504 and r.json()["error"]["status"] == "DEADLINE_EXCEEDED"
    assert fake.requests()[-1]["path"] == STREAM
