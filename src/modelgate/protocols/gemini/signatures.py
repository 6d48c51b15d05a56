"""Thought signatures: Gemini's, and other providers' reasoning carried inside them.

Gemini clients send every ``thoughtSignature`` back exactly as they got it, on
the part that carried it; that is the one opaque slot they preserve across
turns. When a Gemini client talks to another provider (translated path), the
reasoning that provider wrote (an Anthropic thinking block and its signature,
an OpenAI encrypted reasoning item) must come back on the next turn too: Anthropic
refuses a tool-use continuation whose thinking block is missing. So that
reasoning is *packed* into the ``thoughtSignature`` of the function call it led
to, and unpacked when the call comes back:

    base64( MAGIC + JSON [{"thinking", "signature", "origin", "id"} | {"redacted": data}, ...] )

Standard base64 with padding, so that SDKs which store signatures as bytes
(google-genai decodes and re-encodes them, url-safe) give back the same value;
:func:`unpack` accepts both alphabets. A Gemini signature never starts with
the magic bytes, so a real one is never mistaken for a packed one.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from modelgate import ir

MAGIC = b"\x00mg-thought-1\x00"
#: Values Google documents as "no signature, do not validate", for calls Gemini did not write.
SKIP_VALIDATOR = "skip_thought_signature_validator"
SKIP_VALUES = frozenset({SKIP_VALIDATOR, "context_engineering_is_the_way_to_go"})


def b64decode(value: str) -> bytes | None:
    """Standard or url-safe base64, padded or not; None when it is neither."""
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def pack(blocks: list[ir.ThinkingBlock | ir.RedactedThinkingBlock]) -> str:
    """Another provider's reasoning blocks as one ``thoughtSignature`` value."""
    items: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, ir.RedactedThinkingBlock):
            items.append({"redacted": b.data})
            continue
        item: dict[str, Any] = {"thinking": b.thinking}
        for name in ("signature", "origin", "id"):
            value = getattr(b, name)
            if value is not None:
                item[name] = value
        items.append(item)
    return base64.b64encode(MAGIC + orjson.dumps(items)).decode()


def unpack(signature: str | None) -> list[ir.ThinkingBlock | ir.RedactedThinkingBlock] | None:
    """The reasoning blocks packed by :func:`pack`, or None for any other signature."""
    if not signature or len(signature) < 20:
        return None
    raw = b64decode(signature)
    if raw is None or not raw.startswith(MAGIC):
        return None
    try:
        items = orjson.loads(raw[len(MAGIC) :])
    except orjson.JSONDecodeError:
        return None
    blocks: list[ir.ThinkingBlock | ir.RedactedThinkingBlock] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("redacted"), str):
            blocks.append(ir.RedactedThinkingBlock(item["redacted"]))
        elif isinstance(item.get("thinking"), str):
            blocks.append(ir.ThinkingBlock(item["thinking"], item.get("signature"), item.get("origin"), item.get("id")))
    return blocks


def worth_packing(block: ir.Block) -> bool:
    """Signed reasoning written by a provider other than Gemini: it must come back, so it
    travels packed. Unsigned reasoning is never sent back to any upstream, so it is not."""
    if isinstance(block, ir.RedactedThinkingBlock):
        return True
    return isinstance(block, ir.ThinkingBlock) and block.origin != "gemini" and block.signature is not None
