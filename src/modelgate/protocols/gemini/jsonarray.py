"""Cutting a streamed JSON array (``streamGenerateContent`` without ``alt=sse``) on element
boundaries, without changing a byte.

A passthrough must not hand the client half an element followed by an error: the bytes are
released only up to the array's opening bracket or a top-level comma, points where a new
element may start, so an error element can always follow (:meth:`ArrayCutter.error_tail`)
and leave valid JSON. Strings (and their escapes) are tracked, so brackets and commas inside
text never count.
"""

from __future__ import annotations

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_COMMA = ord(",")


class ArrayCutter:
    __slots__ = ("_depth", "_escaped", "_in_string", "_pending", "released")

    def __init__(self) -> None:
        self._pending = b""
        self._depth = 0
        self._in_string = False
        self._escaped = False
        #: Whether any bytes have gone out (the opening bracket at least).
        self.released = False

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that may go out now (possibly empty)."""
        start = len(self._pending)
        data = self._pending + chunk
        cut = -1
        depth, in_string, escaped = self._depth, self._in_string, self._escaped
        for i in range(start, len(data)):
            c = data[i]
            if in_string:
                if escaped:
                    escaped = False
                elif c == _BACKSLASH:
                    escaped = True
                elif c == _QUOTE:
                    in_string = False
            elif c == _QUOTE:
                in_string = True
            elif c in _OPEN:
                depth += 1
                if depth == 1:
                    cut = i + 1
            elif c in _CLOSE:
                depth -= 1
            elif c == _COMMA and depth == 1:
                cut = i + 1
        self._depth, self._in_string, self._escaped = depth, in_string, escaped
        if cut < 0:
            self._pending = data
            return b""
        self._pending = data[cut:]
        self.released = True
        return data[:cut]

    def flush(self) -> bytes:
        """What is left when the body ends normally (the last element and the closing bracket)."""
        rest, self._pending = self._pending, b""
        if rest:
            self.released = True
        return rest

    def error_tail(self, error_json: bytes) -> bytes:
        """An error element that closes the array after what was released."""
        if not self.released:
            return b"[" + error_json + b"\n]"
        return error_json + b"\n]"
