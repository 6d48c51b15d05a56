"""The admit stage: the body read within its limit, the caller authenticated in each door's
places and refused in each door's words, and the door's own path check before either."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.errors import AuthenticationFailed, GatewayError, PermissionDenied, RequestTooLarge
from modelgate.pipeline.admit import read_body
from modelgate.policy.auth import Principal
from modelgate.protocols.gemini.errors import KEY_MISSING, key_invalid_body
from modelgate.protocols.openai_chat.errors import _MISSING_KEY
from tests.conftest import MASTER_KEY, MAX_BODY
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

WRONG_KEY = "sk-wrong-key-123456"
WRONG_KEY_MASKED = "sk-************3456"  # OpenAI's mask: 3 first, 4 last, one star per hidden character


class Body:
    """An ASGI ``receive`` that hands out ``chunks`` one by one and counts its calls."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls > len(self.chunks):
            raise AssertionError("the body was read past its end")
        more = self.calls < len(self.chunks)
        return {"type": "http.request", "body": self.chunks[self.calls - 1], "more_body": more}


def body_request(receive: Body, content_length: int | str | None = None):
    headers = {} if content_length is None else {"content-length": str(content_length)}
    return make_request("/v1/messages", headers=headers, receive=receive)


# --------------------------------------------------------------------------- read_body


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    receive = Body(b"x" * 11)
    with pytest.raises(RequestTooLarge) as info:
        await read_body(body_request(receive, 11), limit=10)
    assert receive.calls == 0
    assert info.value.message == "Request exceeds the maximum allowed number of bytes (10)"
    assert (info.value.status, info.value.code) == (413, "request_too_large")


async def test_undeclared_body_over_the_limit_is_refused_as_soon_as_it_passes_it() -> None:
    receive = Body(b"abcd", b"efgh", b"ijkl", b"mnop", b"qrst")
    with pytest.raises(RequestTooLarge) as info:
        await read_body(body_request(receive), limit=10)
    assert receive.calls == 3  # 12 bytes > 10: the last two chunks are never read
    assert info.value.message == "Request exceeds the maximum allowed number of bytes (10)"


async def test_a_body_longer_than_its_declared_length_is_refused_too() -> None:
    receive = Body(b"abcdef", b"ghijkl")
    with pytest.raises(RequestTooLarge):
        await read_body(body_request(receive, 5), limit=10)
    assert receive.calls == 2


async def test_unparseable_content_length_falls_back_to_counting() -> None:
    with pytest.raises(RequestTooLarge):
        await read_body(body_request(Body(b"x" * 11), "eleven"), limit=10)
    assert await read_body(body_request(Body(b"x" * 10), "ten"), limit=10) == b"x" * 10


@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_of_exactly_the_limit_is_accepted(declared: bool) -> None:
    receive = Body(b"abcd", b"efgh", b"ij")
    body = await read_body(body_request(receive, 10 if declared else None), limit=10)
    assert body == b"abcdefghij"
    assert receive.calls == 3


async def test_a_single_chunk_and_an_empty_body() -> None:
    chunk = b'{"model": "m"}'
    assert await read_body(body_request(Body(chunk), len(chunk)), limit=100) == chunk
    assert await read_body(body_request(Body(b"")), limit=100) == b""


async def chunked(total: int, size: int = 16_384) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


async def test_an_undeclared_body_over_the_limit_is_413_through_the_app(ac: httpx.AsyncClient, fake) -> None:
    # Spaces are valid JSON padding: the body would parse if it were read to the end.
    r = await ac.post("/v1/messages", content=chunked(MAX_BODY + 1), headers=ANTHROPIC_HEADERS)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json() == {
        "type": "error",
        "error": {
            "type": "request_too_large",
            "message": f"Request exceeds the maximum allowed number of bytes ({MAX_BODY})",
        },
        "request_id": r.headers["request-id"],
    }
    assert fake.requests() == []


async def test_a_body_of_exactly_the_limit_is_served_through_the_app(ac: httpx.AsyncClient, fake) -> None:
    raw = httpx.Request("POST", "http://gw", json=anthropic_body("claude-sonnet-4-6")).read()
    raw = raw[:-1] + b" " * (MAX_BODY - len(raw)) + b"}"
    assert len(raw) == MAX_BODY
    r = await ac.post("/v1/messages", content=raw, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert fake.last_request("/v1/messages")["raw_body"] == streamed(raw)  # forced to stream


async def test_the_caller_is_authenticated_before_the_body_is_read(ac: httpx.AsyncClient) -> None:
    r = await ac.post("/v1/messages", content=b"x" * (MAX_BODY + 1), headers={"x-api-key": "wrong"})
    assert (r.status_code, r.json()["error"]["type"]) == (401, "authentication_error")


# --------------------------------------------------------------------------- Admission.authenticate


MASTER = Principal(id="master", kind="master")


@pytest.mark.parametrize(
    ("door", "headers", "query"),
    [
        ("anthropic", {"x-api-key": MASTER_KEY}, ""),
        ("anthropic", {"authorization": f"Bearer {MASTER_KEY}"}, ""),
        ("anthropic", {"x-api-key": "wrong", "authorization": f"Bearer {MASTER_KEY}"}, ""),
        ("openai_chat", {"authorization": f"Bearer {MASTER_KEY}"}, ""),
        ("openai_chat", {"x-api-key": MASTER_KEY}, ""),
        ("openai_responses", {"authorization": f"bearer {MASTER_KEY}"}, ""),
        ("gemini", {"x-goog-api-key": MASTER_KEY}, ""),
        ("gemini", {}, f"key={MASTER_KEY}"),
        ("gemini", {"authorization": f"Bearer {MASTER_KEY}"}, ""),
    ],
)
async def test_authenticate_finds_the_key_in_the_doors_places(
    gw: Gateway, door: str, headers: dict[str, str], query: str
) -> None:
    request = make_request(headers=headers, query=query)
    assert await gw.admission.authenticate(request, getattr(gw, door)) == MASTER


async def test_authenticate_ignores_places_of_other_doors(gw: Gateway) -> None:
    with pytest.raises(GatewayError):
        await gw.admission.authenticate(make_request(headers={"x-goog-api-key": MASTER_KEY}), gw.anthropic)
    with pytest.raises(GatewayError):
        await gw.admission.authenticate(make_request(query=f"key={MASTER_KEY}"), gw.openai_chat)


@pytest.mark.parametrize("door", ["openai_chat", "openai_responses"])
async def test_authenticate_refuses_in_openais_words(gw: Gateway, door: str) -> None:
    with pytest.raises(AuthenticationFailed) as missing:
        await gw.admission.authenticate(make_request(), getattr(gw, door))
    assert (missing.value.message, missing.value.code) == (_MISSING_KEY, None)
    request = make_request(headers={"authorization": f"Bearer {WRONG_KEY}", "x-api-key": "other-wrong-key"})
    with pytest.raises(AuthenticationFailed) as wrong:
        await gw.admission.authenticate(request, getattr(gw, door))
    assert wrong.value.message == f"Incorrect API key provided: {WRONG_KEY_MASKED}."
    assert wrong.value.code == "invalid_api_key"


async def test_authenticate_refuses_in_googles_words(gw: Gateway) -> None:
    with pytest.raises(PermissionDenied) as missing:
        await gw.admission.authenticate(make_request(), gw.gemini)
    assert missing.value.message == KEY_MISSING
    with pytest.raises(AuthenticationFailed):
        await gw.admission.authenticate(make_request(query="key=wrong"), gw.gemini)


# --------------------------------------------------------------------------- refusals on the wire


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key: send it as x-api-key or Authorization: Bearer"),
        ({"x-api-key": WRONG_KEY}, "invalid x-api-key"),
        ({"authorization": f"Bearer {WRONG_KEY}"}, "invalid x-api-key"),
    ],
)
async def test_anthropic_refusal(ac: httpx.AsyncClient, settled: Settlements, headers, message: str) -> None:
    r = await ac.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=headers)
    assert r.status_code == 401
    request_id = r.headers["request-id"]
    assert r.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": message},
        "request_id": request_id,
    }
    ctx = settled.only
    assert (ctx.request_id, ctx.status, ctx.caller, ctx.call, ctx.attempts) == (request_id, 401, None, None, [])


OPENAI_ENDPOINTS = [
    ("/v1/chat/completions", chat_body("qwen-local")),
    ("/v1/responses", responses_body("gpt-4o")),
]


@pytest.mark.parametrize(("path", "body"), OPENAI_ENDPOINTS)
async def test_openai_missing_key(ac: httpx.AsyncClient, fake, path: str, body) -> None:
    r = await ac.post(path, json=body)
    assert r.status_code == 401
    assert r.headers["x-request-id"].startswith("req_")
    assert r.json() == {
        "error": {"message": _MISSING_KEY, "type": "invalid_request_error", "param": None, "code": None}
    }
    assert fake.requests() == []


@pytest.mark.parametrize(("path", "body"), OPENAI_ENDPOINTS)
async def test_openai_wrong_key_is_masked(ac: httpx.AsyncClient, fake, path: str, body) -> None:
    r = await ac.post(path, json=body, headers={"authorization": f"Bearer {WRONG_KEY}"})
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "message": f"Incorrect API key provided: {WRONG_KEY_MASKED}.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert WRONG_KEY not in r.text
    assert fake.requests() == []


async def test_openai_wrong_short_key_is_all_stars(ac: httpx.AsyncClient) -> None:
    r = await ac.post("/v1/chat/completions", json=chat_body("qwen-local"), headers={"x-api-key": "short"})
    assert r.json()["error"]["message"] == "Incorrect API key provided: *****."


GEMINI_URL = "/v1beta/models/gemini-2.5-flash:generateContent"


async def test_gemini_missing_key_is_403_permission_denied(ac: httpx.AsyncClient, fake) -> None:
    r = await ac.post(GEMINI_URL, json=gemini_body())
    assert r.status_code == 403
    assert r.json() == {"error": {"code": 403, "message": KEY_MISSING, "status": "PERMISSION_DENIED"}}
    assert r.headers["x-request-id"].startswith("req_")
    assert fake.requests() == []


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"x-goog-api-key": WRONG_KEY}, ""), ({}, f"?key={WRONG_KEY}"), ({"authorization": f"Bearer {WRONG_KEY}"}, "")],
)
async def test_gemini_wrong_key_is_400_api_key_invalid(ac: httpx.AsyncClient, headers, query: str) -> None:
    r = await ac.post(GEMINI_URL + query, json=gemini_body(), headers=headers)
    assert r.status_code == 400
    assert r.json() == key_invalid_body()
    assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_gemini_key_in_the_query_is_accepted(ac: httpx.AsyncClient) -> None:
    r = await ac.post(f"{GEMINI_URL}?key={MASTER_KEY}", json=gemini_body())
    assert r.status_code == 200
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"].endswith("You said: Hello there")


@pytest.mark.parametrize("headers", [{}, {"x-goog-api-key": WRONG_KEY}, GEMINI_HEADERS])
async def test_gemini_unknown_method_is_404_before_authentication(
    ac: httpx.AsyncClient, settled: Settlements, fake, headers
) -> None:
    r = await ac.post("/v1beta/models/gemini-2.5-flash:embedContent", json=gemini_body(), headers=headers)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": "Method not found: models/gemini-2.5-flash:embedContent is not served by this gateway.",
            "status": "NOT_FOUND",
        }
    }
    assert settled.only.caller is None and settled.only.endpoint == "embedContent"
    assert fake.requests() == []


async def test_admitted_call_is_recorded(ac: httpx.AsyncClient, settled: Settlements) -> None:
    r = await ac.post("/v1/chat/completions", json=chat_body("qwen-local", stream=True), headers=OPENAI_HEADERS)
    assert r.status_code == 200
    ctx = settled.only
    assert ctx.caller == MASTER
    assert ctx.call is not None
    assert (ctx.call.model, ctx.call.stream, ctx.call.operation.value) == ("qwen-local", True, "generate")
    assert ctx.call.raw == r.request.content
