"""Answer taps: what a passthrough answer said about itself, read from its bytes as they go by.

On the passthrough path the upstream's answer goes to the client untouched, so nothing parses
it; yet the gateway must still learn the token usage (for accounting and limits) and whether
the answer ended as its protocol promises (or was cut short, or failed upstream). A tap reads
exactly that, and nothing else, from the bytes on their way through:

- :meth:`AnswerTap.feed` takes one chunk of a streamed answer and returns the bytes to forward
  (``chunk`` itself, the same object, except where a tap is asked to hide what the gateway
  itself added to the request: see :class:`~modelgate.protocols.openai_chat.tap.ChatTap`);
- :meth:`AnswerTap.whole` takes a non-streamed answer body.

Streamed chunks arrive cut on frame boundaries (SSE frames ``...\\n\\n`` or
``...\\r\\n\\r\\n``, possibly several per chunk; the elements of a Gemini JSON array as
:class:`~modelgate.protocols.gemini.jsonarray.ArrayCutter` cuts them). A stream cut short
simply stops: ``ended`` stays False and ``usage`` holds what was seen. Taps never raise on what
they read: bytes they cannot understand are forwarded and ignored.

It is on the hot path, so a tap never parses every event: each chunk costs a few substring
checks for the keys that only the frames worth reading carry (usage, the end, an error), and
only those frames are parsed. The checks are written ``chunk.find(key) >= 0`` rather than
``key in chunk``: on Python 3.11, ``bytes.__contains__`` first tries its argument as an integer
and pays for the ``TypeError`` every time, which makes ``in`` about twice as slow as ``find``.

One tap per wire protocol, each in its protocol's package (``anthropic.tap``,
``openai_chat.tap``, ``openai_responses.tap``, ``gemini.tap``) and exported by it; each front
door builds the one for its protocol (``FrontDoor.tap``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError

#: The end of one SSE frame: two line ends in a row (``\\n``, ``\\r\\n`` or ``\\r``; atomic, so
#: the two halves of one ``\\r\\n`` never count as two line ends).
_FRAME_END = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


class AnswerTap(ABC):
    """Reads usage and the end of one passthrough answer as it goes by.

    Every protocol says what a tap wants at the two ends of a stream: the model (and the
    Responses API's response object) in its first event; the usage totals, the stop reason,
    the end and any error in its last events. So :meth:`feed` reads the first chunk and only
    keeps a reference to the last :data:`TAIL` chunks (chunks hold whole frames), which are
    read when an attribute is first asked for (at settlement, or when a broken stream is
    ended): the cost per chunk is a few attribute stores, and each chunk worth reading is
    read once. A protocol that must rewrite chunks as they pass (a Chat stream whose usage
    is hidden) reads each one in its own :meth:`feed`.
    """

    #: How many chunks at the end of a stream are kept to be read (the end event, the usage
    #: totals and an error can each be a frame of their own; a ping may come between them).
    TAIL: ClassVar[int] = 3
    #: ``usage`` is the stored value, once the kept chunks are read (a tap that decodes it
    #: only when asked says False).
    _plain_usage: ClassVar[bool] = True
    #: The bytes that mark one tool call in a stream of the protocol, and in a whole answer:
    #: the request log counts them (``bytes.count`` over each chunk, only when it is on). An
    #: approximation by design: a marker written with other spacing is not counted.
    STREAM_TOOL_CALL: ClassVar[bytes] = b""
    WHOLE_TOOL_CALL: ClassVar[bytes] = b""

    # What is found, class-level defaults rather than an ``__init__``: a tap is made for every
    # passthrough answer, and most of these are never set.
    _started = False
    _t1: bytes | None = None
    _t2: bytes | None = None
    _t3: bytes | None = None
    _tap_usage: ir.Usage | None = None
    _tap_ended = False
    _tap_failed = False
    _tap_error: UpstreamHTTPError | None = None
    _tap_stop_reason: str | None = None
    _tap_model: str | None = None
    _head: bytes | None = None

    @property
    def rewrites(self) -> bool:
        """Whether :meth:`feed` may change the bytes (then it must see every chunk); a tap that
        does not can be handed only the stream's ends, with :meth:`ends`."""
        return False

    def feed(self, chunk: bytes) -> bytes:
        """One chunk of a streamed answer; returns the bytes to forward (``chunk`` itself here)."""
        if self._started:
            self._t1, self._t2, self._t3 = self._t2, self._t3, chunk
        else:
            self._read(chunk)  # ``_started`` still False: a tap can tell its first chunk
            self._started = True
        return chunk

    def ends(self, first: bytes | None, last: tuple[bytes | None, bytes | None, bytes | None]) -> None:
        """The same as feeding every chunk, given only the first one and the last :data:`TAIL`
        (oldest first, None where the stream had fewer): a relay keeps those in local
        variables, which costs less than a call per chunk."""
        if first is not None:
            self.feed(first)
            self._t1, self._t2, self._t3 = last

    def tail(self, last: tuple[bytes | None, bytes | None, bytes | None]) -> None:
        """The last :data:`TAIL` chunks after a first one already fed (as :meth:`ends`)."""
        if last[2] is not None:
            self._t1, self._t2, self._t3 = last

    def opened_with_error(self) -> bool:
        """After the first chunk: the upstream's first words were an error (nothing else came
        before it), so the answer never started."""
        return self._tap_failed and self.model is None

    def cut_short(self) -> bool:
        """At the end of a stream: it stopped before its protocol's end, with no error of the
        upstream's own to say why."""
        self._catch_up()
        return not self._tap_ended and not self._tap_failed

    @abstractmethod
    def whole(self, body: bytes) -> bool:
        """A non-streamed answer body (JSON); False when it is not the protocol's JSON answer
        at all (a maintenance page, JSON cut short), which the attempt then refuses."""

    @abstractmethod
    def _read(self, chunk: bytes) -> None:
        """Read one chunk (whole frames) for what it says."""

    def findings(self) -> tuple[ir.Usage | None, bool, str | None, bool, UpstreamHTTPError | None]:
        """(usage, ended, stop_reason, failed, error), the kept chunks read first: all that
        settlement wants, in one call."""
        if self._t3 is not None or self._head is not None:
            self._catch_up()
        usage = self._tap_usage if self._plain_usage else self.usage  # Gemini decodes its usage late
        return usage, self._tap_ended, self._tap_stop_reason, self._tap_failed, self._tap_error

    def _catch_up(self) -> None:
        """Read the kept chunks (re-entrant: they are taken off first)."""
        if self._t3 is not None:
            kept = (self._t1, self._t2, self._t3)
            self._t1 = self._t2 = self._t3 = None
            self._read_kept(kept)
        head = self._head
        if head is not None:
            self._head = None
            self._read_head(head)

    def _read_head(self, head: bytes) -> None:
        """The first chunk, kept unread by :meth:`_read` (in ``_head``) until the end was read,
        for a protocol whose end may make it unnecessary."""
        self._read(head)

    def _read_kept(self, kept: tuple[bytes | None, bytes | None, bytes]) -> None:
        """Read the chunks kept from the end of the stream, oldest first; a protocol whose end
        events can be read newest first, stopping once all is known, does so instead."""
        for chunk in kept:
            if chunk is not None:
                self._read(chunk)

    @property
    def usage(self) -> ir.Usage | None:
        """None until the answer said it."""
        self._catch_up()
        return self._tap_usage

    @usage.setter
    def usage(self, value: ir.Usage | None) -> None:
        self._tap_usage = value

    @property
    def ended(self) -> bool:
        """The answer reached the end its protocol promises."""
        self._catch_up()
        return self._tap_ended

    @ended.setter
    def ended(self, value: bool) -> None:
        self._tap_ended = value

    @property
    def failed(self) -> bool:
        """The upstream itself ended it with an error (error event / ``response.failed``)."""
        self._catch_up()
        return self._tap_failed

    @failed.setter
    def failed(self, value: bool) -> None:
        self._tap_failed = value

    @property
    def error(self) -> UpstreamHTTPError | None:
        """That error, as the protocol's codec reads it (``error_from_object``)."""
        self._catch_up()
        return self._tap_error

    @error.setter
    def error(self, value: UpstreamHTTPError | None) -> None:
        self._tap_error = value

    @property
    def stop_reason(self) -> str | None:
        """The protocol's own stop/finish reason, as sent."""
        self._catch_up()
        return self._tap_stop_reason

    @stop_reason.setter
    def stop_reason(self, value: str | None) -> None:
        self._tap_stop_reason = value

    @property
    def model(self) -> str | None:
        """The model id the upstream says served."""
        self._catch_up()
        return self._tap_model

    @model.setter
    def model(self, value: str | None) -> None:
        self._tap_model = value


# --------------------------------------------------------------------------- shared helpers


def split_frames(chunk: bytes) -> list[bytes]:
    """The SSE frames of a chunk, each with its blank-line terminator, so that joining them
    gives ``chunk`` back byte for byte. A last frame without a terminator (a body that ended
    without one) is kept as it is."""
    frames: list[bytes] = []
    start = 0
    for m in _FRAME_END.finditer(chunk):
        frames.append(chunk[start : m.end()])
        start = m.end()
    if start < len(chunk):
        frames.append(chunk[start:])
    return frames


_LF, _CR = 0x0A, 0x0D


def frame_bounds(chunk: bytes, pos: int) -> tuple[int, int]:
    """Start and end of the SSE frame of ``chunk`` that holds byte ``pos``: from the blank line
    before it (or the chunk's start) to the end of the blank line after it (or the chunk's end).

    It walks line by line with ``find``/``rfind`` of ``\\n`` (a frame has a few lines), so it
    costs the length of one frame, however long the chunk; only streams with CR-only line ends
    (which the SSE spec allows and no provider sends) take the regex."""
    # The end: the first line end followed by another one.
    i = pos
    while True:
        nl = chunk.find(b"\n", i)
        if nl < 0:
            m = _FRAME_END.search(chunk, i)
            end = m.end() if m else len(chunk)
            break
        if chunk.startswith(b"\n", nl + 1):
            end = nl + 2
            break
        if chunk.startswith(b"\r\n", nl + 1):
            end = nl + 3
            break
        i = nl + 1
    # The start: just after the last line end that closes an empty line.
    i = pos
    while True:
        nl = chunk.rfind(b"\n", 0, i)
        if nl < 0:
            cr = chunk.rfind(b"\r\r", 0, pos)
            return (cr + 2 if cr >= 0 else 0), end
        before = nl - 1 if nl >= 1 and chunk[nl - 1] == _CR else nl
        if before == 0 or (before > 0 and chunk[before - 1] == _LF):
            return nl + 1, end
        i = nl


def frames_with(chunk: bytes, needles: tuple[bytes, ...]) -> list[bytes]:
    """The frames of ``chunk`` that hold one of ``needles``, in order, each once. Found from the
    needles outwards, not by splitting the chunk: a busy gateway reads many frames at once (a
    whole short answer, at times), and only a few of them are worth reading."""
    bounds: dict[int, int] = {}
    for needle in needles:
        pos = chunk.find(needle)
        while pos >= 0:
            start, end = frame_bounds(chunk, pos)
            bounds[start] = end
            pos = chunk.find(needle, end)
    return [chunk[start : bounds[start]] for start in sorted(bounds)]


def last_frame_with(chunk: bytes, needle: bytes) -> bytes | None:
    """The last frame of ``chunk`` that holds ``needle``."""
    pos = chunk.rfind(needle)
    if pos < 0:
        return None
    start, end = frame_bounds(chunk, pos)
    return chunk[start:end]


def json_events(
    chunk: bytes, needles: tuple[bytes, ...], wanted: Callable[[bytes], bool] | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON objects carried by the frames of ``chunk`` that hold one of ``needles`` (and
    that ``wanted`` picks, if given); no other frame is parsed."""
    for frame in frames_with(chunk, needles):
        if wanted is None or wanted(frame):
            event = load(frame_data(frame))
            if isinstance(event, dict):
                yield event


def frame_data(frame: bytes) -> bytes | None:
    """The ``data`` of one SSE frame (its ``data:`` lines joined by ``\\n``), None when it has none."""
    body = frame.rstrip(b"\r\n")
    if body.startswith(b"data: ") and b"\n" not in body and b"\r" not in body:
        return body[6:]
    data = []
    for line in frame.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value[:1] == b" " else value)
    return b"\n".join(data) if data else None


def frame_event(frame: bytes) -> bytes | None:
    """The ``event`` name of one SSE frame, None when it has none."""
    if not frame.startswith(b"event:") and b"\nevent:" not in frame and b"\revent:" not in frame:
        return None
    for line in frame.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None  # pragma: no cover  (found above)


def load(data: bytes | None) -> Any:
    """``data`` as JSON, None when it is absent or not JSON."""
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
