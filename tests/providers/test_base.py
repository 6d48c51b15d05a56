"""What every provider shares (``providers/base.py``): which client headers reach an upstream,
the order and precedence of the upstream request headers, passthrough URLs, redaction, and
``post`` turning an upstream's error answer into a typed error."""

from __future__ import annotations

import email.utils
import time

import pytest
from multidict import CIMultiDict
from starlette.datastructures import Headers

from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import WireProtocol
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import CLIENT_HEADERS, ClientHeaderPolicy, Provider, parse_retry_after, pass_headers
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.openai import OpenAIProvider
from modelgate.providers.openai_compatible import OpenAICompatibleProvider
from tests.providers.conftest import KEY, LOCAL, make

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
    assert pass_headers({}) == {} and pass_headers(()) == {}
    raw = tuple((name.encode(), value.encode()) for name, value in upstream.items())
    assert pass_headers(raw) == pass_headers(upstream)  # the raw pairs aiohttp keeps: the same choice


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


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),  # OpenAI's, more precise, first
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date gone by
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "later"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_every_spelling(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_retry_after_as_a_date_to_come() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert parse_retry_after({"retry-after": when}) == pytest.approx(120, abs=2)
