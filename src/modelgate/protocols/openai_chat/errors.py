"""Upstream error bodies → typed errors.

:func:`error_from_upstream` and :func:`error_from_object` read the many error shapes
OpenAI-compatible servers answer with (the client-facing envelope is in :mod:`.client_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelgate.errors import UpstreamHTTPError, kind_for_status
from modelgate.protocols import WireProtocol

PROTOCOL = WireProtocol.OPENAI_CHAT

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
