"""An Anthropic upstream's ``message`` object → IR answer, and its usage (also read by the
stream decoder and the tap)."""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.anthropic.blocks import decode_block


def decode_usage(raw: dict[str, Any] | None, base: ir.Usage | None = None) -> ir.Usage:
    """Anthropic usage → IR; fields absent from ``raw`` keep their value in ``base``."""
    if not raw:
        return base or ir.Usage()
    get = raw.get  # on every passthrough answer (the tap): no helper call per field
    input_tokens = get("input_tokens")
    output_tokens = get("output_tokens")
    cache_read = get("cache_read_input_tokens")
    cache_write = get("cache_creation_input_tokens")
    if base is None:  # the usual case: no defaults to fall back on but zeros
        return ir.Usage(
            input_tokens if input_tokens.__class__ is int else 0,
            output_tokens if output_tokens.__class__ is int else 0,
            cache_read if cache_read.__class__ is int else 0,
            cache_write if cache_write.__class__ is int else 0,
        )
    return ir.Usage(
        input_tokens if isinstance(input_tokens, int) else base.input_tokens,
        output_tokens if isinstance(output_tokens, int) else base.output_tokens,
        cache_read if isinstance(cache_read, int) else base.cache_read_tokens,
        cache_write if isinstance(cache_write, int) else base.cache_write_tokens,
        base.reasoning_tokens,
    )


def decode_response(body: dict[str, Any]) -> ir.Response:
    return ir.Response(
        id=body.get("id", ""),
        model=body.get("model", ""),
        content=[decode_block(b) for b in body.get("content") or []],
        stop_reason=body.get("stop_reason"),
        stop_sequence=body.get("stop_sequence"),
        usage=decode_usage(body.get("usage")),
    )
