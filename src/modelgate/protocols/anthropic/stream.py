"""Stream events: IR events → Anthropic SSE frames, and an upstream's frames → IR events."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.anthropic.blocks import decode_block, encode_block
from modelgate.protocols.anthropic.errors import error_body, error_from_object
from modelgate.protocols.anthropic.response import decode_usage, encode_usage
from modelgate.protocols.sse import SSEFrame, encode_frame


def _block_start_json(b: ir.Block) -> dict[str, Any]:
    if isinstance(b, ir.TextBlock):
        return {"type": "text", "text": ""}
    if isinstance(b, ir.ToolUseBlock):
        return {"type": "tool_use", "id": b.id, "name": b.name, "input": {}}
    if isinstance(b, ir.ThinkingBlock):
        return {"type": "thinking", "thinking": ""}
    return encode_block(b)


_DELTA_TYPES = {
    "text": ("text_delta", "text"),
    "input_json": ("input_json_delta", "partial_json"),
    "thinking": ("thinking_delta", "thinking"),
    "signature": ("signature_delta", "signature"),
    "citation": ("citations_delta", "citation"),
}


def encode_event(ev: ir.StreamEvent) -> bytes:
    """One IR stream event → one Anthropic SSE frame."""
    if isinstance(ev, ir.BlockDelta):
        dtype, key = _DELTA_TYPES[ev.kind]
        payload: dict[str, Any] = {
            "type": "content_block_delta",
            "index": ev.index,
            "delta": {"type": dtype, key: ev.value},
        }
        return encode_frame(orjson.dumps(payload), "content_block_delta")
    if isinstance(ev, ir.BlockStart):
        payload = {"type": "content_block_start", "index": ev.index, "content_block": _block_start_json(ev.block)}
        return encode_frame(orjson.dumps(payload), "content_block_start")
    if isinstance(ev, ir.BlockStop):
        return encode_frame(orjson.dumps({"type": "content_block_stop", "index": ev.index}), "content_block_stop")
    if isinstance(ev, ir.MessageStart):
        message: dict[str, Any] = {
            "id": ev.id,
            "type": "message",
            "role": "assistant",
            "model": ev.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(ev.usage),
        }
        return encode_frame(orjson.dumps({"type": "message_start", "message": message}), "message_start")
    if isinstance(ev, ir.MessageDelta):
        usage = {
            "input_tokens": ev.usage.input_tokens,
            "cache_creation_input_tokens": ev.usage.cache_write_tokens,
            "cache_read_input_tokens": ev.usage.cache_read_tokens,
            "output_tokens": ev.usage.output_tokens,
        }
        payload = {
            "type": "message_delta",
            "delta": {"stop_reason": ev.stop_reason, "stop_sequence": ev.stop_sequence},
            "usage": usage,
        }
        return encode_frame(orjson.dumps(payload), "message_delta")
    if isinstance(ev, ir.MessageStop):
        return encode_frame(b'{"type":"message_stop"}', "message_stop")
    if isinstance(ev, ir.Ping):
        return encode_frame(b'{"type":"ping"}', "ping")
    if isinstance(ev, ir.StreamError):
        return encode_frame(orjson.dumps(error_body(ev.error)), "error")
    raise TypeError(f"unknown stream event {ev!r}")  # pragma: no cover


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
