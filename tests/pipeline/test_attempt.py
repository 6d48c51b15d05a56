"""The attempt stage: passthrough or translated per door × provider, and what a passthrough sends
upstream (the door's ``passthrough_query`` and ``passthrough_body``, the provider's
``passthrough_url`` and headers), as the fake upstream recorded it."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from modelgate import ir
from modelgate.app import Gateway
from modelgate.errors import UpstreamHTTPError
from modelgate.pipeline.attempt import Completed, Counted, Relayed, RelayedStream, Streamed, attempt, is_passthrough
from modelgate.pipeline.context import Operation
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    Settlements,
    anthropic_body,
    chat_body,
    gemini_body,
    make_request,
    responses_body,
    streamed,
)

MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
#: The header each upstream kind takes its key in, as the fake recorded it.
UPSTREAM_AUTH = {
    MESSAGES: ("x-api-key", UPSTREAM_KEY),
    CHAT: ("authorization", f"Bearer {UPSTREAM_KEY}"),
    RESPONSES: ("authorization", f"Bearer {UPSTREAM_KEY}"),
    GEMINI: ("x-goog-api-key", UPSTREAM_KEY),
}


def door_request(door: str, model: str, stream: bool = False) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path, JSON body, headers) of a generation call at ``door``."""
    if door == "anthropic":
        return MESSAGES, anthropic_body(model, stream=stream), ANTHROPIC_HEADERS
    if door == "openai_chat":
        return CHAT, chat_body(model, stream=stream), OPENAI_HEADERS
    if door == "openai_responses":
        return RESPONSES, responses_body(model, stream=stream), OPENAI_HEADERS
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}", gemini_body(), GEMINI_HEADERS


MATRIX = [
    # door, model, passthrough, where the upstream call went
    ("anthropic", "claude-sonnet-4-6", True, MESSAGES),
    ("anthropic", "qwen-local", False, CHAT),
    ("anthropic", "gpt-4o", False, CHAT),
    ("anthropic", "gpt-5-mini", False, RESPONSES),
    ("anthropic", "gemini-2.5-flash", False, GEMINI),
    ("openai_chat", "claude-sonnet-4-6", False, MESSAGES),
    ("openai_chat", "qwen-local", True, CHAT),
    ("openai_chat", "gpt-4o", True, CHAT),
    ("openai_chat", "gpt-5-mini", False, RESPONSES),  # a Responses-only model: translated
    ("openai_chat", "gemini-2.5-flash", False, GEMINI),
    ("openai_responses", "claude-sonnet-4-6", False, MESSAGES),
    ("openai_responses", "qwen-local", False, CHAT),
    ("openai_responses", "gpt-4o", True, RESPONSES),
    ("openai_responses", "gpt-5-mini", True, RESPONSES),
    ("openai_responses", "gemini-2.5-flash", False, GEMINI),
    ("gemini", "claude-sonnet-4-6", False, MESSAGES),
    ("gemini", "qwen-local", False, CHAT),
    ("gemini", "gpt-4o", False, CHAT),
    ("gemini", "gemini-2.5-flash", True, GEMINI),
]


@pytest.mark.parametrize(("door", "model", "passthrough", "upstream_path"), MATRIX)
def test_is_passthrough(gw: Gateway, door: str, model: str, passthrough: bool, upstream_path: str) -> None:
    assert is_passthrough(getattr(gw, door), gw.catalog.resolve(model)) is passthrough


@pytest.mark.parametrize(("door", "model", "passthrough", "upstream_path"), MATRIX)
async def test_the_path_taken_and_the_upstream_called(
    ac: httpx.AsyncClient, gw: Gateway, settled: Settlements, fake, door, model, passthrough, upstream_path
) -> None:
    path, body, headers = door_request(door, model)
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    [sent] = fake.requests()
    assert sent["path"] == upstream_path
    name, value = UPSTREAM_AUTH[upstream_path]
    assert sent["headers"][name] == value
    assert MASTER_KEY not in str(sent["headers"]) and MASTER_KEY not in sent["raw_body"]
    route = gw.catalog.resolve(model)
    [record] = settled.only.attempts
    assert (record.provider, record.upstream_model, record.passthrough) == (
        route.provider.name,
        route.upstream_model,
        passthrough,
    )
    forced = route.provider.force_stream and door == "anthropic"  # a non-streamed call, sent as a stream
    if passthrough and route.upstream_model == model:
        client_bytes = r.request.content.decode()  # the client's bytes, untouched
        assert sent["raw_body"] == (streamed(client_bytes) if forced else client_bytes)
    elif passthrough:
        assert sent["body"] == {**body, "model": route.upstream_model, **({"stream": True} if forced else {})}


# --------------------------------------------------------------------------- passthrough requests


async def test_anthropic_passthrough_keeps_query_headers_and_bytes(ac: httpx.AsyncClient, fake) -> None:
    raw = b'{"max_tokens": 16, "model": "claude-sonnet-4-6",  "x_unknown": {"b": 1, "a": 2},\n'
    raw += b' "messages": [{"role": "user", "content": "caf\\u00e9"}]}'
    headers = {**ANTHROPIC_HEADERS, "anthropic-beta": "tools-2024", "x-app": "cli", "x-other": "dropped"}
    r = await ac.post(MESSAGES + "?beta=true", content=raw, headers=headers)
    assert r.status_code == 200
    sent = fake.last_request(MESSAGES)
    assert sent["query"] == "beta=true"
    assert sent["raw_body"] == streamed(raw)  # the one change: forced to stream
    h = sent["headers"]
    assert (h["anthropic-beta"], h["anthropic-version"], h["x-app"], h["x-api-key"]) == (
        "tools-2024",
        "2023-06-01",
        "cli",
        UPSTREAM_KEY,
    )
    assert "x-other" not in h and "authorization" not in h


async def test_anthropic_passthrough_renames_an_aliased_model(ac: httpx.AsyncClient, fake) -> None:
    body = {
        "model": "sonnet",
        "max_tokens": 16,
        "metadata": {"user_id": "u"},
        "messages": [{"role": "user", "content": "x"}],
    }
    r = await ac.post(MESSAGES, json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    sent = fake.last_request(MESSAGES)
    assert sent["raw_body"] == streamed(orjson.dumps({**body, "model": "claude-sonnet-4-6"}))


async def test_anthropic_count_tokens_passes_through_to_its_endpoint(ac: httpx.AsyncClient, fake) -> None:
    body = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "count me"}]}
    r = await ac.post(MESSAGES + "/count_tokens", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.json()["input_tokens"] > 0
    sent = fake.last_request()
    assert sent["path"] == MESSAGES + "/count_tokens"
    assert sent["raw_body"] == r.request.content.decode()


async def test_chat_passthrough_drops_the_query_and_keeps_the_bytes(ac: httpx.AsyncClient, fake) -> None:
    raw = b'{"model":"qwen-local" , "messages":[{"role":"user","content":"hi"}], "seed": 7}'
    r = await ac.post(CHAT + "?api-version=1", content=raw, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    sent = fake.last_request(CHAT)
    assert sent["query"] == ""
    # The model is known upstream by another name: re-serialised with it, every other field kept in order.
    assert sent["raw_body"] == orjson.dumps({**orjson.loads(raw), "model": "qwen2.5:0.5b"}).decode()


async def test_chat_passthrough_of_a_same_name_model_is_byte_for_byte(ac: httpx.AsyncClient, fake) -> None:
    raw = b'{ "model" : "gpt-4o",\n "messages": [{"role":"user","content":"hi"}], "x_vendor": 1 }'
    r = await ac.post(CHAT, content=raw, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    assert fake.last_request(CHAT)["raw_body"] == raw.decode()


async def test_chat_passthrough_stream_asks_for_usage(ac: httpx.AsyncClient, fake) -> None:
    raw = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    r = await ac.post(CHAT, content=raw, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    assert fake.last_request(CHAT)["raw_body"] == '{"stream_options":{"include_usage":true},' + raw.decode()[1:]


async def test_chat_passthrough_stream_with_usage_asked_is_untouched(ac: httpx.AsyncClient, fake) -> None:
    raw = b'{"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": []}'
    raw = raw.replace(b"[]", b'[{"role": "user", "content": "hi"}]')
    r = await ac.post(CHAT, content=raw, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    assert fake.last_request(CHAT)["raw_body"] == raw.decode()


async def test_responses_passthrough_keeps_query_and_codex_headers(ac: httpx.AsyncClient, fake) -> None:
    headers = {**OPENAI_HEADERS, "originator": "codex_cli_rs", "session_id": "s-1", "x-unrelated": "no"}
    r = await ac.post(RESPONSES + "?trace=1", json=responses_body("gpt-4o"), headers=headers)
    assert r.status_code == 200
    sent = fake.last_request(RESPONSES)
    assert sent["query"] == "trace=1"
    assert (sent["headers"]["originator"], sent["headers"]["session_id"]) == ("codex_cli_rs", "s-1")
    assert "x-unrelated" not in sent["headers"]
    assert sent["raw_body"] == r.request.content.decode()


@pytest.mark.parametrize(
    ("client_path", "upstream_path", "upstream_query"),
    [
        (
            f"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={MASTER_KEY}",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            "alt=sse",
        ),
        (f"/v1/models/flash:generateContent?key={MASTER_KEY}", "/v1/models/gemini-2.5-flash:generateContent", ""),
        ("/api/gemini/v1beta/models/flash:countTokens", "/v1beta/models/gemini-2.5-flash:countTokens", ""),
    ],
)
async def test_gemini_passthrough_url_and_query(
    ac: httpx.AsyncClient, fake, client_path: str, upstream_path: str, upstream_query: str
) -> None:
    headers = {} if "key=" in client_path else GEMINI_HEADERS
    r = await ac.post(client_path, json=gemini_body(), headers=headers)
    assert r.status_code == 200, r.text
    [sent] = fake.requests()
    assert (sent["path"], sent["query"]) == (upstream_path, upstream_query)
    assert sent["raw_body"] == r.request.content.decode()  # the model is in the URL: the body is untouched
    assert sent["headers"]["x-goog-api-key"] == UPSTREAM_KEY


async def test_gemini_passthrough_renames_a_model_named_in_the_body(ac: httpx.AsyncClient, fake) -> None:
    body = {"model": "models/flash", **gemini_body()}
    r = await ac.post("/v1beta/models/flash:generateContent", json=body, headers=GEMINI_HEADERS)
    assert r.status_code == 200, r.text
    assert fake.last_request()["raw_body"] == orjson.dumps({**body, "model": "models/gemini-2.5-flash"}).decode()


# --------------------------------------------------------------------------- attempt() itself


async def call_attempt(gw: Gateway, door_name: str, model: str, body: dict[str, Any], path: str, query: str = ""):
    door = getattr(gw, door_name)
    operation = Operation.COUNT_TOKENS if path.endswith("count_tokens") else Operation.GENERATE
    if path.endswith("/compact"):
        operation = Operation.COMPACT
    request = make_request(path, headers={"content-type": "application/json"}, query=query)
    call = door.parse(request, orjson.dumps(body), operation)
    route = gw.catalog.resolve(model)
    return await attempt(request, door, call, route, route.provider.keys.pick())


async def drain(chunks) -> bytes:
    try:
        return b"".join([c async for c in chunks])
    finally:
        await chunks.aclose()


async def test_attempt_relays_a_whole_passthrough_answer(gw: Gateway, fake) -> None:
    answer = await call_attempt(gw, "anthropic", "claude-sonnet-4-6", anthropic_body("claude-sonnet-4-6"), MESSAGES)
    assert isinstance(answer, Relayed)
    assert answer.reply.status == 200
    assert orjson.loads(answer.reply.body)["type"] == "message"
    assert answer.reply.headers["request-id"].startswith("req_")  # the upstream's, kept for the client


async def test_attempt_opens_a_passthrough_stream_reading_its_first_chunk_only(gw: Gateway, fake) -> None:
    body = chat_body("qwen-local", "[[fake:words 5]] [[fake:stall 0.05]]", stream=True)
    answer = await call_attempt(gw, "openai_chat", "qwen-local", body, CHAT)
    assert isinstance(answer, RelayedStream)
    assert answer.reply.status == 200
    assert answer.first.startswith(b"data: {") and answer.first.endswith(b"\n\n")  # the stream has started
    assert answer.tap is not None and answer.tap.model is not None  # and the tap has read its start
    assert b"[DONE]" not in answer.first  # the rest is not read yet
    data = answer.first + await drain(answer.reply.chunks)
    assert data.endswith(b"data: [DONE]\n\n")
    assert b'"usage":{' in data  # asked for by the gateway; the tap hides it later, in respond


async def test_attempt_completes_a_translated_answer(gw: Gateway, fake) -> None:
    fake.script(text="translated answer", usage={"input_tokens": 12, "output_tokens": 2})
    answer = await call_attempt(gw, "anthropic", "qwen-local", anthropic_body("qwen-local"), MESSAGES)
    assert isinstance(answer, Completed)
    assert [b.text for b in answer.response.content if isinstance(b, ir.TextBlock)] == ["translated answer"]
    assert answer.response.usage == ir.Usage(input_tokens=12, output_tokens=2)
    sent = fake.last_request(CHAT)["body"]
    assert sent["model"] == "qwen2.5:0.5b"
    assert sent["max_tokens"] == 64  # below the model's cap of 4096: as asked


async def test_attempt_caps_max_tokens_at_the_models_limit(gw: Gateway, fake) -> None:
    body = anthropic_body("qwen-local", max_tokens=64_000)
    assert isinstance(await call_attempt(gw, "anthropic", "qwen-local", body, MESSAGES), Completed)
    assert fake.last_request(CHAT)["body"]["max_tokens"] == 4096


async def test_attempt_opens_a_translated_stream(gw: Gateway, fake) -> None:
    body = anthropic_body("gemini-2.5-flash", stream=True)
    answer = await call_attempt(gw, "anthropic", "gemini-2.5-flash", body, MESSAGES)
    assert isinstance(answer, Streamed)
    assert isinstance(answer.first[0], ir.MessageStart)  # the stream has started
    events = [*answer.first, *[e async for batch in answer.events for e in batch]]
    assert isinstance(events[0], ir.MessageStart) and isinstance(events[-1], ir.MessageStop)
    assert fake.last_request()["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


async def test_attempt_counts_tokens_locally_for_a_chat_upstream(gw: Gateway, fake) -> None:
    body = {"model": "qwen-local", "messages": [{"role": "user", "content": "count these words please"}]}
    answer = await call_attempt(gw, "anthropic", "qwen-local", body, MESSAGES + "/count_tokens")
    assert isinstance(answer, Counted) and answer.tokens > 0
    assert fake.requests() == []  # an estimate: no upstream call


async def test_attempt_compacts_through_a_translated_model(gw: Gateway, fake) -> None:
    fake.script(text="the summary")
    body = {"model": "claude-sonnet-4-6", "input": [{"role": "user", "content": "a long talk"}]}
    answer = await call_attempt(gw, "openai_responses", "claude-sonnet-4-6", body, RESPONSES + "/compact")
    assert isinstance(answer, Completed)
    assert fake.last_request()["path"] == MESSAGES


async def test_attempt_raises_the_upstreams_typed_error(gw: Gateway, fake) -> None:
    fake.script(error={"status": 429, "message": "slow down", "retry_after": 2})
    with pytest.raises(UpstreamHTTPError) as info:
        await call_attempt(gw, "anthropic", "claude-sonnet-4-6", anthropic_body("claude-sonnet-4-6"), MESSAGES)
    assert (info.value.status, info.value.retry_after, info.value.retryable) == (429, 2.0, True)
    assert info.value.message == "slow down"
