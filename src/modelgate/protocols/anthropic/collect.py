"""An Anthropic Messages stream, collected into the message the non-streamed API returns.

Forced internal streaming (``providers[].force_stream``) sends a client's non-streamed
request upstream as a stream, so that a hung upstream is found by the first-byte timeout;
the client still gets the one JSON message it asked for. :class:`MessageCollector` builds it
from the SSE bytes the way the Anthropic SDK accumulates a stream: ``message_start.message``
(its key order and unknown keys kept), each ``content_block_start`` block filled by its
deltas, ``message_delta.delta`` keys laid over the message, ``message_delta.usage`` counts
over its usage (a count absent or null keeps the earlier one), other ``message_delta`` keys
(``context_management`` …) added to the message.

It is on the path of every non-streamed passthrough request to a forcing provider, and most
of a stream is its text, thinking and tool-input deltas: those, written as Anthropic writes
them, are read by one regular expression over the whole chunk (:data:`_FRAMES`), which keeps
each delta's string *as JSON* (still escaped) — the pieces of a block are joined and decoded
once, at the end. Any other frame is parsed with orjson; ``ping`` and
``content_block_stop`` frames, when the stream names its events, not at all.

An ``error`` event raises the upstream's error (its type gives the status:
``overloaded_error`` → 529 …); a stream that ends before ``message_stop``, or whose events
are not the protocol's, raises :class:`UpstreamUnavailable` (502). Either way nothing has
reached the client, so the attempt is retried or falls back.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.anthropic.errors import error_from_object

#: Events a stream that names them sends with nothing the message needs.
_SKIPPED = frozenset({b"ping", b"content_block_stop"})
#: Each delta kind that grows one string of its block: its key in :attr:`MessageCollector._pieces`
#: (``type","field`` as the compact JSON of the delta writes it) and the block's field.
_GROWING = {
    "text_delta": (b'text_delta","text', "text"),
    "thinking_delta": (b'thinking_delta","thinking', "thinking"),
    "input_json_delta": (b'input_json_delta","partial_json', "partial_json"),
}
_FIELD = {kind: field for kind, field in _GROWING.values()}
#: One SSE frame: (1) the index, (2) the kind and (3) the escaped string of a growing delta
#: written as Anthropic writes it (compact JSON, the string last, data on one line); else (4)
#: any frame (its lines), read by :meth:`MessageCollector._frame`. A JSON string cannot hold a raw quote
#: or line end, so the string group ends exactly where the JSON string does.
_FRAMES = re.compile(
    rb'(?:event: ?content_block_delta\n)?data: ?\{"type":"content_block_delta","index":(\d+),"delta":'
    rb'\{"type":"(text_delta","text|thinking_delta","thinking|input_json_delta","partial_json)":'
    rb'"((?:[^"\\\n]++|\\.)*+)"\}\}\n\n'
    rb"|((?:[^\n]++\n)++)\n"
)
_STREAM_KEY = b',"stream":true'


def with_stream(body: bytes, parsed: dict[str, Any]) -> bytes:
    """``body`` (the JSON object ``parsed``) with ``"stream": true``, the one change to its
    bytes: added before the closing brace, or (when the client wrote ``stream`` itself, as
    false or null) the body re-serialised with it set, key order kept."""
    if "stream" not in parsed:
        end = body.rfind(b"}")
        if end > 0:
            return body[:end] + _STREAM_KEY + body[end:]
    return orjson.dumps({**orjson.loads(body), "stream": True})


class MessageCollector:
    """Feeds on a stream's chunks, cut anywhere; :meth:`finish` returns the message JSON."""

    __slots__ = ("_blocks", "_chunks", "_ended", "_message", "_pieces")

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        #: The message's content blocks by stream index.
        self._blocks: dict[int, dict[str, Any]] = {}
        #: (index as written, delta kind key) → the pieces of a block's growing string, still
        #: escaped as JSON string content (decoded once, joined).
        self._pieces: dict[tuple[bytes, bytes], list[bytes]] = {}
        self._ended = False
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        """Keep one chunk: the stream is read once it has ended (nothing reaches the client
        before), in one pass, which costs far less than a pass per chunk."""
        self._chunks.append(chunk)

    def finish(self) -> bytes:
        """The message JSON, as the non-streamed API writes it; raises when the stream did
        not end as the protocol promises."""
        stream = b"".join(self._chunks)
        self._chunks.clear()
        if stream.find(b"\r") >= 0:  # line ends written CRLF (or CR): read as LF
            stream = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pieces = self._pieces
        for match in _FRAMES.finditer(stream):
            index, kind, piece, frame = match.groups()
            if frame is None:
                key = (index, kind)
                if (known := pieces.get(key)) is None:
                    pieces[key] = [piece]
                else:
                    known.append(piece)
            else:
                self._frame(frame[:-1])
        end = stream.rfind(b"\n\n")
        last = (stream[end + 2 :] if end >= 0 else stream).strip()  # a last frame without its blank line
        if last:
            self._frame(last)
        message = self._message
        if message is None or not self._ended:
            raise UpstreamUnavailable("upstream stream ended before message_stop")
        blocks = self._blocks
        for (index, kind), parts in pieces.items():
            block = blocks.get(int(index))
            name = _FIELD.get(kind) or kind.decode()
            try:
                if block is None:
                    raise ValueError(f"a delta for block {index.decode()}, never started")
                grown = orjson.loads(b'"%s"' % b"".join(parts))
                if name == "partial_json":
                    block["input"] = orjson.loads(grown) if grown.strip() else block.get("input") or {}
                else:
                    before = block.get(name)
                    block[name] = before + grown if isinstance(before, str) else grown
            except ValueError as e:  # orjson's errors too
                raise UpstreamUnavailable(f"upstream streamed a block that is not the protocol's ({e})") from None
        return orjson.dumps(message)

    def _frame(self, frame: bytes) -> None:
        """One SSE frame: its data parsed, unless its event line names an event to skip."""
        if frame.startswith(b"event:"):
            line_end = frame.find(b"\n")
            if line_end < 0 or frame[6:line_end].strip() in _SKIPPED:
                return
            data_at = line_end + 1
        else:
            data_at = 0
        if frame.startswith(b"data:", data_at) and frame.find(b"\n", data_at) < 0:
            data = frame[data_at + 5 :]
        else:  # comments, ids, data over several lines: read line by line
            data = b"\n".join(line[5:].removeprefix(b" ") for line in frame.split(b"\n") if line.startswith(b"data:"))
            if not data:
                return
        try:
            self._event(orjson.loads(data))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise UpstreamUnavailable(f"upstream sent a stream event that is not the protocol's ({e!r:.80})") from None

    def _event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "content_block_delta":
            self._delta(event["index"], event["delta"])
        elif kind == "content_block_start":
            block = event["content_block"]
            if self._message is None or not isinstance(block, dict):
                raise ValueError("content_block_start")
            self._blocks[event["index"]] = block
            self._message["content"].append(block)
        elif kind == "message_start":
            message = event["message"]
            if not isinstance(message.get("content"), list):
                message["content"] = []
            self._message = message
        elif kind == "message_delta":
            self._message_delta(event)
        elif kind == "message_stop":
            self._ended = self._message is not None
        elif kind == "error":
            raise error_from_object(event)

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        kind = delta["type"]
        growing = _GROWING.get(kind)
        if growing is not None:
            key, name = growing
            value = delta[name]
            if not isinstance(value, str):
                raise ValueError(kind)
            self._grow(index, key, value)
            return
        block = self._blocks[index]
        if kind == "signature_delta":  # one delta, the whole signature: it replaces
            block["signature"] = delta["signature"]
        elif kind == "citations_delta":
            citations = block.get("citations")
            if isinstance(citations, list):
                citations.append(delta["citation"])
            else:
                block["citations"] = [delta["citation"]]
        else:
            self._unknown_delta(index, block, delta)

    def _unknown_delta(self, index: int, block: dict[str, Any], delta: dict[str, Any]) -> None:
        """A delta type this gateway does not know: strings grow their field, lists extend
        theirs, anything else replaces it (a newer API's deltas are kept, never a crash)."""
        for name, value in delta.items():
            if name == "type":
                continue
            if isinstance(value, str):
                self._grow(index, name.encode(), value)
            elif isinstance(value, list) and isinstance(block.get(name), list):
                block[name].extend(value)
            else:
                block[name] = value

    def _grow(self, index: int, key: bytes, value: str) -> None:
        """Add ``value`` (decoded by orjson: written back as JSON string content, as the
        frames read by :data:`_FRAMES` keep theirs) to the string ``key`` of block ``index``."""
        self._pieces.setdefault((b"%d" % index, key), []).append(orjson.dumps(value)[1:-1])

    def _message_delta(self, event: dict[str, Any]) -> None:
        message = self._message
        if message is None:
            raise ValueError("message_delta")
        for name, value in event.items():
            if name == "delta":
                for key, changed in value.items():
                    if changed is not None or message.get(key) is None:
                        message[key] = changed
            elif name == "usage":
                usage = message.get("usage")
                if not isinstance(usage, dict):
                    message["usage"] = usage = {}
                for key, count in value.items():
                    if count is not None:
                        usage[key] = count
            elif name != "type":
                message[name] = value
