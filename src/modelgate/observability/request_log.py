"""One structured log line per request, written when the request settles.

``logfmt`` on the ``modelgate.request`` logger (``key=value`` pairs, values quoted only
when they hold spaces), and the same fields as a dict in the record's ``modelgate``
attribute for a JSON formatter. The level is ``server.request_log_level``; ``off`` writes
nothing and costs one comparison.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from modelgate.pipeline.context import RequestContext

LOGGER = "modelgate.request"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def request_fields(ctx: RequestContext) -> dict[str, Any]:
    """What the log line says about ``ctx``: ids, route, outcome, timings and tokens."""
    attempt = ctx.attempt
    call = ctx.call
    usage = ctx.usage
    fields: dict[str, Any] = {
        "request_id": ctx.request_id,
        "door": ctx.door,
        "endpoint": ctx.endpoint,
        "caller": ctx.caller.id if ctx.caller else None,
        "model": call.model if call else None,
        "served": attempt.upstream_model if attempt else None,
        "provider": attempt.provider if attempt else None,
        "key": attempt.key_id if attempt else None,
        "path": ("passthrough" if attempt.passthrough else "translated") if attempt else None,
        "stream": call.stream if call else None,
        "status": ctx.status,
        "attempts": len(ctx.attempts),
        "latency_ms": _ms(ctx.duration),
        "ttfb_ms": _ms(ctx.first_byte),
        "upstream_ms": _ms(attempt.latency) if attempt else None,
        "upstream_request_id": attempt.upstream_request_id if attempt else None,
        "ended": ctx.ended,
        "stop": ctx.stop_reason,
    }
    if usage is not None:
        fields.update(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )
    if ctx.error is not None:
        fields.update(error=ctx.error.kind.value, code=ctx.error.code, message=ctx.error.message[:300])
    if ctx.client_gone:
        fields["client_gone"] = True
    return fields


#: What a value may hold unquoted: printable, no space, no quote, no ``=``.
_BARE = re.compile(r'[^\s"=\x00-\x1f\x7f]+')
#: Escapes inside quotes: no control character (a line break least of all) reaches the log raw.
_ESCAPES = str.maketrans(
    {
        **{chr(c): f"\\x{c:02x}" for c in (*range(32), 127)},
        "\\": "\\\\",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
    }
)


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if v is True or v is False:
        return "true" if v else "false"
    text = str(v)
    if not text or not _BARE.fullmatch(text):
        return '"' + text.translate(_ESCAPES) + '"'
    return text


def format_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in fields.items())


class RequestLog:
    """Writes the line; holds the logger and its level so the hot path does no lookups."""

    def __init__(self, level: str = "info") -> None:
        self.logger = logging.getLogger(LOGGER)
        self.level = LEVELS.get(level)

    def write(self, ctx: RequestContext) -> None:
        level = self.level
        if level is None or not self.logger.isEnabledFor(level):
            return
        fields = request_fields(ctx)
        self.logger.log(level, format_fields(fields), extra={"modelgate": fields})
