"""The chain as a whole: one request id per request (header, error body, log line), a context
that records the caller, the attempt, the usage and the end, settled exactly once however the
request ends, and bugs answered in the door's envelope with their traceback in the log."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.errors import UpstreamHTTPError, UpstreamUnavailable
from modelgate.pipeline.context import CLIENT_CLOSED, RequestContext
from modelgate.policy.auth import Principal
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    SCRIPTED_USAGE,
    USAGE,
    RequestLogLines,
    Settlements,
    anthropic_body,
    anthropic_error_event,
    chat_body,
    chat_error_frame,
    gateway_id,
    gemini_body,
    responses_body,
)

# --------------------------------------------------------------------------- one request id


EARLY = [  # (door, path, content, headers): a body the door cannot parse
    ("anthropic", "/v1/messages", b"{oops", ANTHROPIC_HEADERS),
    ("openai_chat", "/v1/chat/completions", b"{oops", OPENAI_HEADERS),
    ("openai_responses", "/v1/responses", b"{oops", OPENAI_HEADERS),
    ("gemini", "/v1beta/models/gemini-2.5-flash:generateContent", b"{oops", GEMINI_HEADERS),
]


@pytest.mark.parametrize(("door", "path", "content", "headers"), EARLY)
async def test_an_early_failure_has_one_request_id(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines, door, path, content, headers
) -> None:
    r = await ac.post(path, content=content, headers=headers)
    assert r.status_code == 400
    request_id = gateway_id(r)
    assert request_id.startswith("req_") and len(request_id) == 28
    if door == "anthropic":
        assert r.json()["request_id"] == request_id
    ctx = settled.only
    assert ctx.request_id == request_id and ctx.door == door
    line = request_log.of(request_id)
    assert (line["status"], line["error"], line["attempts"], line["model"]) == (400, "invalid_request", 0, None)
    assert line["caller"] == "master"  # authenticated before the body was parsed


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/messages", anthropic_body("gpt-nothing"), ANTHROPIC_HEADERS),
        ("/v1/chat/completions", chat_body("gpt-nothing"), OPENAI_HEADERS),
        ("/v1/responses", responses_body("gpt-nothing"), OPENAI_HEADERS),
        ("/v1beta/models/gpt-nothing:generateContent", gemini_body(), GEMINI_HEADERS),
    ],
)
async def test_a_plan_failure_has_one_request_id(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines, path, body, headers
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 404
    request_id = gateway_id(r)
    if path == "/v1/messages":
        assert r.json()["request_id"] == request_id
    assert settled.only.request_id == request_id
    line = request_log.of(request_id)
    assert (line["status"], line["error"], line["model"], line["provider"]) == (404, "not_found", "gpt-nothing", None)


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/messages", anthropic_body("qwen-local", "hi [[fake:error 500]]"), ANTHROPIC_HEADERS),
        ("/v1/messages", anthropic_body("qwen-local", "hi [[fake:error 500]]", stream=True), ANTHROPIC_HEADERS),
        ("/v1/chat/completions", chat_body("claude-sonnet-4-6", "hi [[fake:error 500]]"), OPENAI_HEADERS),
        ("/v1beta/models/qwen-local:generateContent", gemini_body("hi [[fake:error 500]]"), GEMINI_HEADERS),
    ],
)
async def test_an_upstream_failure_has_one_request_id(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines, path, body, headers
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 500
    request_id = gateway_id(r)
    if path == "/v1/messages":
        assert r.json()["request_id"] == request_id
    ctx = settled.only
    assert ctx.request_id == request_id
    line = request_log.of(request_id)
    assert (line["status"], line["error"], line["attempts"], line["path"]) == (500, "api_error", 1, "translated")


async def test_a_translated_answer_carries_the_gateways_id(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines
) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("qwen-local"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.headers["request-id"] == settled.only.request_id
    assert request_log.of(r.headers["request-id"])["upstream_request_id"] is None


async def test_a_relayed_answer_carries_the_upstreams_id_and_the_log_line_both(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines, fake
) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    ctx = settled.only
    upstream_id = r.headers["request-id"]
    assert upstream_id != ctx.request_id
    assert ctx.attempt is not None and ctx.attempt.upstream_request_id == upstream_id
    line = request_log.of(ctx.request_id)
    assert line["upstream_request_id"] == upstream_id


async def test_a_relayed_upstream_error_is_correlated_in_the_log(
    ac: httpx.AsyncClient, settled: Settlements, request_log: RequestLogLines
) -> None:
    body = anthropic_body("claude-sonnet-4-6", "hi [[fake:error 529]]")
    r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 529
    client_id = r.headers["request-id"]
    assert r.json()["request_id"] == client_id
    ctx = settled.only
    assert client_id in (ctx.request_id, ctx.attempt.upstream_request_id)


# --------------------------------------------------------------------------- settle, and what ctx holds


def assert_one_attempt(ctx: RequestContext, provider: str, upstream_model: str, passthrough: bool, status: int) -> None:
    [record] = ctx.attempts
    assert (record.provider, record.upstream_model, record.key_id, record.passthrough, record.status) == (
        provider,
        upstream_model,
        f"{provider}#0",
        passthrough,
        status,
    )
    assert record.latency is not None and 0 < record.latency < 5
    assert ctx.duration is not None and ctx.duration >= record.latency
    assert UPSTREAM_KEY not in repr(ctx) and MASTER_KEY not in repr(ctx)


async def test_a_whole_passthrough_answer(ac: httpx.AsyncClient, settled: Settlements, fake) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    r = await ac.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert ctx.settled and ctx.caller == Principal("master", "master")
    assert (ctx.door, ctx.endpoint, ctx.status, ctx.error, ctx.client_gone) == (
        "anthropic",
        "messages",
        200,
        None,
        False,
    )
    assert_one_attempt(ctx, "anth", "claude-sonnet-4-6", True, 200)
    assert ctx.attempt.error is None
    assert (ctx.usage, ctx.ended, ctx.stop_reason) == (SCRIPTED_USAGE, True, "end_turn")
    assert ctx.first_byte is None  # only a stream records its first byte


async def test_a_passthrough_stream(ac: httpx.AsyncClient, settled: Settlements, fake) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    body = anthropic_body("claude-sonnet-4-6", stream=True)
    r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert_one_attempt(ctx, "anth", "claude-sonnet-4-6", True, 200)
    assert (ctx.status, ctx.usage, ctx.ended, ctx.error) == (200, SCRIPTED_USAGE, True, None)
    assert ctx.first_byte is not None and 0 < ctx.first_byte <= ctx.duration


async def test_a_translated_stream(ac: httpx.AsyncClient, settled: Settlements, fake) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    r = await ac.post("/v1/messages", json=anthropic_body("qwen-local", stream=True), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert_one_attempt(ctx, "local", "qwen2.5:0.5b", False, 200)
    assert (ctx.status, ctx.usage, ctx.ended, ctx.stop_reason, ctx.tap) == (200, SCRIPTED_USAGE, True, "end_turn", None)
    assert ctx.first_byte is not None


@pytest.mark.parametrize(
    ("path", "body", "headers", "provider", "passthrough", "tail"),
    [
        (
            "/v1/messages",
            anthropic_body("claude-sonnet-4-6", "hi [[fake:words 30]] [[fake:break 4]]", stream=True),
            ANTHROPIC_HEADERS,
            "anth",
            True,
            anthropic_error_event("upstream anth closed the connection unexpectedly"),
        ),
        (
            "/v1/messages",
            anthropic_body("qwen-local", "hi [[fake:words 30]] [[fake:break 4]]", stream=True),
            ANTHROPIC_HEADERS,
            "local",
            False,
            anthropic_error_event("upstream local closed the connection unexpectedly"),
        ),
        (
            "/v1/chat/completions",
            chat_body("qwen-local", "hi [[fake:words 30]] [[fake:break 4]]", stream=True),
            OPENAI_HEADERS,
            "local",
            True,
            chat_error_frame("upstream local closed the connection unexpectedly"),
        ),
        (
            "/v1/chat/completions",
            chat_body("claude-sonnet-4-6", "hi [[fake:words 30]] [[fake:break 4]]", stream=True),
            OPENAI_HEADERS,
            "anth",
            False,
            chat_error_frame("upstream anth closed the connection unexpectedly"),
        ),
        (
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            gemini_body("hi [[fake:words 30]] [[fake:break 4]]"),
            GEMINI_HEADERS,
            "gem",
            True,
            # in the upstream's own framing (Google ends its SSE frames with CRLF)
            b'data: {"error":{"code":502,"message":"upstream gem closed the connection unexpectedly",'
            b'"status":"UNAVAILABLE"}}\r\n\r\n',
        ),
    ],
)
async def test_a_stream_broken_by_the_upstream(
    ac: httpx.AsyncClient,
    settled: Settlements,
    request_log: RequestLogLines,
    path,
    body,
    headers,
    provider,
    passthrough,
    tail,
) -> None:
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200
    assert r.content.endswith(tail)
    assert r.content.count(b"closed the connection unexpectedly") == 1
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert (ctx.status, ctx.ended, ctx.client_gone) == (200, False, False)
    assert isinstance(ctx.error, UpstreamUnavailable)
    assert ctx.attempt.passthrough is passthrough and ctx.attempt.provider == provider
    assert ctx.attempt.status == 200 and ctx.attempt.error is None  # it failed after its status line
    line = request_log.of(ctx.request_id)
    assert (line["ended"], line["error"], line["status"]) == (False, "api_error", 200)


async def test_a_passthrough_responses_stream_broken_ends_with_response_failed(
    ac: httpx.AsyncClient, settled: Settlements
) -> None:
    body = responses_body("gpt-4o", "hi [[fake:words 30]] [[fake:break 6]]", stream=True)
    r = await ac.post("/v1/responses", json=body, headers=OPENAI_HEADERS)
    assert r.status_code == 200
    frames = [f for f in r.text.split("\n\n") if f]
    events = [orjson.loads(f.partition("data: ")[2]) for f in frames]
    last = events[-1]
    assert last["type"] == "response.failed"
    assert last["response"]["id"] == events[0]["response"]["id"]  # the upstream's own response
    assert last["sequence_number"] == events[-2]["sequence_number"] + 1
    ctx = settled.only
    assert (ctx.ended, isinstance(ctx.error, UpstreamUnavailable)) == (False, True)


async def test_a_broken_gemini_array_stream_records_the_error(ac: httpx.AsyncClient, settled: Settlements) -> None:
    body = gemini_body("hi [[fake:words 30]] [[fake:break 4]]")
    r = await ac.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=body, headers=GEMINI_HEADERS)
    assert r.status_code == 200
    elements = orjson.loads(r.content)  # still a whole JSON array: the error is its last element
    assert elements[-1] == {
        "error": {"code": 502, "message": "upstream gem closed the connection unexpectedly", "status": "UNAVAILABLE"}
    }
    ctx = settled.only
    assert ctx.ended is False
    assert isinstance(ctx.error, UpstreamUnavailable), "the request's log line must say it failed"


async def test_an_upstream_in_stream_error_on_a_relayed_stream_is_recorded(
    ac: httpx.AsyncClient, settled: Settlements
) -> None:
    body = anthropic_body("claude-sonnet-4-6", "hi [[fake:words 30]] [[fake:error 529 after=4]]", stream=True)
    r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and b"event: error" in r.content
    ctx = settled.only
    assert ctx.ended is False
    assert ctx.tap is not None and ctx.tap.failed
    assert ctx.error is ctx.tap.error and ctx.error is not None, "the request's log line must say it failed"
    assert (ctx.error.kind, ctx.error.status, ctx.error.protocol) == ("overloaded", 529, "anthropic")


@pytest.mark.parametrize(
    ("model", "stream", "passthrough", "provider", "upstream_model"),
    [
        ("claude-sonnet-4-6", False, True, "anth", "claude-sonnet-4-6"),
        ("claude-sonnet-4-6", True, True, "anth", "claude-sonnet-4-6"),
        ("qwen-local", False, False, "local", "qwen2.5:0.5b"),
        ("qwen-local", True, False, "local", "qwen2.5:0.5b"),
    ],
)
async def test_an_upstream_error(
    ac: httpx.AsyncClient, settled: Settlements, model, stream, passthrough, provider, upstream_model
) -> None:
    body = anthropic_body(model, "hi [[fake:error 500]]", stream=stream)
    r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 500 and r.json()["type"] == "error"
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert_one_attempt(ctx, provider, upstream_model, passthrough, 500)
    assert isinstance(ctx.error, UpstreamHTTPError) and ctx.attempt.error is ctx.error
    assert (ctx.status, ctx.ended, ctx.usage, ctx.first_byte) == (500, False, None, None)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unreachable_upstream(ac: httpx.AsyncClient, settled: Settlements, stream: bool) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("dead-model", stream=stream), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 502
    assert r.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "could not connect to upstream dead"},
        "request_id": r.headers["request-id"],
    }
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert_one_attempt(ctx, "dead", "dead-model", True, 502)
    assert isinstance(ctx.error, UpstreamUnavailable) and ctx.attempt.error is ctx.error
    assert ctx.attempt.upstream_request_id is None


# --------------------------------------------------------------------------- the client leaving


async def test_the_client_leaving_during_the_upstream_call(gw: Gateway, settled: Settlements, fake) -> None:
    body = orjson.dumps(anthropic_body("claude-sonnet-4-6", "hi [[fake:delay 0.5]]"))
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(k.encode(), v.encode()) for k, v in ANTHROPIC_HEADERS.items()]
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers, "query_string": b""}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("gw", 80), "root_path": "", "client": ("c", 1)}
    app = gw.asgi()
    await asyncio.wait_for(asyncio.get_running_loop().create_task(app(scope, receive, send)), timeout=5)
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert (ctx.status, ctx.client_gone, ctx.ended, ctx.error) == (CLIENT_CLOSED, True, False, None)
    assert sent[0]["status"] == CLIENT_CLOSED


async def test_the_client_leaving_mid_stream(gw: Gateway, settled: Settlements, request_log: RequestLogLines) -> None:
    body = orjson.dumps(anthropic_body("qwen-local", "hi [[fake:words 200]] [[fake:stall 0.02]]", stream=True))
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        while len(bodies) < 3:
            await asyncio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])

    headers = [(k.encode(), v.encode()) for k, v in ANTHROPIC_HEADERS.items()]
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers, "query_string": b""}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("gw", 80), "root_path": "", "client": ("c", 1)}
    await asyncio.wait_for(asyncio.get_running_loop().create_task(gw.asgi()(scope, receive, send)), timeout=5)
    assert settled == [(settled.only, True)]
    ctx = settled.only
    assert (ctx.status, ctx.client_gone, ctx.ended) == (CLIENT_CLOSED, True, False)
    assert b"message_stop" not in b"".join(bodies)
    line = request_log.of(ctx.request_id)
    assert (line["status"], line["client_gone"], line["ended"]) == (CLIENT_CLOSED, True, False)


async def test_the_client_leaving_while_sending_its_body(
    gw: Gateway, settled: Settlements, request_log: RequestLogLines
) -> None:
    messages = [{"type": "http.disconnect"}, {"type": "http.request", "body": b'{"model":', "more_body": True}]

    async def receive() -> dict[str, Any]:
        return messages.pop()

    async def send(message: dict[str, Any]) -> None:
        pass

    headers = [(k.encode(), v.encode()) for k, v in ANTHROPIC_HEADERS.items()]
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers, "query_string": b""}
    scope |= {"http_version": "1.1", "scheme": "http", "server": ("gw", 80), "root_path": "", "client": ("c", 1)}
    await gw.asgi()(scope, receive, send)
    ctx = settled.only
    assert request_log.errors() == []
    assert (ctx.status, ctx.client_gone, ctx.error) == (CLIENT_CLOSED, True, None)


async def test_the_log_line_is_written_once_per_request(
    ac: httpx.AsyncClient, request_log: RequestLogLines, caplog: pytest.LogCaptureFixture
) -> None:
    for body in (anthropic_body("claude-sonnet-4-6"), anthropic_body("qwen-local", stream=True)):
        r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
    assert len(request_log.records) == 2
    assert all(r.levelno == logging.INFO for r in request_log.records)
