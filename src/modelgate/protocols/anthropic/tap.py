"""The answer tap of Anthropic Messages (see :mod:`modelgate.protocols.tap`).

Streamed: only frames whose data holds ``"message_`` (the ``type`` of ``message_start``,
``message_delta`` and ``message_stop``; inside text a quote is always escaped, so deltas never
match) or ``"error"`` are parsed:

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

from modelgate import ir
from modelgate.errors import UpstreamHTTPError
from modelgate.protocols.anthropic.errors import error_from_object
from modelgate.protocols.anthropic.upstream_response import decode_usage
from modelgate.protocols.tap import AnswerTap, frame_data, frames_with, load

_MESSAGE = b'"message_'
_ERROR = b'"error"'
_NEEDLES = (_MESSAGE, _ERROR)
_STOP_EVENTS = (b"event: message_stop\n", b"event: message_stop\r", b"event:message_stop\n")


class AnthropicTap(AnswerTap):
    """Usage, stop reason, model and the end of one Anthropic Messages answer."""

    __slots__ = ("ended", "error", "failed", "model", "stop_reason", "usage")

    def __init__(self) -> None:
        self.usage: ir.Usage | None = None
        self.ended = False
        self.failed = False
        self.error: UpstreamHTTPError | None = None
        self.stop_reason: str | None = None
        self.model: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        if chunk.find(_MESSAGE) >= 0 or chunk.find(_ERROR) >= 0:  # find: see modelgate.protocols.tap
            for frame in frames_with(chunk, _NEEDLES):
                if frame.startswith(_STOP_EVENTS):  # the end says nothing more: no need to parse it
                    self.ended = True
                    continue
                event = load(frame_data(frame))
                if isinstance(event, dict):
                    self._event(event)
        return chunk

    def whole(self, body: bytes) -> None:
        message = load(body)
        if not isinstance(message, dict):
            return
        if message.get("type") == "error":
            self._failed(message)
            return
        self._model(message)
        if isinstance(message.get("usage"), dict):
            self.usage = decode_usage(message["usage"])
        self._stop(message)
        self.ended = self.stop_reason is not None

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._model(message)
                if isinstance(message.get("usage"), dict):
                    self.usage = decode_usage(message["usage"], self.usage)
        elif kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                self.usage = decode_usage(event["usage"], self.usage)
            if isinstance(event.get("delta"), dict):
                self._stop(event["delta"])
        elif kind == "message_stop":
            self.ended = True
        elif kind == "error":
            self._failed(event)

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed = True
        self.error = error_from_object(event)

    def _model(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("model"), str):
            self.model = message["model"]

    def _stop(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("stop_reason"), str):
            self.stop_reason = obj["stop_reason"]
