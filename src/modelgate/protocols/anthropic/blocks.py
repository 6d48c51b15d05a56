"""Content blocks, Anthropic JSON ↔ IR blocks, for both directions (and the package's protocol id)."""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import WireProtocol

PROTOCOL = WireProtocol.ANTHROPIC


def decode_block(b: Any, where: str = "content") -> ir.Block:
    if not isinstance(b, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    kind = b.get("type")
    cc = b.get("cache_control")
    if kind == "text":
        if not isinstance(b.get("text"), str):
            raise InvalidRequest(f"{where}.text: Field required")
        return ir.TextBlock(b["text"], cc, b.get("citations"))
    if kind == "image":
        src = b.get("source") or {}
        if src.get("type") == "base64":
            return ir.ImageBlock(src.get("media_type"), src.get("data"), None, cc)
        if src.get("type") == "url":
            return ir.ImageBlock(None, None, src.get("url"), cc)
        raise InvalidRequest(f"{where}.source: image source must be base64 or url")
    if kind == "document":
        if not isinstance(b.get("source"), dict):
            raise InvalidRequest(f"{where}.source: Field required")
        return ir.DocumentBlock(b["source"], b.get("title"), b.get("context"), b.get("citations"), cc)
    if kind == "tool_use":
        return ir.ToolUseBlock(str(b.get("id", "")), str(b.get("name", "")), b.get("input") or {}, cc)
    if kind == "tool_result":
        content = b.get("content")
        if content is None:
            inner: list[Any] = []
        elif isinstance(content, str):
            inner = [ir.TextBlock(content)]
        else:
            inner = [decode_block(x, f"{where}.content.{j}") for j, x in enumerate(content)]
        return ir.ToolResultBlock(str(b.get("tool_use_id", "")), inner, bool(b.get("is_error")), cc)
    if kind == "thinking":
        return ir.ThinkingBlock(b.get("thinking", ""), b.get("signature"), PROTOCOL)
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(b.get("data", ""))
    raise InvalidRequest(f"{where}.type: content block type {kind!r} is not supported on this route")


def encode_block(b: ir.Block) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(b, ir.TextBlock):
        out = {"type": "text", "text": b.text}
        if b.citations is not None:
            out["citations"] = b.citations
    elif isinstance(b, ir.ToolUseBlock):
        out = {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
    elif isinstance(b, ir.ThinkingBlock):
        out = {"type": "thinking", "thinking": b.thinking}
        if b.signature is not None:
            out["signature"] = b.signature
        return out
    elif isinstance(b, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    elif isinstance(b, ir.ImageBlock):
        src: dict[str, Any]
        if b.url is not None:
            src = {"type": "url", "url": b.url}
        else:
            src = {"type": "base64", "media_type": b.media_type, "data": b.data}
        out = {"type": "image", "source": src}
    elif isinstance(b, ir.DocumentBlock):
        out = {"type": "document", "source": b.source}
        for name in ("title", "context", "citations"):
            if getattr(b, name) is not None:
                out[name] = getattr(b, name)
    elif isinstance(b, ir.ToolResultBlock):
        out = {"type": "tool_result", "tool_use_id": b.tool_use_id, "content": [encode_block(x) for x in b.content]}
        if b.is_error:
            out["is_error"] = True
    else:  # pragma: no cover - exhaustive over ir.Block
        raise TypeError(f"unknown block {b!r}")
    if b.cache_control:
        out["cache_control"] = b.cache_control
    return out
