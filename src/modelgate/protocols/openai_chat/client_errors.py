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

from modelgate.errors import AuthenticationFailed, GatewayError, InvalidRequest, NotFound, UpstreamHTTPError

PROTOCOL = "openai"
#: Protocols whose error bodies are OpenAI's own envelope: Chat and Responses share the platform.
_SAME_ENVELOPE = frozenset({PROTOCOL, "openai_responses"})

#: neutral error kind → (OpenAI ``type``, default ``code``)
_TYPE_BY_KIND: dict[str, tuple[str, str | None]] = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "billing": ("insufficient_quota", "insufficient_quota"),
    "permission": ("permission_error", None),
    "not_found": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "timeout": ("timeout_error", None),
    "overloaded": ("service_unavailable_error", "server_is_overloaded"),
}
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY)."
)
#: Marks "no code given" apart from an explicit ``code = None``.
_UNSET = object()


def invalid(message: str, param: str | None = None, code: str | None = None) -> InvalidRequest:
    """A 400 with OpenAI's ``param`` and ``code``."""
    err = InvalidRequest(message, param=param)
    err.code = code  # type: ignore[attr-defined]
    return err


def missing_key() -> AuthenticationFailed:
    err = AuthenticationFailed(_MISSING_KEY)
    err.code = None  # type: ignore[attr-defined]
    return err


def wrong_key(key: str) -> AuthenticationFailed:
    """OpenAI's wording, with the key masked the way OpenAI masks it."""
    masked = key[:3] + "*" * (len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)
    return AuthenticationFailed(f"Incorrect API key provided: {masked}.")


def model_not_found(model: str) -> NotFound:
    err = NotFound(f"The model `{model}` does not exist or you do not have access to it.")
    err.code = "model_not_found"  # type: ignore[attr-defined]
    return err


def error_status(err: GatewayError) -> int:
    """The status an OpenAI client gets: a same-protocol upstream's own, else overloaded is 503."""
    if isinstance(err, UpstreamHTTPError) and err.protocol in _SAME_ENVELOPE:
        return err.status
    return 503 if err.kind == "overloaded" else err.status


def error_body(err: GatewayError) -> dict[str, Any]:
    """OpenAI's error envelope for ``err``."""
    if isinstance(err, UpstreamHTTPError) and err.protocol in _SAME_ENVELOPE:
        body = err.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body
    etype, code = _TYPE_BY_KIND.get(err.kind, ("server_error", None))
    explicit = getattr(err, "code", _UNSET)
    if explicit is not _UNSET:
        code = explicit
    elif err.kind == "invalid_request" and "prompt is too long" in err.message.lower():
        code = "context_length_exceeded"
    return {"error": {"message": err.message, "type": etype, "param": err.param, "code": code}}
