"""Google's error envelope, both ways.

Out (to Gemini clients): ``{"error": {"code", "message", "status"[, "details"]}}``
with the HTTP status equal to ``code`` and Google's canonical status names.
What Google answers, and so what the gateway answers:

- a wrong API key: **400** ``INVALID_ARGUMENT`` "API key not valid. Please pass a valid
  API key." with an ``ErrorInfo`` detail, reason ``API_KEY_INVALID`` (not 401);
- no API key: **403** ``PERMISSION_DENIED`` "Method doesn't allow unregistered callers …";
- a body over the size limit: **400** "Request payload size exceeds the limit: N bytes.";
- 429 ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` detail (``retryDelay: "Ns"``) when a
  retry delay is known (Gemini CLI reads it); 503 ``UNAVAILABLE`` for an overloaded
  upstream (Anthropic's 529 included: Google has no 529); 504 ``DEADLINE_EXCEEDED``;
  500 ``INTERNAL``; 502 (upstream unreachable) keeps its status as ``UNAVAILABLE``;
- another provider's "prompt is too long" is reworded the way Gemini words it,
  "The input token count (N) exceeds the maximum number of tokens allowed (M)."

A Gemini upstream's own error body passes through untouched (status and all).

In (from a Gemini upstream): the envelope, also wrapped in a list as the
JSON-array stream sends it, becomes :class:`UpstreamHTTPError` (protocol "gemini").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from modelgate.errors import AuthenticationFailed, ErrorKind, GatewayError, UpstreamHTTPError, kind_for_status
from modelgate.protocols import WireProtocol

PROTOCOL = WireProtocol.GEMINI

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: The neutral kind of each Google status name (an upstream error inside a stream has no HTTP status).
KIND_BY_NAME: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
}
STATUS_BY_NAME = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
KEY_INVALID = "API key not valid. Please pass a valid API key."
KEY_MISSING = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_SERVICE = "generativelanguage.googleapis.com"


def envelope(code: int, message: str, status: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def key_invalid_body() -> dict[str, Any]:
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": _SERVICE},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": KEY_INVALID},
    ]
    return envelope(400, KEY_INVALID, "INVALID_ARGUMENT", details)


def render_error(err: GatewayError, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``err`` as Google answers it; see the module docstring."""
    if isinstance(err, UpstreamHTTPError) and err.protocol == PROTOCOL and _is_envelope(err.body):
        body = err.body[0] if isinstance(err.body, list) else err.body
        return err.status, body
    if isinstance(err, AuthenticationFailed):
        return 400, key_invalid_body()  # our own key check: Google answers a bad key with 400
    status = _status_for(err)
    name = STATUS_NAMES.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")
    if err.kind is ErrorKind.BILLING:
        name = "FAILED_PRECONDITION"
    message = err.message
    details: list[Any] = []
    if err.kind is ErrorKind.REQUEST_TOO_LARGE:
        limit = re.search(r"\((\d+)\)", message)
        message = (
            f"Request payload size exceeds the limit: {limit.group(1) if limit else 'the allowed number of'} bytes."
        )
    elif status == 400:
        message = _token_limit(message) or message
    if err.policy and err.code:  # the gateway's own reason, as Google gives its own
        details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": err.code, "domain": "modelgate"})
    if status == 429 and err.retry_after is not None:
        delay = err.retry_after
        text = f"{int(delay)}s" if float(delay).is_integer() else f"{delay:g}s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": text})
    return status, envelope(status, message, name, details)


def error_body(err: GatewayError) -> dict[str, Any]:
    return render_error(err)[1]


def _status_for(err: GatewayError) -> int:
    if err.kind is ErrorKind.OVERLOADED or err.status == 529:
        return 503
    if err.kind in (ErrorKind.REQUEST_TOO_LARGE, ErrorKind.BILLING):
        return 400
    if err.kind is ErrorKind.TIMEOUT:
        return 504
    return err.status


def _is_envelope(body: Any) -> bool:
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


_CONTEXT = (
    re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum"),
    re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S),
)


def _token_limit(message: str) -> str | None:
    """Another provider's context-overflow error, in Gemini's words."""
    m = _CONTEXT[0].search(message)
    if m:
        count, limit = m.group(1), m.group(2)
    else:
        m = _CONTEXT[1].search(message)
        if not m:
            return None
        limit, count = m.group(1), m.group(2)
    return f"The input token count ({count}) exceeds the maximum number of tokens allowed ({limit})."


# --------------------------------------------------------------------------- from an upstream


def error_from_upstream(status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> UpstreamHTTPError:
    """A Gemini upstream's error answer (``raw`` already redacted of provider keys)."""
    try:
        parsed = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        parsed = None
    err = error_from_object(parsed, status)
    err.raw = raw
    if not _is_envelope(parsed):
        text = raw.decode("utf-8", errors="replace").strip()
        err.message = text[:2000] or f"upstream answered HTTP {status}"
    return err


def error_from_object(data: Any, status: int | None) -> UpstreamHTTPError:
    """An error envelope (in an error answer, or as a stream frame: then ``status`` is None)."""
    inner = data[0] if isinstance(data, list) and data else data
    error = inner.get("error") if isinstance(inner, dict) else None
    error = error if isinstance(error, dict) else {}
    name = error.get("status") if isinstance(error.get("status"), str) else None
    if status is None:
        code = error.get("code")
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            status = code
        else:
            status = STATUS_BY_NAME.get(name or "", 500)
    kind = KIND_BY_NAME.get(name or "") or kind_for_status(status)
    if name == "INVALID_ARGUMENT" and _reason(error) == "API_KEY_INVALID":
        kind = ErrorKind.AUTHENTICATION
    text = error.get("message")
    message = text if isinstance(text, str) else f"upstream answered HTTP {status}"
    return UpstreamHTTPError(
        message,
        status=status,
        kind=kind,
        protocol=PROTOCOL,
        body=data,
        retry_after=retry_delay(error),
    )


def _reason(error: dict[str, Any]) -> str | None:
    for d in error.get("details") or ():
        reason = d.get("reason") if isinstance(d, dict) else None
        if isinstance(reason, str):
            return reason
    return None


def retry_delay(error: dict[str, Any]) -> float | None:
    """Seconds of a ``google.rpc.RetryInfo`` detail (``"41s"``, ``"0.5s"``), if any."""
    for d in error.get("details") or ():
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None
