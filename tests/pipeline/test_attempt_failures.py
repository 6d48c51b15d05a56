"""What the attempt stage counts as a failed attempt although the upstream said 200
(``pipeline/attempt.py``): a stream that sends nothing within the provider's
``first_byte_timeout`` (504 in each door's envelope), and answers that are not what the
protocol promises — a maintenance page, JSON cut short, a stream that is no stream (502).
Each is retried like any other failure, since nothing has reached the client yet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.config import ProviderConfig, RouterConfig
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

FIRST_BYTE = 0.3
PAGE = "<html><body><h1>Down for maintenance</h1></body></html>"


def config(fake: FakeUpstream, attempts: int = 1, force_stream: bool | None = None, **router: Any) -> dict[str, Any]:
    quick: dict[str, Any] = {"first_byte_timeout": FIRST_BYTE}
    if force_stream is not None:
        quick["force_stream"] = force_stream
    return {
        "providers": [
            provider_config("anth", "anthropic", fake.anthropic_base_url, **quick),
            provider_config("local", "openai-compatible", fake.openai_base_url, **quick),
            provider_config("oai", "openai", fake.openai_base_url, **quick),
            provider_config("gem", "gemini", fake.base_url, **quick),
        ],
        "models": [
            {"name": "claude-sonnet-4-6", "provider": "anth"},
            {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b"},
            {"name": "gpt-4o", "provider": "oai"},
            {"name": "gemini-2.5-flash", "provider": "gem"},
        ],
        "router": {"attempts": attempts, "backoff": 0.01, "backoff_max": 0.02, **router},
    }


@pytest.fixture
async def once(fake: FakeUpstream) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway that makes one attempt: each failure reaches the client as it is."""
    async with configured_gateway(config(fake)) as pair:
        yield pair


#: (door, path, body, headers) of a streamed generation at each door, for a model it passes through.
STREAMS = [
    ("anthropic", "/v1/messages", anthropic_body("claude-sonnet-4-6", stream=True), ANTHROPIC_HEADERS),
    ("openai_chat", "/v1/chat/completions", chat_body("qwen-local", stream=True), OPENAI_HEADERS),
    ("openai_responses", "/v1/responses", responses_body("gpt-4o", stream=True), OPENAI_HEADERS),
    (
        "gemini",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        gemini_body(),
        GEMINI_HEADERS,
    ),
]

#: The timeout in each door's envelope.
TIMEOUTS: dict[str, tuple[int, Any]] = {
    "anthropic": (504, {"type": "timeout_error", "message": "upstream anth sent nothing for 0.3 s"}),
    "openai_chat": (
        504,
        {"message": "upstream local sent nothing for 0.3 s", "type": "timeout_error", "param": None, "code": None},
    ),
    "openai_responses": (
        504,
        {"message": "upstream oai sent nothing for 0.3 s", "type": "timeout_error", "param": None, "code": None},
    ),
    "gemini": (
        504,
        {"code": 504, "message": "upstream gem sent nothing for 0.3 s", "status": "DEADLINE_EXCEEDED"},
    ),
}


def error_of(door: str, r: httpx.Response) -> Any:
    return r.json()["error"]


# --------------------------------------------------------------------------- the first byte


@pytest.mark.parametrize(("door", "path", "body", "headers"), STREAMS)
async def test_a_stream_that_sends_nothing_times_out_in_the_doors_envelope(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, door: str, path: str, body: Any, headers: Any
) -> None:
    _, client = once
    fake.script(delay=3)
    started = time.perf_counter()
    r = await client.post(path, json=body, headers=headers)
    assert FIRST_BYTE <= time.perf_counter() - started < 1.5
    status, error = TIMEOUTS[door]
    assert (r.status_code, error_of(door, r)) == (status, error)
    await gave_up_on(fake, 0)


async def gave_up_on(fake: FakeUpstream, index: int) -> None:
    """Wait until the fake has seen the gateway drop request ``index`` (it notices a moment later)."""
    for _ in range(100):
        if fake.requests()[index]["disconnected"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the gateway did not drop the upstream request")


async def test_a_translated_stream_that_sends_nothing_times_out_too(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = once
    fake.script(delay=3)
    r = await client.post("/v1/messages", json=anthropic_body("qwen-local", stream=True), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 504
    assert r.json()["error"] == {"type": "timeout_error", "message": "upstream local sent nothing for 0.3 s"}


async def test_a_timed_out_attempt_is_retried(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, attempts=2)) as (_, client):
        fake.script(delay=3)  # the first answer only
        body = anthropic_body("claude-sonnet-4-6", stream=True)
        r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.content.endswith(b'data: {"type":"message_stop"}\n\n')
    assert [q["disconnected"] for q in fake.requests("/v1/messages")] == [True, False]


async def test_once_started_a_stream_has_the_read_timeout_between_its_events(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = once
    fake.script(text="one", stall=FIRST_BYTE + 0.1)  # every gap longer than the first byte's
    body = anthropic_body("claude-sonnet-4-6", stream=True)
    r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.content.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


async def test_a_whole_answer_may_take_longer_than_the_first_byte(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, force_stream=False)) as (_, client):
        fake.script(delay=FIRST_BYTE * 2)  # the whole answer is its first byte: ``read_timeout`` applies
        r = await client.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200


async def test_a_forced_stream_has_the_first_byte_timeout(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream
) -> None:
    _, client = once  # an Anthropic provider forces streaming by default
    fake.script(delay=FIRST_BYTE * 2)
    r = await client.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert fake.last_request("/v1/messages")["body"]["stream"] is True


async def test_the_deadline_bounds_every_attempt_together(fake: FakeUpstream) -> None:
    async with configured_gateway(config(fake, attempts=10, deadline=1.0)) as (_, client):
        fake.script(delay=5, times=10)
        body = anthropic_body("claude-sonnet-4-6", stream=True)
        started = time.perf_counter()
        r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        elapsed = time.perf_counter() - started
    assert 1.0 <= elapsed < 1.5
    assert r.status_code == 504 and r.json()["error"]["type"] == "timeout_error"
    assert 3 <= len(fake.requests("/v1/messages")) <= 4  # 0.3 s each, the last one cut to what was left


def test_with_the_defaults_a_silent_upstream_is_answered_within_90_seconds() -> None:
    """Every attempt's wait for its first byte is cut to what is left of the deadline, and no
    attempt starts after it: the deadline bounds the whole (the test above shows it)."""
    provider = ProviderConfig(name="p", type="anthropic")
    router = RouterConfig()
    assert provider.first_byte_timeout < router.deadline <= 90 - provider.connect_timeout / 2


# --------------------------------------------------------------------------- answers that are not answers


@pytest.mark.parametrize(("force_stream", "expected"), [(False, "a JSON answer"), (True, "an event stream")])
async def test_a_maintenance_page_is_a_502(fake: FakeUpstream, force_stream: bool, expected: str) -> None:
    async with configured_gateway(config(fake, force_stream=force_stream)) as (_, client):
        fake.script(body=PAGE)
        r = await client.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 502
    assert r.json()["error"] == {
        "type": "api_error",
        "message": f"upstream anth answered 200 with {len(PAGE)} bytes starting {PAGE!r}, not {expected}",
    }


async def test_json_cut_short_is_a_502(once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream) -> None:
    _, client = once
    fake.script(end_after=0)  # the body cut in half, its content-length saying so
    r = await client.post("/v1/chat/completions", json=chat_body("gpt-4o"), headers=OPENAI_HEADERS)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["type"] == "server_error" and error["message"].startswith("upstream oai answered 200 with ")
    assert error["message"].endswith(", not a JSON answer")


@pytest.mark.parametrize("answer", [{"body": PAGE}, {"body": "[1, 2]"}, {"end_after": 0}])
async def test_a_translated_answer_that_is_not_one_is_a_502(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, answer: dict[str, Any]
) -> None:
    _, client = once
    fake.script(**answer)
    r = await client.post("/v1/messages", json=anthropic_body("qwen-local"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 502
    message = r.json()["error"]["message"]
    assert message.startswith("upstream local answered ")
    assert message.endswith((", not JSON", "that is not the protocol's answer (AttributeError)"))


@pytest.mark.parametrize(("door", "path", "body", "headers"), STREAMS)
async def test_a_page_for_a_stream_is_a_502(
    once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream, door: str, path: str, body: Any, headers: Any
) -> None:
    _, client = once
    fake.script(body=PAGE)
    r = await client.post(path, json=body, headers=headers)
    assert r.status_code == 502
    assert "not an event stream" in error_of(door, r)["message"]


async def test_an_empty_stream_is_a_502(once: tuple[Gateway, httpx.AsyncClient], fake: FakeUpstream) -> None:
    _, client = once
    fake.script(end_after=0)
    r = await client.post(
        "/v1/messages", json=anthropic_body("claude-sonnet-4-6", stream=True), headers=ANTHROPIC_HEADERS
    )
    assert r.status_code == 502
    assert r.json()["error"] == {"type": "api_error", "message": "upstream anth answered 200 with an empty stream"}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_broken_answer_is_retried(fake: FakeUpstream, stream: bool) -> None:
    async with configured_gateway(config(fake, attempts=2)) as (_, client):
        fake.script(body=PAGE)
        body = anthropic_body("claude-sonnet-4-6", stream=stream)
        r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert len(fake.requests("/v1/messages")) == 2
