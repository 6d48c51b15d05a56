"""Log lines as JSON, each with the id of the request it was written for.

``server.log_format: json`` (or ``serve --log-format json``) formats every ``modelgate.*``
line as one JSON object: time, level, logger, message, the request id of the request being
served when the line was written (from :data:`REQUEST_ID`, set by the chain when a request
starts: every line of a request carries it, a retry's warning as well as its settlement), and
for the request log line its fields (the ``modelgate`` attribute that
:mod:`modelgate.observability.request_log` puts on the record).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

#: The id of the request the current task serves (each request runs in a task of its own).
REQUEST_ID: ContextVar[str | None] = ContextVar("modelgate_request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record (None outside a request), for any format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line; never fails on a value JSON cannot hold (``str`` of it)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get(),
        }
        fields = getattr(record, "modelgate", None)
        if isinstance(fields, dict):  # the request log line: its fields, not their logfmt again
            line["message"] = "request settled"
            line.update((k, v) for k, v in fields.items() if k not in line)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
