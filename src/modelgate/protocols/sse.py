"""Server-sent events: an incremental parser and the frame encoder.

The parser is fed raw bytes exactly as they come off the socket. It only
decodes a frame once the whole frame has arrived, so a multi-byte UTF-8
character or a ``\\r\\n`` split across two chunks is never corrupted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEFrame:
    event: str | None
    data: str
    id: str | None = None


class SSEParser:
    """Turns a byte stream into :class:`SSEFrame` objects, one ``feed`` at a time."""

    __slots__ = ("_buf", "_held_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._held_cr = False

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # It may be the first half of a CRLF: decide when the next chunk comes.
                chunk = chunk[:-1]
                self._held_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        frames: list[SSEFrame] = []
        start = 0
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            frame = _parse_frame(buf[start:end])
            if frame is not None:
                frames.append(frame)
            start = end + 2
        self._buf = buf[start:]
        return frames

    def flush(self) -> list[SSEFrame]:
        """Parse what is left when the stream ends without a final blank line."""
        rest, self._buf = self._buf, b""
        if self._held_cr:
            self._held_cr = False
        frame = _parse_frame(rest.strip(b"\n")) if rest.strip() else None
        return [frame] if frame is not None else []


def _parse_frame(raw: bytes) -> SSEFrame | None:
    event: str | None = None
    ident: str | None = None
    data: list[str] = []
    for line in raw.decode("utf-8", errors="replace").split("\n"):
        if not line or line[0] == ":":
            continue
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            ident = value
    if not data and event is None:
        return None
    return SSEFrame(event, "\n".join(data), ident)


def encode_frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE frame; ``data`` must be a single line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
