"""An Anthropic Messages stream, collected into the message the non-streamed API returns.

Forced internal streaming (``providers[].force_stream``) sends a client's non-streamed
request upstream as a stream, so that a hung upstream is found by the first-byte timeout;
the client still gets the one JSON message it asked for. :class:`MessageCollector` builds it
from the SSE bytes the way the Anthropic SDK accumulates a stream: ``message_start.message``
(its key order and unknown keys kept), each ``content_block_start`` block filled by its
deltas, ``message_delta.delta`` keys laid over the message, ``message_delta.usage`` counts
over its usage (a count absent or null keeps the earlier one), other ``message_delta`` keys
(``context_management`` …) added to the message.

It is on the path of every non-streamed passthrough request to a forcing provider, so it
parses each frame once with orjson and builds no object per event but that parse; ``ping``
and ``content_block_stop`` frames, when the stream names its events, are not parsed at all.
Text deltas are kept as lists of pieces and joined at the end (a ``+=`` per delta on a
string held in a dict would copy the text each time).

An ``error`` event raises the upstream's error (its type gives the status:
``overloaded_error`` → 529 …); a stream that ends before ``message_stop``, or whose events
are not the protocol's, raises :class:`UpstreamUnavailable` (502). Either way nothing has
reached the client, so the attempt is retried or falls back.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.anthropic.errors import error_from_object

#: Events a stream that names them sends with nothing the message needs.
_SKIPPED = frozenset({b"ping", b"content_block_stop"})
#: The deltas that grow one string field of their block, and that field.
_GROWING = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
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
    """Feeds on a stream's chunks (whole frames, as the relay cuts them); :meth:`finish`
    returns the message JSON."""

    __slots__ = ("_blocks", "_buffer", "_ended", "_message", "_pieces")

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        #: The message's content blocks by stream index.
        self._blocks: dict[int, dict[str, Any]] = {}
        #: (index, field) → the pieces of a block's growing string.
        self._pieces: dict[tuple[int, str], list[str]] = {}
        self._ended = False
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        """Read the whole frames of ``chunk`` (a frame cut across chunks waits for its end)."""
        if self._buffer:
            chunk = self._buffer + chunk
        if chunk.find(b"\r") >= 0:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        start = 0
        while (end := chunk.find(b"\n\n", start)) >= 0:
            if end > start:
                self._frame(chunk[start:end])
            start = end + 2
        self._buffer = chunk[start:]

    def finish(self) -> bytes:
        """The message JSON, as the non-streamed API writes it; raises when the stream did
        not end as the protocol promises."""
        if self._buffer.strip():
            self._frame(self._buffer.strip(b"\n"))
            self._buffer = b""
        message = self._message
        if message is None or not self._ended:
            raise UpstreamUnavailable("upstream stream ended before message_stop")
        blocks = self._blocks
        for (index, name), pieces in self._pieces.items():
            block = blocks[index]
            if name == "partial_json":
                raw = "".join(pieces)
                try:
                    block["input"] = orjson.loads(raw) if raw.strip() else block.get("input") or {}
                except orjson.JSONDecodeError:
                    raise UpstreamUnavailable("upstream streamed tool input that is not JSON") from None
            else:
                before = block.get(name)
                block[name] = (before if isinstance(before, str) else "") + "".join(pieces)
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
        name = _GROWING.get(kind)
        if name is not None:
            value = delta[name]
            if index not in self._blocks or not isinstance(value, str):
                raise ValueError(kind)
            if (pieces := self._pieces.get((index, name))) is None:
                self._pieces[(index, name)] = [value]
            else:
                pieces.append(value)
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
                self._pieces.setdefault((index, name), []).append(value)
            elif isinstance(value, list) and isinstance(block.get(name), list):
                block[name].extend(value)
            else:
                block[name] = value

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
