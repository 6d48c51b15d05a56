"""IR stream events → Anthropic SSE frames, for a client on the translated path.

Anthropic's stream events map one to one onto the IR's (the IR streams in Anthropic's shape), so
:func:`encode_event` needs no state and :class:`StreamEncoder` only wraps it: a keep-alive
:class:`ir.Ping` is a ``ping`` event, an error after the start an ``error`` event in the
envelope of :mod:`.errors`, and the end needs no bytes of its own (``message_stop`` is an IR
event too)."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError
from modelgate.protocols.anthropic.blocks import encode_block
from modelgate.protocols.anthropic.client_response import encode_usage
from modelgate.protocols.anthropic.errors import error_body
from modelgate.protocols.sse import encode_frame


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


class StreamEncoder:
    """Anthropic's stream events map one to one onto the IR's: no state needed."""

    __slots__ = ()

    def encode(self, event: ir.StreamEvent) -> bytes:
        return encode_event(event)

    def error(self, err: GatewayError) -> bytes:
        return encode_event(ir.StreamError(err))

    def end(self) -> bytes:
        return b""
