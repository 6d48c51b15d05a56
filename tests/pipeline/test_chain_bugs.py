"""The chain in process: a bug anywhere on the request path is logged with its traceback and
request id, and the client gets only its protocol's error envelope (split from test_chain.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelgate import ir
from modelgate.app import Gateway
from modelgate.errors import InternalError
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
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

# --------------------------------------------------------------------------- bugs


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret internals")


@pytest.mark.parametrize(
    ("door", "path", "body", "headers"),
    [
        ("anthropic", "/v1/messages", anthropic_body("qwen-local"), ANTHROPIC_HEADERS),
        ("openai_chat", "/v1/chat/completions", chat_body("claude-sonnet-4-6"), OPENAI_HEADERS),
        ("openai_responses", "/v1/responses", responses_body("claude-sonnet-4-6"), OPENAI_HEADERS),
        ("gemini", "/v1beta/models/qwen-local:generateContent", gemini_body(), GEMINI_HEADERS),
    ],
)
async def test_an_unexpected_exception_is_a_500_in_the_doors_envelope(
    gw: Gateway,
    ac: httpx.AsyncClient,
    settled: Settlements,
    request_log: RequestLogLines,
    monkeypatch: pytest.MonkeyPatch,
    fake,
    door: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    monkeypatch.setattr(getattr(gw, door), "decode", boom)
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 500
    request_id = gateway_id(r)
    message = f"internal error (request {request_id})"
    assert b"secret internals" not in r.content and b"Traceback" not in r.content
    expected = {
        "anthropic": {"type": "error", "error": {"type": "api_error", "message": message}, "request_id": request_id},
        "openai_chat": {"error": {"message": message, "type": "server_error", "param": None, "code": None}},
        "gemini": {"error": {"code": 500, "message": message, "status": "INTERNAL"}},
    }
    expected["openai_responses"] = expected["openai_chat"]
    assert r.json() == expected[door]
    [logged] = request_log.errors()
    assert logged.getMessage() == f"unexpected error (request {request_id})"
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert ctx.request_id == request_id and ctx.status == 500
    assert isinstance(ctx.error, InternalError) and ctx.error.message == message
    assert request_log.of(request_id)["error"] == "api_error"
    assert fake.requests() == []  # it failed before the upstream call


class FailingEncoder:
    """A door's stream encoder that fails on the ``fail_at``-th event it encodes."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.seen = 0

    def encode(self, event: ir.StreamEvent) -> bytes:
        self.seen += 1
        if self.seen == self.fail_at:
            raise RuntimeError("secret internals")
        return self.inner.encode(event)

    def error(self, err: Any) -> bytes:
        return self.inner.error(err)

    def end(self) -> bytes:
        return self.inner.end()


@pytest.mark.parametrize(
    ("door", "path", "body", "headers"),
    [
        ("anthropic", "/v1/messages", anthropic_body("qwen-local", stream=True), ANTHROPIC_HEADERS),
        ("openai_chat", "/v1/chat/completions", chat_body("claude-sonnet-4-6", stream=True), OPENAI_HEADERS),
    ],
)
async def test_an_unexpected_exception_inside_a_translated_stream(
    gw: Gateway,
    ac: httpx.AsyncClient,
    settled: Settlements,
    request_log: RequestLogLines,
    monkeypatch: pytest.MonkeyPatch,
    door: str,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    the_door = getattr(gw, door)
    real = the_door.stream_encoder
    monkeypatch.setattr(the_door, "stream_encoder", lambda call, rid: FailingEncoder(real(call, rid), fail_at=4))
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200
    request_id = gateway_id(r)
    message = f"internal error (request {request_id})"
    tail = anthropic_error_event(message) if door == "anthropic" else chat_error_frame(message)
    assert r.content.endswith(tail)
    assert b"secret internals" not in r.content and b"[DONE]" not in r.content
    [logged] = request_log.errors()
    assert logged.getMessage() == f"unexpected error in a stream (request {request_id})"
    assert isinstance(logged.exc_info[1], RuntimeError)
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert (ctx.status, ctx.ended) == (200, False)
    assert isinstance(ctx.error, InternalError) and ctx.error.message == message


async def test_an_unexpected_exception_inside_a_relayed_stream(
    gw: Gateway,
    ac: httpx.AsyncClient,
    settled: Settlements,
    request_log: RequestLogLines,
    monkeypatch: pytest.MonkeyPatch,
    fake,
) -> None:
    real = gw.anthropic.tap

    class FailingTap:
        rewrites = True  # sees every chunk (a tap that reads only the ends is handed them at the end)

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.fed = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def feed(self, chunk: bytes) -> bytes:
            self.fed += 1
            if self.fed > 1 and b"content_block_delta" in chunk:  # after the stream has started
                raise RuntimeError("secret internals")
            return self.inner.feed(chunk)

    monkeypatch.setattr(gw.anthropic, "tap", lambda call: FailingTap(real(call)))
    body = anthropic_body("claude-sonnet-4-6", "hi [[fake:words 30]] [[fake:stall 0.02]]", stream=True)
    r = await ac.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    ctx = settled.only
    message = f"internal error (request {ctx.request_id})"
    assert r.content.endswith(anthropic_error_event(message))
    assert b"secret internals" not in r.content
    [logged] = request_log.errors()
    assert logged.getMessage() == f"unexpected error in a relayed stream (request {ctx.request_id})"
    assert isinstance(ctx.error, InternalError) and ctx.ended is False
    assert settled == [(ctx, False)]
