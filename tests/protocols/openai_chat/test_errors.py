"""OpenAI's error envelope both ways: typed errors → the envelope and status a client gets, for
every kind of error the gateway raises; upstream error bodies → typed errors (golden fixtures in
``fixtures/errors``)."""

from __future__ import annotations

import orjson
import pytest

from modelgate.errors import (
    AuthenticationFailed,
    ErrorKind,
    GatewayError,
    InternalError,
    NotFound,
    PermissionDenied,
    RequestTooLarge,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelgate.protocols import openai_chat as codec
from tests.protocols.gateway_errors import overloaded, rate_limited

from .helpers import as_json, check, load, names


@pytest.mark.parametrize(
    ("err", "status", "etype", "code"),
    [
        (codec.invalid("bad", "messages", "invalid_type"), 400, "invalid_request_error", "invalid_type"),
        (AuthenticationFailed("no"), 401, "invalid_request_error", "invalid_api_key"),
        (codec.missing_key(), 401, "invalid_request_error", None),
        (PermissionDenied("no"), 403, "permission_error", None),
        (NotFound("no"), 404, "invalid_request_error", None),
        (codec.model_not_found("x"), 404, "invalid_request_error", "model_not_found"),
        (RequestTooLarge("big"), 413, "invalid_request_error", "request_too_large"),
        (rate_limited("slow down"), 429, "rate_limit_error", "rate_limit_exceeded"),
        (InternalError("oops"), 500, "server_error", None),
        (UpstreamUnavailable("gone"), 502, "server_error", None),
        (UpstreamTimeout("late"), 504, "timeout_error", None),
        (overloaded("busy"), 503, "service_unavailable_error", "server_is_overloaded"),
        (
            UpstreamHTTPError("Overloaded", status=529, kind=ErrorKind.OVERLOADED, protocol="anthropic", body={}),
            503,
            "service_unavailable_error",
            "server_is_overloaded",
        ),
        (
            UpstreamHTTPError("credit", status=400, kind=ErrorKind.BILLING, protocol="anthropic"),
            400,
            "insufficient_quota",
            "insufficient_quota",
        ),
        (
            UpstreamHTTPError("prompt is too long: 9 tokens > 8 maximum", status=400, kind=ErrorKind.INVALID_REQUEST,
                              protocol="anthropic"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
    ],
)  # fmt: skip
def test_kinds_map_to_openai_types(err: GatewayError, status: int, etype: str, code: str | None) -> None:
    assert codec.error_status(err) == status
    assert codec.error_body(err) == {"error": {"message": err.message, "type": etype, "param": err.param, "code": code}}


@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses"])
def test_same_platform_errors_pass_through_with_status_and_body(protocol: str) -> None:
    body = {"error": {"message": "Slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    err = UpstreamHTTPError("Slow down", status=529, kind=ErrorKind.OVERLOADED, protocol=protocol, body=body)
    assert (codec.error_status(err), codec.error_body(err)) == (529, body)


def test_foreign_shapes_from_compatible_servers_are_rewrapped() -> None:
    err = UpstreamHTTPError(
        "model not loaded", status=404, kind=ErrorKind.NOT_FOUND, protocol="openai_chat", body={"error": "x"}
    )
    assert codec.error_body(err) == {
        "error": {"message": "model not loaded", "type": "invalid_request_error", "param": None, "code": None}
    }


def test_wrong_key_is_masked_like_openai() -> None:
    assert codec.wrong_key("sk-proj-abcdefgh1234").message == "Incorrect API key provided: sk-*************1234."
    assert codec.wrong_key("short").message == "Incorrect API key provided: *****."


# --------------------------------------------------------------------------- from an upstream


@pytest.mark.parametrize("name", names("errors"))
def test_error_from_upstream_golden(name: str) -> None:
    case = load("errors", name)
    body = case["body"] if isinstance(case["body"], str) else orjson.dumps(case["body"]).decode()
    err = codec.error_from_upstream(case["status"], body.encode())
    assert isinstance(err, UpstreamHTTPError) and err.raw == body.encode()
    check("errors", name, as_json(err), key="expected")
