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
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError

#: The end of one SSE frame: two line ends in a row (``\\n``, ``\\r\\n`` or ``\\r``; atomic, so
#: the two halves of one ``\\r\\n`` never count as two line ends).
_FRAME_END = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")


class AnswerTap(ABC):
    """Reads usage and the end of one passthrough answer as it goes by."""

    __slots__ = ()

    #: None until the answer said it.
    usage: ir.Usage | None
    #: The answer reached the end its protocol promises.
    ended: bool
    #: The upstream itself ended it with an error (error event / ``response.failed``).
    failed: bool
    #: That error, as the protocol's codec reads it (``error_from_object``).
    error: UpstreamHTTPError | None
    #: The protocol's own stop/finish reason, as sent.
    stop_reason: str | None
    #: The model id the upstream says served.
    model: str | None

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes:
        """One chunk of a streamed answer; returns the bytes to forward (normally `chunk` itself, same object)."""

    @abstractmethod
    def whole(self, body: bytes) -> None:
        """A non-streamed answer body (JSON)."""


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


#: Blank lines that can end the frame before a position (LF, CRLF and CR line ends, and the
#: mixed pairs), for finding a frame from inside it.
_BLANK_LINES = (b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n", b"\r\n\n")


def frame_bounds(chunk: bytes, pos: int) -> tuple[int, int]:
    """Start and end of the SSE frame of ``chunk`` that holds byte ``pos``: from the blank line
    before it (or the chunk's start) to the end of the blank line after it (or the chunk's end)."""
    start = 0
    for blank in _BLANK_LINES:
        i = chunk.rfind(blank, 0, pos)
        if i >= 0 and i + len(blank) > start:
            start = i + len(blank)
    end = _FRAME_END.search(chunk, pos)
    return start, end.end() if end else len(chunk)


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
