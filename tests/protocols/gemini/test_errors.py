"""Google's error envelope, both ways: what a Gemini client gets for each gateway error, and what
a Gemini upstream's error answer becomes."""

from __future__ import annotations

import orjson
import pytest

from modelgate.errors import (
    AuthenticationFailed,
    ErrorKind,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RequestTooLarge,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelgate.protocols import gemini as codec
from tests.protocols.gateway_errors import overloaded, rate_limited

KEY_INVALID_DETAILS = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    },
    {
        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
        "locale": "en-US",
        "message": "API key not valid. Please pass a valid API key.",
    },
]


def upstream(status: int, kind: str, protocol: str = "anthropic", message: str = "m", **kw) -> UpstreamHTTPError:
    return UpstreamHTTPError(message, status=status, kind=ErrorKind(kind), protocol=protocol, **kw)


@pytest.mark.parametrize(
    ("err", "status", "name", "message"),
    [
        (InvalidRequest("bad"), 400, "INVALID_ARGUMENT", "bad"),
        (PermissionDenied("no"), 403, "PERMISSION_DENIED", "no"),
        (NotFound("gone"), 404, "NOT_FOUND", "gone"),
        (rate_limited("slow down"), 429, "RESOURCE_EXHAUSTED", "slow down"),
        (GatewayError("boom"), 500, "INTERNAL", "boom"),
        (UpstreamUnavailable("unreachable"), 502, "UNAVAILABLE", "unreachable"),
        (UpstreamTimeout("late"), 504, "DEADLINE_EXCEEDED", "late"),
        (overloaded("busy"), 503, "UNAVAILABLE", "busy"),
        (upstream(529, "overloaded"), 503, "UNAVAILABLE", "m"),
        (upstream(401, "authentication"), 401, "UNAUTHENTICATED", "m"),
        (upstream(402, "billing"), 400, "FAILED_PRECONDITION", "m"),
        (
            RequestTooLarge("Request exceeds the maximum allowed number of bytes (2048)"),
            400,
            "INVALID_ARGUMENT",
            "Request payload size exceeds the limit: 2048 bytes.",
        ),
        (
            upstream(400, "invalid_request", message="prompt is too long: 210000 tokens > 200000 maximum"),
            400,
            "INVALID_ARGUMENT",
            "The input token count (210000) exceeds the maximum number of tokens allowed (200000).",
        ),
        (
            upstream(
                400,
                "invalid_request",
                "openai",
                "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens",
            ),
            400,
            "INVALID_ARGUMENT",
            "The input token count (9000) exceeds the maximum number of tokens allowed (8192).",
        ),
    ],
)
def test_render(err: GatewayError, status: int, name: str, message: str) -> None:
    assert codec.render_error(err) == (status, {"error": {"code": status, "message": message, "status": name}})


def test_a_bad_key_is_googles_400() -> None:
    status, body = codec.render_error(AuthenticationFailed("invalid x-api-key"))
    assert status == 400
    assert body == {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": KEY_INVALID_DETAILS,
        }
    }


def test_retry_delay_becomes_retry_info() -> None:
    _, body = codec.render_error(upstream(429, "rate_limit", retry_after=2.5))
    assert body["error"]["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]


def test_a_gemini_upstreams_body_passes_through() -> None:
    body = {"error": {"code": 400, "message": "x", "status": "FAILED_PRECONDITION", "details": [{"a": 1}]}}
    err = upstream(400, "invalid_request", "gemini", body=body)
    assert codec.render_error(err) == (400, body)
    assert codec.render_error(upstream(429, "rate_limit", "gemini", body=[body])) == (429, body)


@pytest.mark.parametrize(
    ("status", "raw", "kind", "message", "retry"),
    [
        (
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": KEY_INVALID_DETAILS,
                }
            },
            "authentication",
            "API key not valid. Please pass a valid API key.",
            None,
        ),
        (
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Quota",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "41s"}],
                }
            },
            "rate_limit",
            "Quota",
            41.0,
        ),
        (
            429,
            [{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}],
            "rate_limit",
            "Quota",
            None,
        ),
        (
            503,
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            },
            "overloaded",
            "The model is overloaded. Please try again later.",
            None,
        ),
        (
            404,
            {"error": {"code": 404, "message": "models/x is not found", "status": "NOT_FOUND"}},
            "not_found",
            "models/x is not found",
            None,
        ),
        (502, b"<html>Bad Gateway</html>", "api_error", "<html>Bad Gateway</html>", None),
        (500, b"", "api_error", "upstream answered HTTP 500", None),
    ],
)
def test_from_upstream(status: int, raw, kind: str, message: str, retry: float | None) -> None:
    data = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    err = codec.error_from_upstream(status, data)
    assert (err.status, err.kind, err.message, err.retry_after, err.protocol) == (
        status,
        kind,
        message,
        retry,
        "gemini",
    )
    assert err.raw == data


def test_stream_error_object_without_status() -> None:
    err = codec.error_from_object({"error": {"message": "x", "status": "DEADLINE_EXCEEDED"}}, None)
    assert (err.status, err.kind) == (504, "timeout")
    err = codec.error_from_object({"error": {"code": 500, "message": "x"}}, None)
    assert (err.status, err.kind) == (500, "api_error")
