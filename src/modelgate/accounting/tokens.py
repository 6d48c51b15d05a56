"""Local token estimates, for upstreams that cannot count tokens themselves.

No tokenizer may be downloaded at run time, so this is a documented heuristic
that errs on the high side: undercounting makes Claude Code skip compaction
and then fail with "prompt is too long", overcounting only compacts early.

- text: one token per 3 characters (Claude and GPT tokenizers average 3.5–4
  characters per token on English and code; 3 covers denser scripts), rounded up;
- every message, system block and tool adds a small framing overhead;
- tool definitions count their name, description and JSON schema as text;
- images: 1,600 tokens each (Anthropic's figure for a ~1.15 megapixel image);
- documents: text sources as text; base64 PDFs as 1 token per 3 decoded bytes
  of extracted text, estimated as 1/8 of the file size, and at least 1,500 tokens.
"""

from __future__ import annotations

import math

import orjson

from modelgate import ir

CHARS_PER_TOKEN = 3.0
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 12
IMAGE_TOKENS = 1600
PDF_MIN_TOKENS = 1500


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def block_tokens(block: ir.Block) -> int:
    if isinstance(block, ir.TextBlock):
        return text_tokens(block.text)
    if isinstance(block, ir.ImageBlock):
        return IMAGE_TOKENS
    if isinstance(block, ir.ToolUseBlock):
        return text_tokens(block.name) + text_tokens(orjson.dumps(block.input).decode()) + MESSAGE_OVERHEAD
    if isinstance(block, ir.ToolResultBlock):
        return MESSAGE_OVERHEAD + sum(block_tokens(b) for b in block.content)
    if isinstance(block, ir.ThinkingBlock):
        return text_tokens(block.thinking)
    if isinstance(block, ir.RedactedThinkingBlock):
        return text_tokens(block.data) // 4
    if isinstance(block, ir.DocumentBlock):
        return _document_tokens(block)
    return 0  # pragma: no cover - exhaustive over ir.Block


def _document_tokens(block: ir.DocumentBlock) -> int:
    source = block.source
    kind = source.get("type")
    if kind == "text":
        return text_tokens(str(source.get("data", "")))
    if kind == "content" and isinstance(source.get("content"), list):
        return sum(text_tokens(str(c.get("text", ""))) for c in source["content"] if isinstance(c, dict))
    if kind == "base64":
        decoded = len(str(source.get("data", ""))) * 3 // 4
        return max(PDF_MIN_TOKENS, math.ceil(decoded / 8 / CHARS_PER_TOKEN))
    return PDF_MIN_TOKENS


def estimate_request_tokens(req: ir.Request) -> int:
    """Estimated input tokens of a request: system, messages (nested tool results too), tools."""
    total = 0
    for block in req.system or ():
        total += text_tokens(block.text) + MESSAGE_OVERHEAD
    for message in req.messages:
        total += MESSAGE_OVERHEAD + sum(block_tokens(b) for b in message.content)
    for tool in req.tools or ():
        schema = orjson.dumps(tool.input_schema).decode()
        total += TOOL_OVERHEAD + text_tokens(tool.name) + text_tokens(tool.description or "") + text_tokens(schema)
    return max(total, 1)
