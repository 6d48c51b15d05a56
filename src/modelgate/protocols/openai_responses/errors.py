"""The Responses API's errors, both ways.

HTTP errors use OpenAI's one envelope, ``{"error": {"message", "type", "param", "code"}}``,
the same as Chat Completions': :func:`render_error`, :func:`error_body` and
:func:`error_from_upstream` are :mod:`modelgate.protocols.openai_chat.errors`' own, so both
OpenAI front doors answer alike and an upstream's error reads the same on both APIs. What is
particular to the Responses API is the stream:

- to clients, an error after the stream began travels inside ``response.failed`` as
  ``response.error`` = ``{"code", "message"}`` (:func:`response_error`); the code is
  ``rate_limit_exceeded``, ``context_length_exceeded`` (a foreign context-overflow message
  such as Anthropic's "prompt is too long"; Codex compacts on it), ``invalid_prompt`` (other
  bad requests; Codex does not retry it) or ``server_error`` (retried); an OpenAI upstream's
  own code passes through;
- from upstreams, ``response.failed`` and ``error`` events become :class:`UpstreamHTTPError`
  with the status their code implies (:func:`error_from_object`).
"""

from __future__ import annotations

from typing import Any

from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError, kind_for_status
from modelgate.protocols import WireProtocol
from modelgate.protocols.anthropic import prompt_too_long
from modelgate.protocols.openai_chat.errors import error_body, error_from_upstream, render_error
from modelgate.protocols.openai_responses.common import PROTOCOL, json_object

__all__ = ["error_body", "error_from_object", "error_from_upstream", "render_error", "response_error"]

#: Protocols whose error bodies are already in this envelope.
OPENAI_PROTOCOLS = frozenset({WireProtocol.OPENAI_CHAT, PROTOCOL})

#: Status for a code (or type) found in a stream error, which carries no HTTP status.
_STATUS_BY_CODE = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
    "server_error": 500,
}


def _context_overflow(err: GatewayError) -> bool:
    return err.kind is ErrorKind.INVALID_REQUEST and prompt_too_long(err.message) is not None


def response_error(err: GatewayError) -> dict[str, Any]:
    """``response.error`` of a ``response.failed`` event."""
    if isinstance(err, UpstreamHTTPError) and err.protocol in OPENAI_PROTOCOLS and isinstance(err.body, dict):
        inner = json_object(err.body.get("error")) or err.body
        code = inner.get("code")
        message = inner.get("message")
        if isinstance(code, str) and code and isinstance(message, str):
            return {"code": code, "message": message}
    if err.kind is ErrorKind.RATE_LIMIT:
        code = "rate_limit_exceeded"
    elif _context_overflow(err):
        code = "context_length_exceeded"
    elif err.kind is ErrorKind.INVALID_REQUEST:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": err.message}


def error_from_object(data: dict[str, Any]) -> UpstreamHTTPError:
    """An upstream's ``response.failed`` or ``error`` event → a typed error."""
    inner = json_object(json_object(data.get("response")).get("error")) or json_object(data.get("error")) or data
    code = inner.get("code")
    etype = inner.get("type") if inner is not data else None  # an ``error`` event's type is "error"
    status = _STATUS_BY_CODE.get(str(code), _STATUS_BY_CODE.get(str(etype), 500))
    text = inner.get("message")
    message = text if isinstance(text, str) else "upstream response failed"
    body = {"error": {"message": message, "type": etype, "param": inner.get("param"), "code": code}}
    param = inner.get("param") if isinstance(inner.get("param"), str) else None
    return UpstreamHTTPError(
        message, status=status, kind=kind_for_status(status), protocol=PROTOCOL, body=body, param=param
    )
