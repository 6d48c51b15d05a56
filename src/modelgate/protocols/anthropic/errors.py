"""Error envelopes: typed gateway errors → Anthropic's ``{"type": "error", "error": {...}}``."""

from __future__ import annotations

import re
from typing import Any

from modelgate.errors import GatewayError, UpstreamHTTPError
from modelgate.protocols.anthropic.blocks import PROTOCOL

_TYPE_BY_KIND = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "billing": "billing_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "api_error": "api_error",
    "timeout": "timeout_error",
    "overloaded": "overloaded_error",
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
    body = {"type": "error", "error": {"type": _TYPE_BY_KIND.get(err.kind, "api_error"), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


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


def error_type(kind: str) -> str:
    return _TYPE_BY_KIND.get(kind, "api_error")
