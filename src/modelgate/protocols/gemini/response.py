"""``GenerateContentResponse`` ↔ IR response, usage and stop reasons.

To a Gemini client (translated path):

- one candidate, ``index`` 0, ``content.role`` "model"; text blocks → text parts; tool_use →
  ``functionCall`` {``id``, ``name``, ``args``} parts; thinking → ``{"text", "thought": true}``
  parts only when the client asked for ``includeThoughts`` (Gemini shows reasoning only then).
  Another provider's signed reasoning is packed into the ``thoughtSignature`` of the first
  function call that follows it (see :mod:`.signatures`), so it comes back on the next turn;
  without a function call it is not needed again and is not sent.
- ``finishReason``: end_turn, stop_sequence, tool_use, pause_turn → STOP (Gemini says STOP
  after function calls too), max_tokens → MAX_TOKENS, refusal → SAFETY.
- ``usageMetadata``: ``promptTokenCount`` = input + cache reads + cache writes (Gemini
  counts cached tokens inside the prompt), ``cachedContentTokenCount`` = cache reads,
  ``thoughtsTokenCount`` = reasoning, ``candidatesTokenCount`` = output - reasoning (Gemini
  counts thoughts apart), ``totalTokenCount`` = prompt + candidates + thoughts. Zero counts
  are left out, as Google's JSON leaves out zero fields.
- ``modelVersion`` = the model name the client asked for; ``responseId`` = the upstream's id.

From a Gemini upstream: the inverse (input = prompt - cached, output = candidates + thoughts,
reasoning = thoughts; ``toolUsePromptTokenCount`` counts as input). STOP → end_turn, or
tool_use when the answer holds function calls; MAX_TOKENS → max_tokens; SAFETY, RECITATION,
BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, LANGUAGE → refusal; anything else →
end_turn. A prompt blocked outright (``promptFeedback.blockReason``, no candidate) → an
empty refusal. Function calls without an ``id`` get ``gmcall_<responseId>_<n>``.
Thought parts → thinking blocks (origin "gemini"); a ``thoughtSignature`` on a text part →
``TextBlock.signature``, on a function call → ``ToolUseBlock.signature``. Inline data
(generated images) cannot be expressed in the IR: the answer fails rather than lose it.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.gemini import signatures
from modelgate.protocols.gemini.encode import GENERATED_ID_PREFIX
from modelgate.protocols.gemini.fields import get

FINISH_REASONS = {
    "end_turn": "STOP",
    "stop_sequence": "STOP",
    "tool_use": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
}
_REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"})


def finish_reason(stop: ir.StopReason | None) -> str:
    return FINISH_REASONS.get(stop or "end_turn", "STOP")


def stop_reason(reason: Any, *, tool_use: bool) -> ir.StopReason:
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if reason in _REFUSALS:
        return "refusal"
    return "tool_use" if tool_use else "end_turn"


# --------------------------------------------------------------------------- usage


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


def decode_usage(raw: Any) -> ir.Usage:
    if not isinstance(raw, dict):
        return ir.Usage()
    prompt = _count(get(raw, "promptTokenCount")) + _count(get(raw, "toolUsePromptTokenCount"))
    cached = _count(get(raw, "cachedContentTokenCount"))
    thoughts = _count(get(raw, "thoughtsTokenCount"))
    return ir.Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=_count(get(raw, "candidatesTokenCount")) + thoughts,
        cache_read_tokens=cached,
        reasoning_tokens=thoughts,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# --------------------------------------------------------------------------- to a client


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


# --------------------------------------------------------------------------- from an upstream


def decode_response(body: dict[str, Any]) -> ir.Response:
    """A Gemini upstream's ``GenerateContentResponse`` → IR."""
    response_id = str(get(body, "responseId") or "")
    candidates = get(body, "candidates") or []
    candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    content = get(candidate, "content") or {}
    blocks: list[ir.Block] = []
    calls = 0
    for part in get(content, "parts") or ():
        if not isinstance(part, dict):
            continue
        block = decode_part(part, response_id, calls)
        if block is None:
            continue
        if isinstance(block, ir.ToolUseBlock):
            calls += 1
        blocks.append(block)
    reason = get(candidate, "finishReason")
    if not candidates and isinstance(get(body, "promptFeedback"), dict):
        reason = "SAFETY" if get(body["promptFeedback"], "blockReason") else reason
    return ir.Response(
        id=response_id,
        model=str(get(body, "modelVersion") or ""),
        content=blocks,
        stop_reason=stop_reason(reason, tool_use=calls > 0),
        usage=decode_usage(get(body, "usageMetadata")),
    )


def decode_part(part: dict[str, Any], response_id: str, call_index: int) -> ir.Block | None:
    """One upstream part → one IR block (None for parts that carry nothing)."""
    signature = get(part, "thoughtSignature")
    signature = signature if isinstance(signature, str) else None
    call = get(part, "functionCall")
    if isinstance(call, dict):
        call_id = get(call, "id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"{GENERATED_ID_PREFIX}{response_id}_{call_index}"
        args = get(call, "args")
        return ir.ToolUseBlock(
            call_id, str(get(call, "name") or ""), args if isinstance(args, dict) else {}, signature=signature
        )
    if get(part, "inlineData") is not None:
        raise UpstreamUnavailable(
            "the Gemini upstream answered with inline data (an image), which cannot be translated"
        )
    text = get(part, "text")
    if isinstance(text, str):
        if get(part, "thought") is True:
            return ir.ThinkingBlock(text, signature, "gemini")
        if text or signature:
            return ir.TextBlock(text, signature=signature)
    return None
