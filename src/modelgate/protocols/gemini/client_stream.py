"""IR stream events → a Gemini ``streamGenerateContent`` answer, chunk by chunk.

Two framings, as Google serves them:

- ``?alt=sse``: every chunk is ``data: {GenerateContentResponse}\\r\\n\\r\\n`` (Google ends
  frames with CRLF CRLF), no terminator;
- without it: one JSON array, streamed element by element: ``[{…}`` then ``\\n,\\r\\n{…}``
  for each further chunk, and ``\\n]`` at the end (each element pretty-printed, two spaces).

Chunks follow Gemini's shape: text deltas are text parts as they come; reasoning deltas are
``thought`` parts, only when the client asked for ``includeThoughts``; Gemini does not stream
function-call arguments, so a tool call's ``input_json`` deltas are collected and its whole
``functionCall`` part goes out at its ``BlockStop`` (with the packed reasoning of another
provider as its ``thoughtSignature``, see :mod:`.signatures`). Every chunk carries
``modelVersion`` and ``responseId``, and ``usageMetadata`` once the input count is known.

Gemini puts ``finishReason`` and the final ``usageMetadata`` on the chunk with the last
content, so each chunk is held until the next event arrives (a keep-alive ``Ping``, after a
quiet spell, releases it too); the message end completes and sends the held chunk, or a
chunk with an empty text part if there was no content. Keep-alive pings produce no bytes:
Gemini's stream has no comment or ping frame, and the SDKs fail on anything but ``data:``.

An error after the start becomes an ``{"error": {...}}`` chunk in the same framing (the SDKs
raise it as an API error); in the array framing it also closes the array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError
from modelgate.protocols.gemini import signatures
from modelgate.protocols.gemini.client_response import call_part, encode_usage, finish_reason, text_part
from modelgate.protocols.gemini.errors import error_body

SSE_END = b"\r\n\r\n"
ARRAY_SEPARATOR = b"\n,\r\n"


@dataclass(slots=True)
class _Open:
    """A block being streamed."""

    block: ir.Block
    pieces: list[str] = field(default_factory=list)
    signature: str | None = None


class StreamEncoder:
    __slots__ = (
        "_blocks",
        "_done",
        "_held",
        "_id",
        "_model",
        "_opened",
        "_pending",
        "_usage",
        "include_thoughts",
        "sse",
    )

    def __init__(self, *, sse: bool, include_thoughts: bool) -> None:
        self.sse = sse
        self.include_thoughts = include_thoughts
        self._model = ""
        self._id = ""
        self._usage: ir.Usage | None = None
        self._blocks: dict[int, _Open] = {}
        self._pending: list[Any] = []  # another provider's reasoning, for the next function call
        self._held: dict[str, Any] | None = None
        self._opened = False  # the array's "[" has gone out
        self._done = False

    # ------------------------------------------------------------------ the StreamEncoder protocol

    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.BlockDelta):
            return self._delta(event)
        if isinstance(event, ir.BlockStart):
            self._blocks[event.index] = _Open(event.block, signature=getattr(event.block, "signature", None))
            return b""
        if isinstance(event, ir.BlockStop):
            return self._stop(event.index)
        if isinstance(event, ir.MessageStart):
            self._id, self._model = event.id, event.model
            self._usage = event.usage if event.usage.input_tokens else None
            return b""
        if isinstance(event, ir.MessageDelta):
            return self._finish(event)
        if isinstance(event, ir.Ping):
            return self._release()
        return b""  # MessageStop: everything went out with the MessageDelta

    def error(self, err: GatewayError) -> bytes:
        if self._done:
            return b""
        out = self._release() + self._frame(error_body(err))
        self._done = True
        return out + (b"\n]" if not self.sse else b"")

    def end(self) -> bytes:
        if self._done:
            return b""
        out = self._release()
        self._done = True
        if self.sse:
            return out
        return out + (b"\n]" if self._opened else b"[]")

    # ------------------------------------------------------------------ internals

    def _delta(self, ev: ir.BlockDelta) -> bytes:
        block = self._blocks.get(ev.index)
        if ev.kind == "text":
            return self._push([text_part(ev.value)])
        if block is None:
            return b""
        if ev.kind == "thinking":
            block.pieces.append(ev.value)
            return self._push([text_part(ev.value, thought=True)]) if self.include_thoughts else b""
        if ev.kind == "input_json":
            block.pieces.append(ev.value)
        elif ev.kind == "signature":
            block.signature = ev.value
            if isinstance(block.block, ir.TextBlock):
                return self._push([text_part("", ev.value)])
        return b""

    def _stop(self, index: int) -> bytes:
        block = self._blocks.pop(index, None)
        if block is None:
            return b""
        b = block.block
        if isinstance(b, ir.ThinkingBlock):
            done = ir.ThinkingBlock("".join(block.pieces), block.signature, b.origin, b.id)
            if signatures.worth_packing(done):
                self._pending.append(done)
        elif isinstance(b, ir.RedactedThinkingBlock):
            self._pending.append(b)
        elif isinstance(b, ir.ToolUseBlock):
            raw = "".join(block.pieces)
            try:
                args = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                args = {"_raw": raw}
            if not isinstance(args, dict):
                args = {"_raw": raw}
            signature = block.signature
            if self._pending:
                signature, self._pending = signatures.pack(self._pending), []
            return self._push([call_part(b.id, b.name, args, signature)])
        return b""

    def _finish(self, ev: ir.MessageDelta) -> bytes:
        chunk = self._held if self._held is not None else self._chunk([text_part("")])
        self._held = None
        candidate = chunk["candidates"][0]
        candidate["finishReason"] = finish_reason(ev.stop_reason)
        candidate["index"] = candidate.pop("index")  # Gemini's key order
        chunk["usageMetadata"] = encode_usage(ev.usage)
        chunk["modelVersion"] = chunk.pop("modelVersion")
        chunk["responseId"] = chunk.pop("responseId")
        return self._frame(chunk)

    def _chunk(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {"candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}]}
        if self._usage is not None:
            chunk["usageMetadata"] = encode_usage(self._usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return chunk

    def _push(self, parts: list[dict[str, Any]]) -> bytes:
        out = self._release()
        self._held = self._chunk(parts)
        return out

    def _release(self) -> bytes:
        if self._held is None:
            return b""
        held, self._held = self._held, None
        return self._frame(held)

    def _frame(self, body: dict[str, Any]) -> bytes:
        if self.sse:
            return b"data: " + orjson.dumps(body) + SSE_END
        prefix = ARRAY_SEPARATOR if self._opened else b"["
        self._opened = True
        return prefix + orjson.dumps(body, option=orjson.OPT_INDENT_2)
