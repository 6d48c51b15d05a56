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

import orjson

from modelgate.protocols.anthropic.errors import error_from_object
from modelgate.protocols.anthropic.upstream_response import decode_usage
from modelgate.protocols.tap import AnswerTap, frame_bounds, frame_data, frames_with, load

_MESSAGE = b'"message_'
_ERROR = b'"error"'
_STOP_EVENTS = (b"event: message_stop\n", b"event: message_stop\r", b"event:message_stop\n")
_EVENT_LINE = b"event:"
#: The counts a ``message_delta`` must repeat for ``message_start``'s to be left unread.
_FULL_COUNTS = frozenset({"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"})
_STOP_FRAME = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_START_LINE = b"event: message_start"
_LINE_ENDS = b"\r\n"
_STOP_REASON = b'"stop_reason":'
_CONTENT = b'"content":'
_MODEL = b'"model":'


def _ends(body: bytes) -> dict[str, Any] | None:
    """The two ends of a whole message — ``model``, then ``stop_reason``, ``stop_sequence``,
    ``usage`` — parsed alone, or None when the body is not laid out that way (then it is
    parsed whole).

    Anthropic writes a message's keys in one order: ``id``, ``type``, ``role``, ``model``,
    ``content``, then those three; so ``model`` stands before the first ``"content":`` and
    the last ``"stop_reason":`` starts the tail. A match is a real key, not text: inside a
    JSON string a quote is escaped. A ``stop_reason`` key inside a tool's input, found by
    mistake, leaves brackets unbalanced, so the ends do not parse, or lack ``usage``, and the
    whole body is read instead."""
    tail = body.rfind(_STOP_REASON)
    content = body.find(_CONTENT, 0, tail) if tail > 0 else -1
    model = body.find(_MODEL, 0, content) if content > 0 else -1
    comma = body.find(b",", model, content) if model > 0 else -1
    if comma < 0:
        return None
    try:
        ends = orjson.loads(b"".join((b"{", body[model : comma + 1], body[tail:])))
    except orjson.JSONDecodeError:
        return None
    return ends if isinstance(ends, dict) and "usage" in ends else None


def _head_model(head: bytes) -> str | None:
    """The ``model`` of the message that ``head`` opens (``message_start``'s), read from
    before its ``content``, where Anthropic writes it; None when it is not there."""
    content = head.find(_CONTENT)
    pos = head.find(_MODEL, 0, content) if content > 0 else -1
    if pos < 0:
        return None
    try:
        model = orjson.loads(head[pos + len(_MODEL) : head.find(b",", pos, content)])
    except orjson.JSONDecodeError:
        return None
    return model if isinstance(model, str) else None


def _line_at(chunk: bytes, line: bytes, last: bool, end: int | None = None) -> int:
    """Where the line starting with ``line`` is in ``chunk[:end]`` (the last one when ``last``),
    -1 if none: a match counts only at the start of a line."""
    if end is None:
        end = len(chunk)
    pos = chunk.rfind(line, 0, end) if last else chunk.find(line, 0, end)
    while pos > 0 and chunk[pos - 1] not in _LINE_ENDS:
        pos = chunk.rfind(line, 0, pos) if last else chunk.find(line, pos + 1, end)
    return pos


class AnthropicTap(AnswerTap):
    """Usage, stop reason, model and the end of one Anthropic Messages answer."""

    # Each tool_use block: its content_block_start in a stream, its content item in a whole answer.
    STREAM_TOOL_CALL = b'"type":"tool_use"'
    WHOLE_TOOL_CALL = b'"type":"tool_use"'

    _lines = True  # the stream names its events (Anthropic's own does)
    # ``_head``: the first chunk (``message_start``), read only when the end has been: Anthropic's
    # last ``message_delta`` repeats every count, and then only the model is wanted from it.
    #: The usage object of the last ``message_delta`` read.
    _delta_usage: dict[str, Any] | None = None

    def _read(self, chunk: bytes) -> None:
        if not self._started:
            if not chunk.startswith(b"event:"):
                self._lines = False  # a server without event lines
            elif self._tap_model is None and self._tap_usage is None:  # message_start opens the stream
                self._head = chunk
        if not self._lines:
            for frame in frames_with(chunk, (_MESSAGE, _ERROR)):
                self._frame(frame)
            return
        self._read_end(chunk)

    def _read_head(self, head: bytes) -> None:
        """``message_start``, once the end events are read: its model, and its counts where
        the last ``message_delta`` did not give them all again (then that delta's counts are
        laid over them once more: they are the later ones)."""
        delta = self._delta_usage
        if delta is not None and _FULL_COUNTS.issubset(delta):
            self._tap_model = _head_model(head)
            if self._tap_model is not None:
                return
        self._tap_usage = None
        self._frame_at(head, _line_at(head, _START_LINE, last=False))
        if delta is not None:
            self._tap_usage = decode_usage(delta, self._tap_usage)

    def _read_kept(self, kept: tuple[bytes | None, bytes | None, bytes]) -> None:
        """The stream's last chunks, newest first, until its last ``message_delta`` (or an
        ``error``, or content) is reached: what is older says nothing more."""
        if not self._lines:
            super()._read_kept(kept)
            return
        for chunk in reversed(kept):
            if chunk is not None and self._read_end(chunk):
                return

    def _read_end(self, chunk: bytes) -> bool:
        """The events that end a stream, read from the end of ``chunk`` backwards, one
        ``event:`` line at a time: ``message_stop``, ``ping``, then ``message_delta`` or
        ``error``; any other event (content) means the end events are all behind. So a chunk
        costs the length of its last frames, however long it is. True when the walk stopped
        (nothing before it matters), False when the chunk held only ``message_stop``/``ping``."""
        end = len(chunk)
        if chunk.endswith(_STOP_FRAME):  # Anthropic's own last frame: known without a look
            self._tap_ended = True
            end -= len(_STOP_FRAME)
        while True:
            pos = chunk.rfind(_EVENT_LINE, 0, end)
            while pos > 0 and chunk[pos - 1] not in _LINE_ENDS:  # a line's start only
                pos = chunk.rfind(_EVENT_LINE, 0, pos)
            if pos < 0:
                return False
            name = chunk[pos + 6 : chunk.find(b"\n", pos, end)].strip()
            if name == b"message_stop":
                self._tap_ended = True
            elif name != b"ping":
                if name == b"message_delta" or name == b"error":
                    self._frame_at(chunk, pos)
                return True
            end = pos

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
        message = _ends(body)  # the usual case: only the ends are parsed
        if message is None:
            message = load(body)
            if not isinstance(message, dict):
                return False
            if message.get("type") == "error":
                self._failed(message)
                return True
        if isinstance(model := message.get("model"), str):
            self._tap_model = model
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._tap_usage = decode_usage(usage)
        stop_reason = message.get("stop_reason")
        if isinstance(stop_reason, str):
            self._tap_stop_reason = stop_reason
            self._tap_ended = True
        return True

    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                model, usage = message.get("model"), message.get("usage")
                if isinstance(model, str):
                    self._tap_model = model
                if isinstance(usage, dict):
                    self._tap_usage = decode_usage(usage, self._tap_usage)
        elif kind == "message_delta":
            usage, delta = event.get("usage"), event.get("delta")
            if isinstance(usage, dict):
                self._tap_usage = decode_usage(usage, self._tap_usage)
                self._delta_usage = usage
            if isinstance(delta, dict) and isinstance(stop_reason := delta.get("stop_reason"), str):
                self._tap_stop_reason = stop_reason
        elif kind == "message_stop":
            self._tap_ended = True
        elif kind == "error":
            self._failed(event)

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed = True
        self.error = error_from_object(event)
