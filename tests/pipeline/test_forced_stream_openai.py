"""Forced internal streaming on the OpenAI passthrough paths (Chat Completions and Responses),
through the app in process with the fake upstream and the official ``openai`` SDK as client: a
non-streamed call goes upstream as a stream and the client gets the JSON the upstream would
have given it unstreamed; an error event is the upstream's error, a cut stream a failed attempt
(retried); compaction and ``force_stream: false`` keep the non-streamed call."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import (
    OPENAI_HEADERS,
    USAGE,
    chat_body,
    configured_gateway,
    provider_config,
    record_settlements,
    responses_body,
)

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
FAST = {"backoff": 0.01, "backoff_max": 0.02, "jitter": 0}


def config(fake: FakeUpstream, *, force: bool = True, attempts: int = 2, **timeouts: Any) -> dict[str, Any]:
    """An OpenAI provider (``force``: its ``force_stream``) serving Chat and Responses models."""
    return {
        "providers": [provider_config("oai", "openai", fake.openai_base_url, force_stream=force, **timeouts)],
        "models": [
            {"name": "gpt-4o", "provider": "oai"},
            {"name": "gpt-5-mini", "provider": "oai", "api": "responses"},
        ],
        "router": {"attempts": attempts, **FAST},
    }


def sdk(gw: Gateway) -> openai.AsyncOpenAI:
    """The official OpenAI SDK over the in-process gateway (ASGI), its retries off."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.asgi()), base_url="http://gw")
    return openai.AsyncOpenAI(base_url="http://gw/v1", api_key=MASTER_KEY, http_client=client, max_retries=0)


def direct(fake: FakeUpstream, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` sent straight to the fake upstream, not streamed: what an unforced relay returns."""
    headers = {"authorization": f"Bearer {UPSTREAM_KEY}"}
    r = httpx.post(fake.openai_base_url + path.removeprefix("/v1"), json=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    parsed: dict[str, Any] = r.json()
    return parsed


_IDS = re.compile(rb'"(chatcmpl-|resp_|msg_|fc_|rs_|ctc_|call_)[0-9A-Za-z]+"')


def without_ids(answer: dict[str, Any]) -> Any:
    """The answer with the ids the fake numbers (completion, response, item, call) blanked."""
    return orjson.loads(_IDS.sub(b'"ID"', orjson.dumps(answer)))


SCRIPTS = {
    "text": {"text": "The capital of France is Paris.", "usage": USAGE},
    "tool_calls": {
        "text": "Let me look.",
        "tool_calls": [{"name": "get_weather", "input": {"city": "Paris", "n": 2}}, {"name": "now", "input": {}}],
    },
    "tool_only": {"tool_calls": [{"name": "lookup", "input": {"q": 'a "quoted" word'}}]},
    "max_tokens": {"words": 40, "stop_reason": "max_tokens"},
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
async def test_a_chat_call_is_sent_as_a_stream_and_answered_whole(fake: FakeUpstream, name: str) -> None:
    body = chat_body("gpt-4o", "What is the capital of France?", max_completion_tokens=200)
    fake.script(**SCRIPTS[name])
    expected = direct(fake, CHAT, body)
    async with configured_gateway(config(fake)) as (gw, _):
        fake.script(**SCRIPTS[name])
        async with sdk(gw) as client:
            raw = await client.chat.completions.with_raw_response.create(**body)
            completion = raw.parse()
    sent = fake.requests(CHAT)[-1]
    assert sent["body"] == {**body, "stream": True, "stream_options": {"include_usage": True}}
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    answer = orjson.loads(raw.http_response.content)
    for choice in expected["choices"]:  # the stream carries no annotations: none were made
        if choice["message"].get("annotations") == []:
            del choice["message"]["annotations"]
    assert without_ids(answer) == without_ids(expected)
    assert completion.object == "chat.completion" and completion.usage is not None
    assert completion.choices[0].finish_reason == expected["choices"][0]["finish_reason"]


async def test_the_clients_stream_options_are_merged(fake: FakeUpstream) -> None:
    body = chat_body("gpt-4o", stream=False, stream_options={"include_obfuscation": False})
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(text="hi")
        r = await client.post(CHAT, json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hi"
    sent = fake.last_request(CHAT)["body"]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}


RESPONSE_SCRIPTS = {
    "text": {"text": "The capital of France is Paris.", "usage": USAGE},
    "tool_call": {"text": "Let me look.", "tool_calls": [{"name": "get_weather", "input": {"city": "Paris"}}]},
    "thinking": {"thinking": "Hmm.", "text": "Paris.", "usage": USAGE},
    "incomplete": {"words": 40, "stop_reason": "max_tokens"},
}


@pytest.mark.parametrize("name", sorted(RESPONSE_SCRIPTS))
async def test_a_responses_call_is_sent_as_a_stream_and_answered_whole(fake: FakeUpstream, name: str) -> None:
    body = responses_body("gpt-5-mini", "What is the capital of France?", max_output_tokens=200)
    fake.script(**RESPONSE_SCRIPTS[name])
    expected = direct(fake, RESPONSES, body)
    async with configured_gateway(config(fake)) as (gw, _):
        fake.script(**RESPONSE_SCRIPTS[name])
        async with sdk(gw) as client:
            raw = await client.responses.with_raw_response.create(**body)
            response = raw.parse()
    sent = fake.requests(RESPONSES)[-1]
    assert sent["body"] == {**body, "stream": True}
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/json"
    answer = orjson.loads(raw.http_response.content)
    assert without_ids(answer) == without_ids(expected)
    assert response.object == "response" and response.status == expected["status"]


@pytest.mark.parametrize(("path", "body"), [(CHAT, chat_body("gpt-4o")), (RESPONSES, responses_body("gpt-5-mini"))])
async def test_the_usage_is_read_from_the_collected_answer(
    fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, path: str, body: dict[str, Any]
) -> None:
    async with configured_gateway(config(fake)) as (gw, client):
        settled = record_settlements(gw, monkeypatch)
        fake.script(text="hi", usage={**USAGE, "cache_read_input_tokens": 3})
        r = await client.post(path, json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200, r.text
    ctx = settled.only
    assert ctx.usage is not None
    assert (ctx.usage.input_tokens, ctx.usage.output_tokens, ctx.usage.cache_read_tokens) == (37, 5, 3)
    assert ctx.ended and ctx.attempts[0].passthrough


@pytest.mark.parametrize(("path", "body"), [(CHAT, chat_body("gpt-4o")), (RESPONSES, responses_body("gpt-5-mini"))])
async def test_an_error_event_is_the_upstreams_error(fake: FakeUpstream, path: str, body: dict[str, Any]) -> None:
    async with configured_gateway(config(fake, attempts=1)) as (_, client):
        fake.script(error={"status": 429, "message": "Slow down", "after": 0})
        r = await client.post(path, json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["message"] == "Slow down"
    assert fake.last_request(path)["body"]["stream"] is True


@pytest.mark.parametrize(("path", "body"), [(CHAT, chat_body("gpt-4o")), (RESPONSES, responses_body("gpt-5-mini"))])
@pytest.mark.parametrize("failure", [{"end_after": 3}, {"break_after": 3}], ids=["ends-short", "connection-broken"])
async def test_a_cut_stream_is_retried(fake: FakeUpstream, path: str, body: dict[str, Any], failure: dict) -> None:
    async with configured_gateway(config(fake)) as (_, client):
        fake.script(words=20, **failure, times=2)
        r = await client.post(path, json=body, headers=OPENAI_HEADERS)
        assert (r.status_code, len(fake.requests(path))) == (502, 2), r.text
        fake.script(words=20, **failure)  # once: the retry succeeds
        r = await client.post(path, json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200 and len(fake.requests(path)) == 4


@pytest.mark.parametrize(("path", "body"), [(CHAT, chat_body("gpt-4o")), (RESPONSES, responses_body("gpt-5-mini"))])
async def test_a_hung_upstream_is_a_timeout(fake: FakeUpstream, path: str, body: dict[str, Any]) -> None:
    async with configured_gateway(config(fake, attempts=1, first_byte_timeout=0.3)) as (_, client):
        fake.script(delay=5)
        started = time.perf_counter()
        r = await client.post(path, json=body, headers=OPENAI_HEADERS)
        elapsed = time.perf_counter() - started
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert elapsed < 2


@pytest.mark.parametrize(("path", "body"), [(CHAT, chat_body("gpt-4o")), (RESPONSES, responses_body("gpt-5-mini"))])
async def test_force_stream_false_keeps_the_non_streamed_call(fake: FakeUpstream, path: str, body: dict) -> None:
    raw = orjson.dumps(body)
    async with configured_gateway(config(fake, force=False)) as (_, client):
        fake.script(text="hi")
        r = await client.post(path, content=raw, headers={**OPENAI_HEADERS, "content-type": "application/json"})
    assert r.status_code == 200
    sent = fake.last_request(path)
    assert sent["raw_body"] == raw.decode() and "stream" not in sent["body"]


async def test_compaction_is_never_forced(fake: FakeUpstream) -> None:
    body = {"model": "gpt-5-mini", "input": [{"role": "user", "content": "hi"}]}
    async with configured_gateway(config(fake)) as (_, client):
        r = await client.post(RESPONSES + "/compact", json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200, r.text
    assert "stream" not in fake.last_request(RESPONSES + "/compact")["body"]
