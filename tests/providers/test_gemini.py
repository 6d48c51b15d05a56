"""The Gemini upstream adapter: URLs, headers, errors, and the JSON-array passthrough."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from modelgate.config import ProviderConfig
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols import WireProtocol
from modelgate.providers import build_provider
from modelgate.providers.gemini import GeminiProvider, _array_chunks
from modelgate.providers.http import HttpClient

KEY = "AIza-provider-key-123456"


def provider(**extra) -> GeminiProvider:
    config = ProviderConfig(name="gem", type="gemini", api_keys=[KEY], **extra)
    p = build_provider(config, HttpClient())
    assert isinstance(p, GeminiProvider) and p.protocols == frozenset({"gemini"})
    return p


def test_urls_follow_the_sdk_base_url() -> None:
    p = provider()
    assert p.base_url == "https://generativelanguage.googleapis.com"
    assert p.url("gemini-2.5-flash", "generateContent") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert p.url("m", "streamGenerateContent", sse=True, version="v1").endswith(
        "/v1/models/m:streamGenerateContent?alt=sse"
    )


def test_headers_carry_our_key_and_the_clients_identity_only() -> None:
    p = provider(headers={"x-extra": "1"})
    client = {
        "x-goog-api-key": "client-key",
        "user-agent": "GeminiCLI/1.0",
        "x-goog-api-client": "gl-node/22",
        "cookie": "c",
    }
    assert p.headers(p.keys.pick(), client, WireProtocol.GEMINI) == {
        "content-type": "application/json",
        "user-agent": "GeminiCLI/1.0",
        "x-goog-api-client": "gl-node/22",
        "x-extra": "1",
        "x-goog-api-key": KEY,
    }


def test_errors_keep_googles_body_and_retry_delay() -> None:
    p = provider()
    body = {
        "error": {
            "code": 429,
            "message": "q",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9s"}],
        }
    }
    err = p.error_from_upstream(429, json.dumps(body).encode(), {})
    assert (err.protocol, err.body, err.retry_after, err.kind) == ("gemini", body, 9.0, "rate_limit")
    assert err.retryable and err.code is None


def test_translated_requests_send_no_client_header() -> None:
    p = provider()
    assert p.headers(None) == {"content-type": "application/json"}
    assert p.headers(p.keys.pick(), {"user-agent": "x"}) == {"content-type": "application/json", "x-goog-api-key": KEY}


def test_redaction_of_our_key() -> None:
    assert provider().redact(f"bad key {KEY}".encode()) == b"bad key [redacted]"


async def chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise UpstreamUnavailable("upstream gem closed the connection unexpectedly")


async def collect(it: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in it]


async def test_array_passthrough_releases_whole_elements() -> None:
    out = await collect(_array_chunks(chunks(b'[{"a": 1', b"}\n,\r\n{", b'"b": 2}\n]')))
    assert out == [b"[", b'{"a": 1}\n,', b'\r\n{"b": 2}', b"\n]"]  # never half an element


async def test_array_passthrough_ends_a_broken_stream_with_an_error_element() -> None:
    out: list[bytes] = []
    with pytest.raises(UpstreamUnavailable):  # raised after the array is closed, for the request to record
        async for chunk in _array_chunks(chunks(b'[{"a": 1}\n,\r\n{"b": ', fail=True)):
            out.append(chunk)
    parsed = json.loads(b"".join(out))
    assert parsed[0] == {"a": 1}
    assert parsed[1]["error"] == {
        "code": 502,
        "message": "upstream gem closed the connection unexpectedly",
        "status": "UNAVAILABLE",
    }
    assert len(parsed) == 2
