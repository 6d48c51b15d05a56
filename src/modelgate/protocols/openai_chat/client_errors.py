"""Errors as OpenAI clients expect them: ``{"error": {"message", "type", "param", "code"}}``.

The ``openai`` SDKs pick the exception class from the HTTP status and read ``type``, ``param``
and ``code`` from the body, so both must look like OpenAI's:

| situation                                   | status | type                        | code                     |
|---------------------------------------------|--------|-----------------------------|--------------------------|
| bad JSON, bad or refused field              | 400    | ``invalid_request_error``   | per case (or null)       |
| missing API key                             | 401    | ``invalid_request_error``   | null                     |
| wrong API key                               | 401    | ``invalid_request_error``   | ``invalid_api_key``      |
| permission                                  | 403    | ``permission_error``        | null                     |
| unknown model                               | 404    | ``invalid_request_error``   | ``model_not_found``      |
| body too large                              | 413    | ``invalid_request_error``   | ``request_too_large``    |
| rate limited                                | 429    | ``rate_limit_error``        | ``rate_limit_exceeded``  |
| billing (Anthropic's ``billing_error``)     | as is  | ``insufficient_quota``      | ``insufficient_quota``   |
| upstream error, unreachable upstream        | as is  | ``server_error``            | null                     |
| upstream timeout                            | 504    | ``timeout_error``           | null                     |
| upstream overloaded (Anthropic's 529)       | 503    | ``service_unavailable_error`` | ``server_is_overloaded`` |

529 is Anthropic's own status: OpenAI says "overloaded" with 503, which every OpenAI client
knows to retry. An Anthropic "prompt is too long" gets OpenAI's ``context_length_exceeded`` code.

An :class:`UpstreamHTTPError` from an upstream that speaks this same protocol (or OpenAI's
Responses API, which shares the envelope) passes through with its status and body intact (the
body is already redacted of provider keys); a body that is not OpenAI's envelope (vLLM's flat
object, Ollama's string) is rewrapped around its message.

A stream that fails after the 200 went out ends with ``data: {"error": {...}}`` and no
``[DONE]``: OpenAI's own mid-stream error frame, which the SDKs raise as ``APIError``.
"""

from __future__ import annotations

from typing import Any

from modelgate.errors import AuthenticationFailed, ErrorKind, GatewayError, InvalidRequest, NotFound, UpstreamHTTPError
from modelgate.protocols import WireProtocol

PROTOCOL = WireProtocol.OPENAI_CHAT
#: Protocols whose error bodies are OpenAI's own envelope: Chat and Responses share the platform.
_SAME_ENVELOPE = frozenset({PROTOCOL, WireProtocol.OPENAI_RESPONSES})

#: neutral error kind → (OpenAI ``type``, ``code`` when the error carries none of its own)
_TYPE_BY_KIND: dict[ErrorKind, tuple[str, str | None]] = {
    ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
    ErrorKind.AUTHENTICATION: ("invalid_request_error", None),
    ErrorKind.BILLING: ("insufficient_quota", "insufficient_quota"),
    ErrorKind.PERMISSION: ("permission_error", None),
    ErrorKind.NOT_FOUND: ("invalid_request_error", None),
    ErrorKind.REQUEST_TOO_LARGE: ("invalid_request_error", "request_too_large"),
    ErrorKind.RATE_LIMIT: ("rate_limit_error", "rate_limit_exceeded"),
    ErrorKind.API_ERROR: ("server_error", None),
    ErrorKind.TIMEOUT: ("timeout_error", None),
    ErrorKind.OVERLOADED: ("service_unavailable_error", "server_is_overloaded"),
}
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def invalid(message: str, param: str | None = None, code: str | None = None) -> InvalidRequest:
    """A 400 with OpenAI's ``param`` and ``code``."""
    return InvalidRequest(message, param=param, code=code)


def missing_key() -> AuthenticationFailed:
    return AuthenticationFailed(_MISSING_KEY, code=None)


def wrong_key(key: str) -> AuthenticationFailed:
    """OpenAI's wording, with the key masked the way OpenAI masks it."""
    masked = key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)
    return AuthenticationFailed(f"Incorrect API key provided: {masked}.")


def model_not_found(model: str) -> NotFound:
    return NotFound(f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")


def error_status(err: GatewayError) -> int:
    """The status an OpenAI client gets: a same-protocol upstream's own, else overloaded is 503."""
    if isinstance(err, UpstreamHTTPError) and err.protocol in _SAME_ENVELOPE:
        return err.status
    return 503 if err.kind is ErrorKind.OVERLOADED else err.status


def render_error(err: GatewayError, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) as OpenAI answers."""
    return error_status(err), error_body(err)


def error_body(err: GatewayError) -> dict[str, Any]:
    """OpenAI's error envelope for ``err``."""
    if isinstance(err, UpstreamHTTPError) and err.protocol in _SAME_ENVELOPE:
        body = err.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body
    etype, code = _TYPE_BY_KIND.get(err.kind, ("server_error", None))
    if err.code is not None:
        code = err.code
    elif err.kind is ErrorKind.INVALID_REQUEST and "prompt is too long" in err.message.lower():
        code = "context_length_exceeded"
    return {"error": {"message": err.message, "type": etype, "param": err.param, "code": code}}
