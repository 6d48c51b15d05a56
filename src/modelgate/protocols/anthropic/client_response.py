"""IR answer → the Messages ``message`` object a client gets (translated path), and its usage."""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.anthropic.blocks import encode_block


def encode_usage(u: ir.Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    }


def encode_response(resp: ir.Response) -> dict[str, Any]:
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": [encode_block(b) for b in resp.content],
        "stop_reason": resp.stop_reason,
        "stop_sequence": resp.stop_sequence,
        "usage": encode_usage(resp.usage),
    }
