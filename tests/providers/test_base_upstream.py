"""``Provider.post`` and the relays against a real local upstream: typed errors with their
retry hints, redaction before parsing, frame-aligned relays, idle pings (split from test_base.py)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from modelgate import ir
from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamTimeout
from modelgate.protocols.anthropic import StreamDecoder as AnthropicDecoder
from modelgate.providers.base import Provider, Reply
from modelgate.providers.http import HttpClient
from tests.providers.conftest import CHUNKED_200, KEY, LAST_CHUNK, RawRequest, chunk, http_response, make

# ----------------------------------------------------------------------------- post against an upstream

ANTHROPIC_401 = {
    "type": "error",
    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    "request_id": "req_011CXYZ",
}


def anthropic_error(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


#: What the upstream answers, by request path.
ANSWERS: dict[str, bytes] = {
    "/429": http_response(
        429,
        [("Content-Type", "application/json"), ("Retry-After", "7"), ("anthropic-ratelimit-requests-remaining", "0")],
        anthropic_error("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        reason="Too Many Requests",
    ),
    "/500-no-retry": http_response(
        500, [("x-should-retry", "false")], anthropic_error("api_error", "Internal server error"), reason="ISE"
    ),
    "/400": http_response(400, [], anthropic_error("invalid_request_error", "max_tokens: Field required")),
    "/400-retry": http_response(400, [("X-Should-Retry", "true")], anthropic_error("invalid_request_error", "x")),
    "/400-maybe": http_response(400, [("x-should-retry", "maybe")], anthropic_error("invalid_request_error", "x")),
    "/503-date": http_response(
        503, [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")], anthropic_error("overloaded_error", "Overloaded")
    ),
    "/529-fraction": http_response(529, [("retry-after", "1.5")], anthropic_error("overloaded_error", "Overloaded")),
    "/401": http_response(
        401, [("request-id", "req_011CXYZ"), ("Content-Type", "application/json")], orjson.dumps(ANTHROPIC_401)
    ),
    "/401-leak": http_response(
        401,
        [],
        orjson.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {KEY}. You can find your API key at https://x.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        ),
    ),
    "/502-text": http_response(502, [("Content-Type", "text/plain")], f"bad gateway for key {KEY}\n".encode()),
    "/gemini-429": http_response(
        429,
        [],
        orjson.dumps(
            {
                "error": {
                    "code": 429,
                    "message": "Resource exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}],
                }
            }
        ),
    ),
    "/ok": http_response(
        200,
        [("Content-Type", "application/json"), ("request-id", "req_ok"), ("Set-Cookie", "a=b"), ("x-ratelimit-x", "1")],
        b'{"id":"msg_1"}',
    ),
}


async def answer(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    path, _, query = req.target.partition("?")
    if query == "header":  # Gemini's retry delay also in a header
        writer.write(ANSWERS[path].replace(b"HTTP/1.1 429 OK\r\n", b"HTTP/1.1 429 OK\r\nRetry-After: 7\r\n"))
    else:
        writer.write(ANSWERS[path])


@pytest.fixture
async def answering(raw_server):
    return await raw_server(answer)


async def post_error(p: Provider, path: str) -> UpstreamHTTPError:
    with pytest.raises(UpstreamHTTPError) as info:
        await p.post(p.base_url + path, b'{"model":"m"}', p.headers(p.keys.pick()))
    return info.value


async def test_a_429_with_retry_after(answering, http_client: HttpClient) -> None:
    err = await post_error(make("anthropic", http_client, base_url=answering.url), "/429")
    assert (err.status, err.kind, err.retryable, err.retry_after) == (429, ErrorKind.RATE_LIMIT, True, 7.0)
    assert err.message == "Number of request tokens has exceeded your per-minute rate limit"
    assert err.protocol == "anthropic"
    [req] = answering.requests
    assert (req.method, req.target, req.body) == ("POST", "/429", b'{"model":"m"}')
    assert (req.header("x-api-key"), req.header("anthropic-version")) == (KEY, "2023-06-01")


@pytest.mark.parametrize(
    ("path", "status", "kind", "retryable", "retry_after"),
    [
        ("/500-no-retry", 500, ErrorKind.API_ERROR, False, None),  # the upstream says no, whatever the status
        ("/400", 400, ErrorKind.INVALID_REQUEST, False, None),
        ("/400-retry", 400, ErrorKind.INVALID_REQUEST, True, None),  # … or yes
        ("/400-maybe", 400, ErrorKind.INVALID_REQUEST, False, None),  # not a word it knows: by status
        ("/503-date", 503, ErrorKind.OVERLOADED, True, 0.0),  # an HTTP date: the time left until then
        ("/529-fraction", 529, ErrorKind.OVERLOADED, True, 1.5),
    ],
)
async def test_retry_hints(
    answering, http_client: HttpClient, path: str, status: int, kind: ErrorKind, retryable: bool, retry_after
) -> None:
    err = await post_error(make("anthropic", http_client, base_url=answering.url), path)
    assert (err.status, err.kind, err.retryable, err.retry_after) == (status, kind, retryable, retry_after)


async def test_an_anthropic_401_keeps_its_body_and_request_id(answering, http_client: HttpClient) -> None:
    err = await post_error(make("anthropic", http_client, base_url=answering.url), "/401")
    assert (err.status, err.kind, err.retryable) == (401, ErrorKind.AUTHENTICATION, False)
    assert err.body == ANTHROPIC_401
    assert err.raw == orjson.dumps(ANTHROPIC_401)
    assert err.message == "invalid x-api-key"
    assert err.headers == {"request-id": "req_011CXYZ"}


async def test_a_500_passes_its_should_retry_header(answering, http_client: HttpClient) -> None:
    err = await post_error(make("anthropic", http_client, base_url=answering.url), "/500-no-retry")
    assert err.headers == {"x-should-retry": "false"}
    assert err.body == {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}


async def test_a_key_quoted_in_an_error_body_is_redacted_before_parsing(answering, http_client: HttpClient) -> None:
    p = make("openai-compatible", http_client, base_url=answering.url)
    err = await post_error(p, "/401-leak")
    assert (err.status, err.kind, err.protocol) == (401, ErrorKind.AUTHENTICATION, "openai_chat")
    assert err.message == "Incorrect API key provided: [redacted]. You can find your API key at https://x."
    assert err.body["error"]["message"] == err.message
    assert err.body["error"]["code"] == "invalid_api_key"
    assert KEY.encode() not in err.raw and b"[redacted]" in err.raw
    [req] = answering.requests
    assert req.target == "/401-leak" and req.header("authorization") == f"Bearer {KEY}"

    text = await post_error(p, "/502-text")
    assert (text.status, text.retryable, text.message) == (502, True, "bad gateway for key [redacted]")
    assert text.raw == b"bad gateway for key [redacted]\n"


async def test_gemini_retry_delay_from_the_body_or_the_header(answering, http_client: HttpClient) -> None:
    p = make("gemini", http_client, base_url=answering.url)
    err = await post_error(p, "/gemini-429")
    assert (err.status, err.kind, err.retryable, err.retry_after) == (429, ErrorKind.RATE_LIMIT, True, 9.0)
    assert err.message == "Resource exhausted"
    assert answering.requests[0].header("x-goog-api-key") == KEY
    assert (await post_error(p, "/gemini-429?header")).retry_after == 7.0  # the HTTP header wins


async def test_a_success_is_returned_unread(answering, http_client: HttpClient) -> None:
    p = make("anthropic", http_client, base_url=answering.url)
    resp = await p.post(p.base_url + "/ok", b"{}", p.headers(p.keys.pick()))
    assert resp.status == 200
    assert await resp.read() == b'{"id":"msg_1"}'
    reply = await p.relay(p.base_url + "/ok", b"{}", p.headers(None))
    assert reply == Reply(200, {"request-id": "req_ok", "x-ratelimit-x": "1"}, b'{"id":"msg_1"}')
    with pytest.raises(UpstreamHTTPError) as info:
        await p.relay(p.base_url + "/400", b"{}", p.headers(None))
    assert info.value.status == 400


async def test_post_uses_the_configured_read_timeout(raw_server, http_client: HttpClient) -> None:
    async def silent(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await raw_server(silent)
    p = make("anthropic", http_client, base_url=server.url, read_timeout=0.1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(UpstreamTimeout, match=r"^upstream anth timed out$"):
        await p.post(p.base_url + "/v1/messages", b"{}", p.headers(p.keys.pick()))
    assert 0.099 <= loop.time() - start < 1.0


async def test_relay_stream_is_frame_aligned(raw_server, http_client: HttpClient) -> None:
    go = asyncio.Event()

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = CHUNKED_200.replace(b"\r\n\r\n", b"\r\nrequest-id: req_s\r\nX-Powered-By: x\r\n\r\n", 1)
        writer.write(head + chunk(b"event: a\ndata: 1\n\nevent: b\nda"))
        await writer.drain()
        await go.wait()
        writer.write(chunk(b"ta: 2\n\n") + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    p = make("anthropic", http_client, base_url=server.url)
    reply = await p.relay_stream(p.base_url + "/v1/messages", b"{}", p.headers(p.keys.pick()))
    assert (reply.status, reply.headers) == (200, {"request-id": "req_s"})
    assert reply.first == b"event: a\ndata: 1\n\n"  # read before the reply is handed over
    go.set()
    assert [c async for c in reply.chunks] == [b"event: b\ndata: 2\n\n"]


async def test_events_ping_at_the_clients_idle_interval(raw_server) -> None:
    go = asyncio.Event()
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

    async def handler(req: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(CHUNKED_200)
        await writer.drain()
        await go.wait()
        writer.write(chunk(stop) + LAST_CHUNK)
        await writer.drain()

    server = await raw_server(handler)
    client = HttpClient(idle_ping=0.05)
    await client.start()
    try:
        p = make("anthropic", client, base_url=server.url)
        events = p.events(await p.post(p.base_url + "/v1/messages", b"{}", {}), AnthropicDecoder())
        assert await anext(events) == [ir.Ping()]
        go.set()
        rest = [b async for b in events]
        assert rest[-1] == [ir.MessageStop()] and all(b == [ir.Ping()] for b in rest[:-1])
    finally:
        await client.close()
