"""A Gemini upstream's ``streamGenerateContent?alt=sse`` frames → IR stream events.

Gemini streams whole parts, not blocks, and no terminator: the chunk with ``finishReason``
is the last one, and the body simply ends. :class:`StreamDecoder` rebuilds Anthropic-style
blocks:

- :class:`ir.MessageStart` from the first chunk (``responseId``, ``modelVersion``, the input
  count of its ``usageMetadata``);
- consecutive ``thought`` parts fill one thinking block (origin "gemini"), consecutive text
  parts one text block; a part of another kind closes the open block, so indexes run 0, 1,
  2… with one stop each. A ``thoughtSignature`` on a thought part becomes a ``signature``
  delta of its thinking block. One on a text part (Gemini sends it on the last part, often
  an empty one) is not streamed: Gemini does not require it back (only function-call
  signatures are checked), and Anthropic's stream has no slot for it: a ``signature_delta``
  on a text block would break strict clients. The non-streamed answer keeps it
  (``TextBlock.signature``), where it costs nothing;
- a ``functionCall`` part is a whole tool_use block at once: start (id, name, and its
  signature in ``ToolUseBlock.signature``), all its ``args`` as one ``input_json`` delta, stop;
- ``usageMetadata`` is cumulative: the last one wins (see :mod:`.upstream_response` for the mapping);
- when the body ends (:meth:`finish`) after a ``finishReason``, the open block closes and
  :class:`ir.MessageDelta` (stop reason, usage) and :class:`ir.MessageStop` follow; a body
  that ends without one was cut short: :class:`ir.StreamError`. So is a frame that is not
  JSON, inline data (images cannot be expressed in the IR), and an ``{"error": {...}}``
  frame, which becomes an :class:`UpstreamHTTPError` (protocol "gemini").
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable
from modelgate.protocols.gemini.errors import error_from_object
from modelgate.protocols.gemini.fields import get
from modelgate.protocols.gemini.upstream_response import decode_part, decode_usage, stop_reason
from modelgate.protocols.sse import SSEFrame

#: The kind of the block being streamed, if one is open.
_Open = Literal["thinking", "text"]


class StreamDecoder:
    __slots__ = ("_calls", "_done", "_finish", "_id", "_index", "_next", "_open", "_started", "usage")

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self._id = ""
        self._started = False
        self._done = False
        self._next = 0
        self._index = -1
        self._open: _Open | None = None
        self._calls = 0
        self._finish: Any = None

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        if self._done or not frame.data.strip():
            return []
        try:
            chunk = orjson.loads(frame.data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamUnavailable("upstream sent a stream chunk that is not JSON"))
        if isinstance(chunk, list) and len(chunk) == 1:
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            return self._fail(UpstreamUnavailable("upstream sent a stream chunk that is not a JSON object"))
        if isinstance(chunk.get("error"), dict):
            return self._fail(error_from_object(chunk, None))
        out: list[ir.StreamEvent] = []
        if not self._started:
            self._id = str(get(chunk, "responseId") or "")
            self.usage = decode_usage(get(chunk, "usageMetadata"))
            start = ir.Usage(self.usage.input_tokens, cache_read_tokens=self.usage.cache_read_tokens)
            out.append(ir.MessageStart(self._id, str(get(chunk, "modelVersion") or ""), start))
            self._started = True
        elif get(chunk, "usageMetadata") is not None:
            self.usage = decode_usage(get(chunk, "usageMetadata"))
        candidates = get(chunk, "candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
        content = get(candidate, "content") or {}
        for part in get(content, "parts") or ():
            if isinstance(part, dict):
                try:
                    self._part(part, out)
                except GatewayError as e:
                    return out + self._fail(e)
        if get(candidate, "finishReason"):
            self._finish = get(candidate, "finishReason")
        feedback = get(chunk, "promptFeedback")
        if not candidates and isinstance(feedback, dict) and get(feedback, "blockReason"):
            self._finish = "SAFETY"
        return out

    def finish(self) -> list[ir.StreamEvent]:
        """The upstream body ended: a normal end after a ``finishReason``, else an error."""
        if self._done:
            return []
        if self._finish is None:
            return self._fail(UpstreamUnavailable("upstream stream ended before its finishReason"))
        out: list[ir.StreamEvent] = []
        self._close(out)
        out.append(ir.MessageDelta(stop_reason(self._finish, tool_use=self._calls > 0), self.usage))
        out.append(ir.MessageStop())
        self._done = True
        return out

    # ----------------------------------------------------------------------- internals

    def _part(self, part: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        block = decode_part(part, self._id, self._calls)
        if block is None:
            return
        if isinstance(block, ir.ToolUseBlock):
            self._close(out)
            self._calls += 1
            index = self._take_index()
            args = block.input
            block.input = {}
            out.append(ir.BlockStart(index, block))
            out.append(ir.BlockDelta(index, "input_json", orjson.dumps(args).decode()))
            out.append(ir.BlockStop(index))
            return
        kind: _Open
        if isinstance(block, ir.ThinkingBlock):
            kind, text, signature = "thinking", block.thinking, block.signature
            fresh: ir.Block = ir.ThinkingBlock("", origin="gemini")
        else:
            assert isinstance(block, ir.TextBlock)
            if not block.text:
                return  # a signature alone on an empty text part: see the module docstring
            kind, text, signature = "text", block.text, None
            fresh = ir.TextBlock("")
        if self._open != kind:
            self._close(out)
            self._open = kind
            self._index = self._take_index()
            out.append(ir.BlockStart(self._index, fresh))
        if text:
            out.append(ir.BlockDelta(self._index, kind, text))
        if signature is not None:
            out.append(ir.BlockDelta(self._index, "signature", signature))

    def _take_index(self) -> int:
        index = self._next
        self._next += 1
        return index

    def _close(self, out: list[ir.StreamEvent]) -> None:
        if self._open is not None:
            out.append(ir.BlockStop(self._index))
            self._open = None

    def _fail(self, error: GatewayError) -> list[ir.StreamEvent]:
        self._done = True
        return [ir.StreamError(error)]
