"""OpenAI's error envelope, both ways: ``{"error": {"message", "type", "param", "code"}}``.

**To clients.** The ``openai`` SDKs pick the exception class from the HTTP status and read
``type``, ``param`` and ``code`` from the body, so both must look like OpenAI's
(:func:`render_error`, :func:`error_body`, :func:`error_status`; the refusals the front doors
word themselves: :func:`invalid`, :func:`missing_key`, :func:`wrong_key`,
:func:`model_not_found`):

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

**From upstreams.** :func:`error_from_upstream` and :func:`error_from_object` read the many
error shapes OpenAI-compatible servers answer with (see each function).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelgate.errors import (
    AuthenticationFailed,
    ErrorKind,
    GatewayError,
    InvalidRequest,
    NotFound,
    UpstreamHTTPError,
    kind_for_status,
)
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


# --------------------------------------------------------------------------- from an upstream


#: Status for an error object that carries no usable HTTP code (errors inside a stream).
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "BadRequestError": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "NotFoundError": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "InternalServerError": 500,
    "overloaded_error": 503,
    "service_unavailable": 503,
    "service_unavailable_error": 503,
}


def error_from_upstream(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> UpstreamHTTPError:
    """An upstream error response → :class:`UpstreamHTTPError`.

    Understands OpenAI's ``{"error": {"message", "type", "param", "code"}}``, Ollama's
    ``{"error": "..."}``, FastAPI's ``{"detail": ...}`` (vLLM, llama-cpp-python), a bare
    ``{"message": ...}`` and plain text. ``body`` must already be redacted of provider keys:
    the parsed body rides along unchanged so a same-protocol front door can pass it through.
    """
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    message = _error_message(parsed)
    if not message:
        text = body.decode("utf-8", errors="replace").strip() if parsed is None else ""
        message = text[:2000] or f"upstream answered HTTP {status}"
    param = _error_field(parsed, "param")
    return UpstreamHTTPError(
        message, status=status, kind=kind_for_status(status), protocol=PROTOCOL, body=parsed, raw=body, param=param
    )


def error_from_object(data: dict[str, Any], status: int | None) -> UpstreamHTTPError:
    """An error object in a 200 body or inside a stream; the status comes from its code or type."""
    if status is None:
        err = data.get("error")
        err = err if isinstance(err, dict) else data
        code = err.get("code")
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            status = code
        else:
            status = _STATUS_BY_TYPE.get(str(err.get("type")), _STATUS_BY_TYPE.get(str(code), 500))
    message = _error_message(data) or "upstream error"
    param = _error_field(data, "param")
    return UpstreamHTTPError(
        message, status=status, kind=kind_for_status(status), protocol=PROTOCOL, body=data, param=param
    )


def _error_message(parsed: Any) -> str:
    if isinstance(parsed, list):
        return _error_message(parsed[0]) if parsed else ""
    if not isinstance(parsed, dict):
        return parsed if isinstance(parsed, str) else ""
    err = parsed.get("error")
    if isinstance(err, dict):
        return _error_message(err) or orjson.dumps(err).decode()
    if isinstance(err, str) and err:
        return err
    detail = parsed.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:
        return "; ".join(_detail_item(d) for d in detail)
    message = parsed.get("message")
    return message if isinstance(message, str) else ""


def _detail_item(d: Any) -> str:
    """One FastAPI validation error: ``body.messages.0: Field required``."""
    if not isinstance(d, dict):
        return str(d)
    loc = ".".join(str(x) for x in d.get("loc") or ())
    msg = str(d.get("msg") or "")
    return f"{loc}: {msg}" if loc else msg


def _error_field(parsed: Any, name: str) -> str | None:
    err = parsed.get("error") if isinstance(parsed, dict) else None
    value = err.get(name) if isinstance(err, dict) else None
    return value if isinstance(value, str) else None
