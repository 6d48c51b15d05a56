"""IR answer → the ``GenerateContentResponse`` a Gemini client gets (translated path), and the
pieces :mod:`.client_stream` builds its chunks from (parts, usage, finish reasons).

- one candidate, ``index`` 0, ``content.role`` "model"; text blocks → text parts; tool_use →
  ``functionCall`` {``id``, ``name``, ``args``} parts; thinking → ``{"text", "thought": true}``
  parts only when the client asked for ``includeThoughts`` (Gemini shows reasoning only then).
  Another provider's signed reasoning is packed into the ``thoughtSignature`` of the first
  function call that follows it (see :mod:`.signatures`), so it comes back on the next turn;
  without a function call it is not needed again and is not sent. Ids the gateway made up
  for function calls that had none (``gmcall_…``) are not sent.
- ``finishReason``: end_turn, stop_sequence, tool_use, pause_turn → STOP (Gemini says STOP
  after function calls too), max_tokens → MAX_TOKENS, refusal → SAFETY.
- ``usageMetadata``: ``promptTokenCount`` = input + cache reads + cache writes (Gemini
  counts cached tokens inside the prompt), ``cachedContentTokenCount`` = cache reads,
  ``thoughtsTokenCount`` = reasoning, ``candidatesTokenCount`` = output - reasoning (Gemini
  counts thoughts apart), ``totalTokenCount`` = prompt + candidates + thoughts. Zero counts
  are left out, as Google's JSON leaves out zero fields.
- ``modelVersion`` = the model name the client asked for; ``responseId`` = the upstream's id.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.gemini import signatures
from modelgate.protocols.gemini.upstream_request import GENERATED_ID_PREFIX

FINISH_REASONS = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
}


def finish_reason(stop: ir.StopReason | None) -> str:
    return FINISH_REASONS.get(stop or "end_turn", "STOP")


def encode_usage(u: ir.Usage) -> dict[str, int]:
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    thoughts = min(u.reasoning_tokens, u.output_tokens)
    candidates = u.output_tokens - thoughts
    out = {"promptTokenCount": prompt}
    if candidates:
        out["candidatesTokenCount"] = candidates
    out["totalTokenCount"] = prompt + u.output_tokens
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def encode_parts(blocks: list[ir.Block], include_thoughts: bool) -> list[dict[str, Any]]:
    """Response blocks → Gemini parts (see the module docstring)."""
    parts: list[dict[str, Any]] = []
    pending: list[Any] = []
    for b in blocks:
        if isinstance(b, ir.TextBlock):
            parts.append(text_part(b.text, b.signature))
        elif isinstance(b, ir.ToolUseBlock):
            signature = b.signature
            if pending:
                signature, pending = signatures.pack(pending), []
            parts.append(call_part(b.id, b.name, b.input, signature))
        elif isinstance(b, (ir.ThinkingBlock, ir.RedactedThinkingBlock)):
            if signatures.worth_packing(b):
                pending.append(b)
            if include_thoughts and isinstance(b, ir.ThinkingBlock) and b.thinking:
                sig = b.signature if b.origin == "gemini" else None
                parts.append(text_part(b.thinking, sig, thought=True))
    return parts


def text_part(text: str, signature: str | None = None, *, thought: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    if thought:
        part["thought"] = True
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def call_part(call_id: str, name: str, args: dict[str, Any], signature: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": args}
    if not call_id.startswith(GENERATED_ID_PREFIX):
        call = {"id": call_id, **call}
    part: dict[str, Any] = {"functionCall": call}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def encode_response(resp: ir.Response, *, include_thoughts: bool) -> dict[str, Any]:
    """IR → the ``GenerateContentResponse`` a Gemini client expects."""
    return {
        "candidates": [
            {
                "content": {"parts": encode_parts(resp.content, include_thoughts), "role": "model"},
                "finishReason": finish_reason(resp.stop_reason),
                "index": 0,
            }
        ],
        "usageMetadata": encode_usage(resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    }
