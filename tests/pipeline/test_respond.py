"""The respond stage (``pipeline/respond.py``): a relayed stream that stops before its protocol's
end is ended for the client the way its protocol signals an error mid-stream (the bytes before
it untouched), and every answer names what served it in its headers."""

from __future__ import annotations

import re
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from modelgate.errors import UpstreamUnavailable
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    Settlements,
    anthropic_body,
    anthropic_error_event,
    chat_body,
    chat_error_frame,
    gemini_body,
    responses_body,
)

# --------------------------------------------------------------------------- streams cut short


def cut_short(provider: str) -> str:
    return f"upstream {provider} ended the stream before its protocol's end"


async def test_an_anthropic_stream_without_message_stop_ends_with_an_error_event(
    ac: httpx.AsyncClient, fake: FakeUpstream, settled: Settlements
) -> None:
    fake.script(words=12, end_after=5)
    r = await ac.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6", stream=True), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    frames = r.content.split(b"\n\n")[:-1]
    assert len(frames) == 6  # the upstream's five events, then the error
    assert b"message_stop" not in r.content
    assert r.content.endswith(anthropic_error_event(cut_short("anth")))
    ctx = settled.only
    assert isinstance(ctx.error, UpstreamUnavailable) and ctx.ended is False and ctx.status == 200


async def test_the_anthropic_sdk_sees_the_cut_as_an_error(gw: Any, fake: FakeUpstream) -> None:
    import httpx2

    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw.asgi()), base_url="http://gw")
    sdk = anthropic.AsyncAnthropic(base_url="http://gw", api_key=MASTER_KEY, http_client=client, max_retries=0)
    fake.script(words=12, end_after=5)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with sdk.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for _ in stream:
                pass
    assert cut_short("anth") in str(info.value)


async def test_a_chat_stream_without_done_ends_with_an_error_frame(
    ac: httpx.AsyncClient, fake: FakeUpstream, settled: Settlements
) -> None:
    fake.script(words=12, end_after=3)
    body = chat_body("qwen-local", stream=True, stream_options={"include_usage": True})
    r = await ac.post("/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    assert r.content.endswith(chat_error_frame(cut_short("local")))
    assert b"[DONE]" not in r.content
    assert isinstance(settled.only.error, UpstreamUnavailable)


async def test_a_responses_stream_without_completed_ends_with_response_failed(
    ac: httpx.AsyncClient, fake: FakeUpstream, settled: Settlements
) -> None:
    fake.script(words=12, end_after=4)
    r = await ac.post("/v1/responses", json=responses_body("gpt-4o", stream=True), headers=OPENAI_HEADERS)
    assert r.status_code == 200
    events = [orjson.loads(f.split(b"data: ", 1)[1]) for f in r.content.split(b"\n\n") if b"data: " in f]
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    last = events[-1]
    assert last["type"] == "response.failed"
    assert last["sequence_number"] == events[-2]["sequence_number"] + 1
    assert last["response"]["id"] == events[0]["response"]["id"]  # the upstream's own response, failed
    assert last["response"]["error"]["message"] == cut_short("oai")


async def test_the_openai_sdk_sees_the_responses_cut_as_a_failed_response(gw: Any, fake: FakeUpstream) -> None:
    import httpx as plain

    client = plain.AsyncClient(transport=plain.ASGITransport(app=gw.asgi()), base_url="http://gw")
    sdk = openai.AsyncOpenAI(base_url="http://gw/v1", api_key=MASTER_KEY, http_client=client, max_retries=0)
    fake.script(words=12, end_after=4)
    events = [e async for e in await sdk.responses.create(model="gpt-4o", input="hi", stream=True)]
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None and events[-1].response.error.message == cut_short("oai")


async def test_a_gemini_stream_without_finish_reason_ends_with_an_error_frame(
    ac: httpx.AsyncClient, fake: FakeUpstream, settled: Settlements
) -> None:
    fake.script(words=12, end_after=2)
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    r = await ac.post(path, json=gemini_body(), headers=GEMINI_HEADERS)
    assert r.status_code == 200
    last = re.split(rb"\r?\n\r?\n", r.content.rstrip(b"\r\n"))[-1]
    assert orjson.loads(last.removeprefix(b"data: ")) == {
        "error": {"code": 502, "message": cut_short("gem"), "status": "UNAVAILABLE"}
    }
    assert b"finishReason" not in r.content


async def test_a_whole_stream_gets_nothing_added(
    ac: httpx.AsyncClient, fake: FakeUpstream, settled: Settlements
) -> None:
    fake.script(words=12)
    r = await ac.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6", stream=True), headers=ANTHROPIC_HEADERS)
    assert r.content.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert settled.only.error is None and settled.only.ended is True


# --------------------------------------------------------------------------- what served


SERVED = [
    # path, body, headers, (x-modelgate-model, x-modelgate-provider, x-mapped-model)
    ("/v1/messages", anthropic_body("sonnet"), ANTHROPIC_HEADERS, ("sonnet", "anth", "claude-sonnet-4-6")),
    (
        "/v1/messages",
        anthropic_body("claude-opus-9", stream=True),
        ANTHROPIC_HEADERS,
        ("claude-opus-9", "anth", "claude-opus-9"),
    ),
    ("/v1/messages", anthropic_body("qwen-local"), ANTHROPIC_HEADERS, ("qwen-local", "local", "qwen2.5:0.5b")),
    (
        "/v1/messages",
        anthropic_body("flash", stream=True),
        ANTHROPIC_HEADERS,
        ("flash", "gem", "gemini-2.5-flash"),
    ),
    (
        "/v1/messages/count_tokens",
        {"model": "qwen-local", "messages": [{"role": "user", "content": "hi"}]},
        ANTHROPIC_HEADERS,
        ("qwen-local", "local", "qwen2.5:0.5b"),
    ),
    ("/v1/chat/completions", chat_body("gpt-4o"), OPENAI_HEADERS, ("gpt-4o", "oai", "gpt-4o")),
    (
        "/v1/responses",
        responses_body("claude-sonnet-4-6", stream=True),
        OPENAI_HEADERS,
        ("claude-sonnet-4-6", "anth", "claude-sonnet-4-6"),
    ),
    (
        "/v1beta/models/flash:generateContent",
        gemini_body(),
        GEMINI_HEADERS,
        ("flash", "gem", "gemini-2.5-flash"),
    ),
]


@pytest.mark.parametrize(("path", "body", "headers", "served"), SERVED)
async def test_every_answer_names_what_served_it(
    ac: httpx.AsyncClient, path: str, body: Any, headers: Any, served: tuple[str, str, str]
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200
    assert (r.headers["x-modelgate-model"], r.headers["x-modelgate-provider"], r.headers["x-mapped-model"]) == served
