"""The answer tap of Anthropic Messages (see :mod:`modelgate.protocols.tap`).

Streamed: only the frames of ``message_start``, ``message_delta`` and ``error`` events are
parsed. They are found by their ``event:`` lines, looked for where they stand: ``message_start``
opens the stream, the others end it (searched from the end of a chunk); a raw line end cannot
occur inside JSON text, so a line ``event: X`` is always a real one. A server that writes no
``event:`` lines (only ``data:`` with a ``type``) is read from the frames whose data holds
``"message_`` or ``"error"`` instead.

- ``message_start``: ``message.usage`` (input, cache read, cache write, the small first output
  count) and ``message.model``;
- ``message_delta``: ``usage.output_tokens`` is a running total, so the last one wins; input and
  cache counts, which some servers send again there, replace the earlier ones when present;
  ``delta.stop_reason``;
- ``message_stop`` → ``ended``; an ``error`` event → ``failed`` (``ended`` stays False).

Non-streamed: the message JSON (``usage``, ``model``, a non-null ``stop_reason`` → ``ended``);
an error envelope (``{"type": "error", ...}``) → ``failed``.
"""

from __future__ import annotations

from typing import Any

from modelgate.protocols.anthropic.errors import error_from_object
from modelgate.protocols.anthropic.upstream_response import decode_usage
from modelgate.protocols.tap import AnswerTap, frame_bounds, frame_data, frames_with, load

_MESSAGE = b'"message_'
_ERROR = b'"error"'
_STOP_EVENTS = (b"event: message_stop\n", b"event: message_stop\r", b"event:message_stop\n")
_MESSAGE_LINES = b"event: message_"
_START_LINE = b"event: message_start"
_DELTA_LINE = b"event: message_delta"
_STOP_LINE = b"event: message_stop"
_ERROR_LINE = b"event: error"
_LINE_ENDS = b"\r\n"


def _line_at(chunk: bytes, line: bytes, last: bool) -> int:
    """Where the line starting with ``line`` is in ``chunk`` (the last one when ``last``), -1 if
    none: a match counts only at the start of a line."""
    pos = chunk.rfind(line) if last else chunk.find(line)
    while pos > 0 and chunk[pos - 1] not in _LINE_ENDS:
        pos = chunk.rfind(line, 0, pos) if last else chunk.find(line, pos + 1)
    return pos


class AnthropicTap(AnswerTap):
    """Usage, stop reason, model and the end of one Anthropic Messages answer."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        super().__init__()
        self._lines = True  # the stream names its events (Anthropic's own does)

    def _read(self, chunk: bytes) -> None:
        # ``find`` rather than ``in``: see modelgate.protocols.tap.
        if not self._started and not chunk.startswith(b"event:"):
            self._lines = False  # a server without event lines
        if not self._lines:
            for frame in frames_with(chunk, (_MESSAGE, _ERROR)):
                self._frame(frame)
            return
        if chunk.find(_MESSAGE_LINES) >= 0:  # most chunks hold content events only: one look
            if self._tap_model is None and self._tap_usage is None:  # message_start opens the stream
                self._frame_at(chunk, _line_at(chunk, _START_LINE, last=False))
            self._frame_at(chunk, _line_at(chunk, _DELTA_LINE, last=True))
            if _line_at(chunk, _STOP_LINE, last=True) >= 0:
                self._tap_ended = True
                return
        if chunk.find(_ERROR_LINE) >= 0:
            self._frame_at(chunk, _line_at(chunk, _ERROR_LINE, last=True))

    def _frame_at(self, chunk: bytes, pos: int) -> None:
        """The event whose ``event:`` line is at ``pos``: its one ``data:`` line is parsed."""
        if pos < 0:
            return
        data = chunk.find(b"data:", pos)
        end = chunk.find(b"\n", data)
        event = load(chunk[data + 5 : end]) if data >= 0 and end > data else None
        if isinstance(event, dict):
            self._event(event)
        else:  # data over several lines, or none: the whole frame
            start, stop = frame_bounds(chunk, pos)
            self._frame(chunk[start:stop])

    def _frame(self, frame: bytes) -> None:
        if frame.startswith(_STOP_EVENTS):  # the end says nothing more: no need to parse it
            self._tap_ended = True
            return
        event = load(frame_data(frame))
        if isinstance(event, dict):
            self._event(event)

    def whole(self, body: bytes) -> bool:
        message = load(body)
        if not isinstance(message, dict):
            return False
        if message.get("type") == "error":
            self._failed(message)
            return True
        self._model(message)
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._tap_usage = decode_usage(usage)
        self._stop(message)
        self._tap_ended = self._tap_stop_reason is not None
        return True

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._model(message)
                if isinstance(message.get("usage"), dict):
                    self._tap_usage = decode_usage(message["usage"], self._tap_usage)
        elif kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                self._tap_usage = decode_usage(event["usage"], self._tap_usage)
            if isinstance(event.get("delta"), dict):
                self._stop(event["delta"])
        elif kind == "message_stop":
            self._tap_ended = True
        elif kind == "error":
            self._failed(event)

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed = True
        self.error = error_from_object(event)

    def _model(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("model"), str):
            self._tap_model = message["model"]

    def _stop(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("stop_reason"), str):
            self._tap_stop_reason = obj["stop_reason"]
