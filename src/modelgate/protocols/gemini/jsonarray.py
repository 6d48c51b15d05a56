"""Cutting a streamed JSON array (``streamGenerateContent`` without ``alt=sse``) on element
boundaries, without changing a byte.

A passthrough must not hand the client half an element followed by an error: the bytes are
released only up to the array's opening bracket, the end of a whole element or a top-level
comma, so an error element can always follow (:meth:`ArrayCutter.error_tail`, with a comma
when one is needed) and leave valid JSON. Strings (and their escapes) are tracked, so brackets and commas inside
text never count.
"""

from __future__ import annotations

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_COMMA = ord(",")


class ArrayCutter:
    __slots__ = ("_after_element", "_depth", "_escaped", "_in_string", "_pending", "released")

    def __init__(self) -> None:
        self._pending = b""
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._after_element = False  # the released bytes end with a whole element (a comma is due)
        #: Whether any bytes have gone out (the opening bracket at least).
        self.released = False

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that may go out now (possibly empty)."""
        start = len(self._pending)
        data = self._pending + chunk
        cut, after_element = -1, False
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
                    cut, after_element = i + 1, False
            elif c in _CLOSE:
                depth -= 1
                if depth == 1:
                    cut, after_element = i + 1, True
            elif c == _COMMA and depth == 1:
                cut, after_element = i + 1, False
        self._depth, self._in_string, self._escaped = depth, in_string, escaped
        if cut < 0:
            self._pending = data
            return b""
        self._pending = data[cut:]
        self._after_element = after_element
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
        if self._after_element:
            return b"\n,\r\n" + error_json + b"\n]"
        return error_json + b"\n]"
