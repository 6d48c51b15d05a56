"""An Anthropic upstream's SSE frames → IR stream events (translated path).

Each frame maps to at most one IR event (frames of unknown types to none). ``message_start``
and ``message_delta`` carry the usage, cumulative (fields a ``message_delta`` leaves out keep
their value). An ``error`` event becomes an :class:`ir.StreamError` holding the upstream's
error (:func:`.errors.error_from_object`), and a body that ends before ``message_stop`` was
cut short: an :class:`ir.StreamError` too.
"""

from __future__ import annotations

import orjson

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.anthropic.blocks import decode_block
from modelgate.protocols.anthropic.errors import error_from_object
from modelgate.protocols.anthropic.upstream_response import decode_usage
from modelgate.protocols.sse import SSEFrame


class StreamDecoder:
    """Anthropic SSE frames (from an upstream) → IR events."""

    __slots__ = ("done", "usage")

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self.done = False

    def finish(self) -> list[ir.StreamEvent]:
        """Called when the upstream body ends: a stream without ``message_stop`` was cut short."""
        if self.done:
            return []
        return [ir.StreamError(UpstreamUnavailable("upstream stream ended before message_stop"))]

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        if not frame.data:
            return []
        data = orjson.loads(frame.data)
        kind = data.get("type")
        if kind == "content_block_delta":
            d = data["delta"]
            dtype = d.get("type")
            if dtype == "text_delta":
                return [ir.BlockDelta(data["index"], "text", d["text"])]
            if dtype == "input_json_delta":
                return [ir.BlockDelta(data["index"], "input_json", d["partial_json"])]
            if dtype == "thinking_delta":
                return [ir.BlockDelta(data["index"], "thinking", d["thinking"])]
            if dtype == "signature_delta":
                return [ir.BlockDelta(data["index"], "signature", d["signature"])]
            if dtype == "citations_delta":
                return [ir.BlockDelta(data["index"], "citation", d["citation"])]
            return []
        if kind == "content_block_start":
            return [ir.BlockStart(data["index"], decode_block(data["content_block"]))]
        if kind == "content_block_stop":
            return [ir.BlockStop(data["index"])]
        if kind == "message_start":
            msg = data["message"]
            self.usage = decode_usage(msg.get("usage"))
            return [ir.MessageStart(msg.get("id", ""), msg.get("model", ""), self.usage)]
        if kind == "message_delta":
            self.usage = decode_usage(data.get("usage"), self.usage)
            delta = data.get("delta") or {}
            return [ir.MessageDelta(delta.get("stop_reason"), self.usage, delta.get("stop_sequence"))]
        if kind == "message_stop":
            self.done = True
            return [ir.MessageStop()]
        if kind == "ping":
            return [ir.Ping()]
        if kind == "error":
            self.done = True
            return [ir.StreamError(error_from_object(data))]
        return []
