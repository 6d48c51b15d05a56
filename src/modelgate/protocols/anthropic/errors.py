"""Anthropic's error envelope, both ways.

Out: typed gateway errors → ``{"type": "error", "error": {"type", "message"}, "request_id"}``
(:func:`error_body`; with the HTTP status, :func:`render_error`). In: an Anthropic upstream's
error answer or ``error`` stream event → :class:`UpstreamHTTPError` (:func:`error_from_upstream`,
:func:`error_from_object`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError, kind_for_status
from modelgate.protocols.anthropic.blocks import PROTOCOL

_TYPE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.BILLING: "billing_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}
KIND_BY_TYPE = {v: k for k, v in _TYPE_BY_KIND.items()}
STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_body(err: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """The Anthropic error envelope; an Anthropic upstream's own body passes through as-is."""
    if isinstance(err, UpstreamHTTPError) and err.protocol == PROTOCOL and isinstance(err.body, dict):
        body = dict(err.body)
        if "type" in body and "error" in body:
            if request_id and "request_id" not in body:
                body["request_id"] = request_id
            return body
    message = err.message
    if isinstance(err, UpstreamHTTPError) and err.status == 400:
        message = prompt_too_long(message) or message
    error: dict[str, Any] = {"type": _TYPE_BY_KIND.get(err.kind, "api_error"), "message": message}
    if err.policy and err.code:
        error["code"] = err.code
    body = {"type": "error", "error": error}
    if request_id:
        body["request_id"] = request_id
    return body


def render_error(err: GatewayError, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) as Anthropic answers: an overloaded error is always a 529, whatever
    status a foreign upstream said it with."""
    foreign = not (isinstance(err, UpstreamHTTPError) and err.protocol == PROTOCOL)
    status = 529 if err.kind is ErrorKind.OVERLOADED and foreign else err.status
    return status, error_body(err, request_id)


_CONTEXT_NUMBERS = re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S)
_CONTEXT_WORDS = ("context length", "context size", "context window", "too many tokens", "prompt is too long")


def prompt_too_long(message: str) -> str | None:
    """Reword another server's context-overflow error the way Anthropic words it.

    Claude Code recognises ``prompt is too long`` and compacts the conversation;
    vLLM's or OpenAI's wording would make it fail instead.
    """
    numbers = _CONTEXT_NUMBERS.search(message)
    if numbers:
        return f"prompt is too long: {numbers.group(2)} tokens > {numbers.group(1)} maximum"
    low = message.lower()
    if any(words in low for words in _CONTEXT_WORDS):
        return message if low.startswith("prompt is too long") else f"prompt is too long: {message}"
    return None


def error_type(kind: ErrorKind) -> str:
    return _TYPE_BY_KIND.get(kind, "api_error")


#: Upstream error headers an Anthropic client gets back with the error.
_PASSED_HEADERS = ("request-id", "x-should-retry")


def error_from_upstream(status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
    """An Anthropic upstream's error answer (``raw`` already redacted of provider keys)."""
    body: Any = None
    message = raw.decode("utf-8", "replace")[:500] or f"upstream answered {status}"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message", message))
    passed = {k.lower(): v for k, v in headers.items() if k.lower() in _PASSED_HEADERS}
    return UpstreamHTTPError(
        message, status=status, kind=kind_for_status(status), protocol=PROTOCOL, body=body, raw=raw, headers=passed
    )


def error_from_object(data: dict[str, Any]) -> UpstreamHTTPError:
    """An ``error`` event inside a stream (no HTTP status: it comes from the error type)."""
    err = data.get("error")
    err = err if isinstance(err, dict) else {}
    etype = str(err.get("type", "api_error"))
    return UpstreamHTTPError(
        str(err.get("message", "upstream error")),
        status=STATUS_BY_TYPE.get(etype, 500),
        kind=KIND_BY_TYPE.get(etype, ErrorKind.API_ERROR),
        protocol=PROTOCOL,
        body=data,
    )
