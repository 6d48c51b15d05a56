"""What every provider shares (``providers/base.py``): which client headers reach an upstream,
the order and precedence of the upstream request headers, passthrough URLs, redaction, and
``post`` turning an upstream's error answer into a typed error."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from multidict import CIMultiDict
from starlette.datastructures import Headers

from modelgate import ir
from modelgate.config import ProviderConfig
from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamTimeout
from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import WireProtocol
from modelgate.protocols.anthropic import StreamDecoder as AnthropicDecoder
from modelgate.providers import build_provider
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import CLIENT_HEADERS, ClientHeaderPolicy, Provider, Reply, pass_headers
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.http import HttpClient
from modelgate.providers.openai import OpenAIProvider
from modelgate.providers.openai_compatible import OpenAICompatibleProvider
from tests.providers.conftest import CHUNKED_200, LAST_CHUNK, RawRequest, chunk, http_response

KEY = "sk-provider-key-0123456789"
LOCAL = "http://127.0.0.1:11434/v1"


def make(kind: str, client: HttpClient | None = None, **extra) -> Provider:
    if kind == "openai-compatible":
        extra.setdefault("base_url", LOCAL)
    extra.setdefault("api_keys", [KEY])
    return build_provider(ProviderConfig(name=kind[:4], type=kind, **extra), client or HttpClient())


# ----------------------------------------------------------------------------- client headers

#: Everything a client might send: credentials, hop-by-hop headers, protocol options, identity.
CLIENT = {
    "Host": "127.0.0.1:8080",
    "Authorization": "Bearer mg-master",
    "X-Api-Key": "mg-master",
    "x-goog-api-key": "mg-master",
    "Cookie": "session=1",
    "Content-Length": "42",
    "Content-Type": "application/json",
    "Connection": "keep-alive",
    "Accept-Encoding": "gzip",
    "User-Agent": "client/1.0",
    "Anthropic-Version": "2023-06-01",
    "anthropic-beta": "interleaved-thinking-2025-05-14,context-1m",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-anthropic-billing": "no",
    "anthropic": "no dash",
    "X-App": "cli",
    "x-claude-code-session-id": "cc-sess",
    "x-stainless-os": "Linux",
    "OpenAI-Beta": "responses=experimental",
    "openai-organization": "org-client",
    "originator": "codex_cli_rs",
    "session_id": "sid-1",
    "session-id": "sid-2",
    "conversation_id": "conv-1",
    "thread-id": "thr-1",
    "x-client-request-id": "creq-1",
    "X-Codex-Turn-Metadata": "{}",
    "x-codex": "no dash",
    "x-openai-subagent": "review",
    "x-goog-api-client": "gl-node/22 gccl/1",
    "x-goog-user-project": "proj",
}

SELECTED = {
    WireProtocol.ANTHROPIC: {
        "user-agent": "client/1.0",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14,context-1m",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "x-claude-code-session-id": "cc-sess",
    },
    WireProtocol.OPENAI_CHAT: {},
    WireProtocol.OPENAI_RESPONSES: {
        "user-agent": "client/1.0",
        "openai-beta": "responses=experimental",
        "originator": "codex_cli_rs",
        "session_id": "sid-1",
        "session-id": "sid-2",
        "conversation_id": "conv-1",
        "thread-id": "thr-1",
        "x-client-request-id": "creq-1",
        "x-codex-turn-metadata": "{}",
        "x-openai-subagent": "review",
    },
    WireProtocol.GEMINI: {"user-agent": "client/1.0", "x-goog-api-client": "gl-node/22 gccl/1"},
}


def test_every_protocol_has_a_policy() -> None:
    assert set(CLIENT_HEADERS) == set(WireProtocol)


@pytest.mark.parametrize("protocol", list(WireProtocol))
def test_client_header_policy_per_protocol(protocol: WireProtocol) -> None:
    selected = CLIENT_HEADERS[protocol].select(CLIENT)
    assert selected == SELECTED[protocol]
    assert list(selected) == list(SELECTED[protocol])  # in the client's order
    # names in any case, in any mapping type
    assert CLIENT_HEADERS[protocol].select(CIMultiDict((k.upper(), v) for k, v in CLIENT.items())) == selected


def test_client_header_policy_select() -> None:
    policy = ClientHeaderPolicy(frozenset({"x-one"}), ("x-pre-",))
    headers = {"X-One": "1", "x-pre-a": "a", "X-PRE-B": "b", "x-pre": "no", "x-one-more": "no", "x-two": "no"}
    assert policy.select(headers) == {"x-one": "1", "x-pre-a": "a", "x-pre-b": "b"}
    assert ClientHeaderPolicy(frozenset({"x-one"})).select(headers) == {"x-one": "1"}
    assert ClientHeaderPolicy(prefixes=("x-pre-",)).select(headers) == {"x-pre-a": "a", "x-pre-b": "b"}
    assert ClientHeaderPolicy().select(headers) == {}


# ----------------------------------------------------------------------------- Provider.headers


@pytest.mark.parametrize(
    ("kind", "cls", "auth"),
    [
        ("anthropic", AnthropicProvider, ("x-api-key", KEY)),
        ("openai", OpenAIProvider, ("authorization", f"Bearer {KEY}")),
        ("openai-compatible", OpenAICompatibleProvider, ("authorization", f"Bearer {KEY}")),
        ("gemini", GeminiProvider, ("x-goog-api-key", KEY)),
    ],
)
def test_auth_header_per_provider(kind: str, cls: type[Provider], auth: tuple[str, str]) -> None:
    p = make(kind)
    assert type(p) is cls
    assert p.auth_header(KEY) == auth
    base = [("content-type", "application/json")]
    if kind == "anthropic":
        base.append(("anthropic-version", "2023-06-01"))
    assert list(p.headers(p.keys.pick()).items()) == [*base, auth]  # the translated path
    assert list(p.headers(None).items()) == base
    # the client's own credentials never go upstream, on any path, with or without a key of ours
    for protocol in p.protocols:
        for key in (p.keys.pick(), None):
            sent = p.headers(key, CLIENT, protocol)
            assert "mg-master" not in str(sent)
            assert {"cookie", "host", "content-length", "connection", "accept-encoding"}.isdisjoint(sent)


def test_anthropic_headers_order_and_precedence() -> None:
    p = make("anthropic", headers={"anthropic-beta": "config-beta", "x-api-key": "config-key", "x-org": "acme"})
    client = {**CLIENT, "Anthropic-Version": "2024-10-22"}
    assert list(p.headers(p.keys.pick(), client, WireProtocol.ANTHROPIC).items()) == [
        ("content-type", "application/json"),
        ("anthropic-version", "2024-10-22"),  # the client's overrides the base one, in its place
        ("user-agent", "client/1.0"),
        ("anthropic-beta", "config-beta"),  # the config's overrides the client's
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-app", "cli"),
        ("x-claude-code-session-id", "cc-sess"),
        ("x-api-key", KEY),  # the key overrides the config's
        ("x-org", "acme"),
    ]
    # the translated path passes no client headers, even if given some
    translated = [
        ("content-type", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "config-beta"),
        ("x-api-key", KEY),
        ("x-org", "acme"),
    ]
    assert list(p.headers(p.keys.pick()).items()) == translated
    assert list(p.headers(p.keys.pick(), client).items()) == translated
    # with no key of ours, the config's auth header stays
    assert p.headers(None)["x-api-key"] == "config-key"


def test_openai_headers_per_protocol() -> None:
    p = make("openai", headers={"OpenAI-Organization": "org-ours", "originator": "gateway"})
    key = p.keys.pick()
    assert list(p.headers(key, CLIENT, WireProtocol.OPENAI_RESPONSES).items()) == [
        ("content-type", "application/json"),
        ("user-agent", "client/1.0"),
        ("openai-beta", "responses=experimental"),
        ("originator", "gateway"),
        ("session_id", "sid-1"),
        ("session-id", "sid-2"),
        ("conversation_id", "conv-1"),
        ("thread-id", "thr-1"),
        ("x-client-request-id", "creq-1"),
        ("x-codex-turn-metadata", "{}"),
        ("x-openai-subagent", "review"),
        ("openai-organization", "org-ours"),
        ("authorization", f"Bearer {KEY}"),
    ]
    assert list(p.headers(key, CLIENT, WireProtocol.OPENAI_CHAT).items()) == [
        ("content-type", "application/json"),
        ("openai-organization", "org-ours"),
        ("originator", "gateway"),
        ("authorization", f"Bearer {KEY}"),
    ]


def test_openai_compatible_headers_forward_nothing_from_the_client() -> None:
    p = make("openai-compatible", headers={"x-tenant": "t1"})
    assert list(p.headers(p.keys.pick(), CLIENT, WireProtocol.OPENAI_CHAT).items()) == [
        ("content-type", "application/json"),
        ("x-tenant", "t1"),
        ("authorization", f"Bearer {KEY}"),
    ]


def test_gemini_headers() -> None:
    p = make("gemini", headers={"x-goog-user-project": "ours"})
    assert list(p.headers(p.keys.pick(), CLIENT, WireProtocol.GEMINI).items()) == [
        ("content-type", "application/json"),
        ("user-agent", "client/1.0"),
        ("x-goog-api-client", "gl-node/22 gccl/1"),
        ("x-goog-user-project", "ours"),
        ("x-goog-api-key", KEY),
    ]


def test_a_provider_without_keys_sends_no_auth_header() -> None:
    p = make("openai-compatible", api_keys=[])
    key = p.keys.pick()
    assert key is None
    assert p.headers(key, CLIENT, WireProtocol.OPENAI_CHAT) == {"content-type": "application/json"}
    anth = make("anthropic", api_keys=[])
    assert anth.headers(anth.keys.pick(), CLIENT, WireProtocol.ANTHROPIC) == {
        "content-type": "application/json",
        **SELECTED[WireProtocol.ANTHROPIC],
    }


def test_the_headers_are_a_fresh_dict_each_time() -> None:
    p = make("anthropic")
    h = p.headers(p.keys.pick())
    h["x-api-key"] = "tampered"
    h["extra"] = "1"
    assert p.headers(None) == {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    assert AnthropicProvider.base_headers == {"content-type": "application/json", "anthropic-version": "2023-06-01"}


# ----------------------------------------------------------------------------- passthrough_url

ANTH = "https://api.anthropic.com"
OAI = "https://api.openai.com/v1"
GEM = "https://generativelanguage.googleapis.com"


def call(operation: Operation, stream: bool = False, api_version: str | None = None) -> Call:
    return Call(operation, b"{}", {}, "client-model", stream, api_version)


@pytest.mark.parametrize(
    ("kind", "protocol", "the_call", "url"),
    [
        ("anthropic", WireProtocol.ANTHROPIC, call(Operation.GENERATE), f"{ANTH}/v1/messages"),
        ("anthropic", WireProtocol.ANTHROPIC, call(Operation.GENERATE, stream=True), f"{ANTH}/v1/messages"),
        ("anthropic", WireProtocol.ANTHROPIC, call(Operation.COUNT_TOKENS), f"{ANTH}/v1/messages/count_tokens"),
        ("anthropic", WireProtocol.ANTHROPIC, call(Operation.COMPACT), f"{ANTH}/v1/messages"),
        ("openai", WireProtocol.OPENAI_CHAT, call(Operation.GENERATE), f"{OAI}/chat/completions"),
        ("openai", WireProtocol.OPENAI_CHAT, call(Operation.GENERATE, stream=True), f"{OAI}/chat/completions"),
        ("openai", WireProtocol.OPENAI_CHAT, call(Operation.COUNT_TOKENS), f"{OAI}/chat/completions"),
        ("openai", WireProtocol.OPENAI_CHAT, call(Operation.COMPACT), f"{OAI}/chat/completions"),
        ("openai", WireProtocol.OPENAI_RESPONSES, call(Operation.GENERATE), f"{OAI}/responses"),
        ("openai", WireProtocol.OPENAI_RESPONSES, call(Operation.GENERATE, stream=True), f"{OAI}/responses"),
        ("openai", WireProtocol.OPENAI_RESPONSES, call(Operation.COUNT_TOKENS), f"{OAI}/responses"),
        ("openai", WireProtocol.OPENAI_RESPONSES, call(Operation.COMPACT), f"{OAI}/responses/compact"),
        ("openai-compatible", WireProtocol.OPENAI_CHAT, call(Operation.GENERATE), f"{LOCAL}/chat/completions"),
        ("openai-compatible", WireProtocol.OPENAI_CHAT, call(Operation.GENERATE, True), f"{LOCAL}/chat/completions"),
        ("openai-compatible", WireProtocol.OPENAI_CHAT, call(Operation.COUNT_TOKENS), f"{LOCAL}/chat/completions"),
        ("openai-compatible", WireProtocol.OPENAI_CHAT, call(Operation.COMPACT), f"{LOCAL}/chat/completions"),
        ("gemini", WireProtocol.GEMINI, call(Operation.GENERATE), f"{GEM}/v1beta/models/up-model:generateContent"),
        (
            "gemini",
            WireProtocol.GEMINI,
            call(Operation.GENERATE, stream=True),
            f"{GEM}/v1beta/models/up-model:streamGenerateContent",
        ),
        (
            "gemini",
            WireProtocol.GEMINI,
            call(Operation.GENERATE, stream=True, api_version="v1"),
            f"{GEM}/v1/models/up-model:streamGenerateContent",
        ),
        (
            "gemini",
            WireProtocol.GEMINI,
            call(Operation.GENERATE, api_version="v1alpha"),
            f"{GEM}/v1alpha/models/up-model:generateContent",
        ),
        ("gemini", WireProtocol.GEMINI, call(Operation.COUNT_TOKENS), f"{GEM}/v1beta/models/up-model:countTokens"),
        (
            "gemini",
            WireProtocol.GEMINI,
            call(Operation.COUNT_TOKENS, stream=True, api_version="v1"),
            f"{GEM}/v1/models/up-model:countTokens",
        ),
        ("gemini", WireProtocol.GEMINI, call(Operation.COMPACT), f"{GEM}/v1beta/models/up-model:generateContent"),
    ],
)
def test_passthrough_url(kind: str, protocol: WireProtocol, the_call: Call, url: str) -> None:
    assert make(kind).passthrough_url(the_call, protocol, "up-model") == url


def test_passthrough_url_follows_the_configured_base_url() -> None:
    generate = call(Operation.GENERATE, stream=True)
    base = "http://127.0.0.1:9090"
    assert make("anthropic", base_url=base + "/").passthrough_url(generate, WireProtocol.ANTHROPIC, "m") == (
        base + "/v1/messages"
    )
    assert make("openai", base_url=base + "/v1").passthrough_url(generate, WireProtocol.OPENAI_RESPONSES, "m") == (
        base + "/v1/responses"
    )
    assert make("gemini", base_url=base).passthrough_url(generate, WireProtocol.GEMINI, "m") == (
        base + "/v1beta/models/m:streamGenerateContent"
    )


@pytest.mark.parametrize(
    ("kind", "natively"),
    [
        ("anthropic", {"anthropic"}),
        ("openai-compatible", {"openai_chat"}),
        ("gemini", {"gemini"}),
    ],
)
def test_passes_through_its_own_protocols_only(kind: str, natively: set[str]) -> None:
    p = make(kind)
    assert p.protocols == natively
    assert {str(w) for w in WireProtocol if p.passes_through(w, "any-model")} == natively


# ----------------------------------------------------------------------------- redact


def test_redact_removes_every_provider_key_of_eight_characters_or_more() -> None:
    p = make("openai-compatible", api_keys=["sk-first-secret", "12345678", "1234567", "sk-second-secret"])
    raw = b'{"error": "keys sk-first-secret, sk-second-secret and again sk-first-secret; 12345678 vs 1234567"}'
    assert p.redact(raw) == b'{"error": "keys [redacted], [redacted] and again [redacted]; [redacted] vs 1234567"}'
    assert p.redact(b"nothing secret here") == b"nothing secret here"
    assert make("openai-compatible", api_keys=[]).redact(b"sk-first-secret") == b"sk-first-secret"


# ----------------------------------------------------------------------------- pass_headers


def test_pass_headers_keeps_only_the_documented_response_headers() -> None:
    upstream = CIMultiDict(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", "10"),
            ("Set-Cookie", "a=b"),
            ("Server", "cloudflare"),
            ("cf-ray", "8f"),
            ("Request-Id", "req_1"),
            ("Retry-After", "3"),
            ("X-Should-Retry", "true"),
            ("x-request-id", "abc"),
            ("OpenAI-Processing-MS", "120"),
            ("openai-version", "2020-10-01"),
            ("openai-organization", "org-x"),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("Anthropic-RateLimit-Tokens-Reset", "2025-01-01T00:00:00Z"),
            ("anthropic-organization-id", "org"),
            ("X-RateLimit-Remaining-Tokens", "99"),
            ("x-ratelimit", "no dash"),
            ("ratelimit-remaining", "1"),
        ]
    )
    assert pass_headers(upstream) == {
        "request-id": "req_1",
        "retry-after": "3",
        "x-should-retry": "true",
        "x-request-id": "abc",
        "openai-processing-ms": "120",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:00Z",
        "x-ratelimit-remaining-tokens": "99",
    }
    assert pass_headers({}) == {}


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
        503, [("Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT")], anthropic_error("overloaded_error", "Overloaded")
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
        ("/503-date", 503, ErrorKind.OVERLOADED, True, None),  # an HTTP date is not a delay it reads
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
    assert await anext(reply.chunks) == b"event: a\ndata: 1\n\n"
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


def test_config_headers_in_any_case_never_send_one_name_twice() -> None:
    p = make("anthropic", headers={"X-Api-Key": "not-ours", "Anthropic-Version": "2024-01-01"})
    sent = p.headers(p.keys.pick(), {"anthropic-version": "2023-06-01"}, WireProtocol.ANTHROPIC)
    assert [name for name in sent if name.lower() in ("x-api-key", "anthropic-version")] == [
        "anthropic-version",
        "x-api-key",
    ]
    assert sent["anthropic-version"] == "2024-01-01" and sent["x-api-key"] != "not-ours"


def test_the_selection_from_an_asgi_request_reads_the_raw_pairs() -> None:
    raw = [
        (b"x-api-key", b"client-secret"),
        (b"anthropic-beta", b"a,b"),
        (b"user-agent", b"claude-cli/2.1"),
        (b"cookie", b"c"),
        (b"anthropic-version", b"2023-06-01"),
    ]
    policy = CLIENT_HEADERS[WireProtocol.ANTHROPIC]
    selected = policy.select(Headers(raw=raw))
    assert selected == {"anthropic-beta": "a,b", "user-agent": "claude-cli/2.1", "anthropic-version": "2023-06-01"}
    assert selected == policy.select({k.decode(): v.decode() for k, v in raw})
