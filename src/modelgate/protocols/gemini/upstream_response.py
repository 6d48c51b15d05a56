"""A Gemini upstream's ``GenerateContentResponse`` → IR answer (translated path), and the
pieces :mod:`.upstream_stream` shares (parts, usage, stop reasons).

- ``usageMetadata`` → usage: input = ``promptTokenCount`` + ``toolUsePromptTokenCount`` -
  ``cachedContentTokenCount`` (Gemini counts cached tokens inside the prompt), cache reads =
  ``cachedContentTokenCount``, output = ``candidatesTokenCount`` + ``thoughtsTokenCount``
  (Gemini counts thoughts apart), reasoning = ``thoughtsTokenCount``.
- ``finishReason``: STOP → end_turn, or tool_use when the answer holds function calls;
  MAX_TOKENS → max_tokens; SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII,
  IMAGE_SAFETY, LANGUAGE → refusal; anything else → end_turn. A prompt blocked outright
  (``promptFeedback.blockReason``, no candidate) → an empty refusal.
- Function calls without an ``id`` get ``gmcall_<responseId>_<n>``.
- Thought parts → thinking blocks (origin "gemini"); a ``thoughtSignature`` on a text part →
  ``TextBlock.signature``, on a function call → ``ToolUseBlock.signature``. Inline data
  (generated images) cannot be expressed in the IR: the answer fails rather than lose it.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.gemini.fields import get
from modelgate.protocols.gemini.upstream_request import GENERATED_ID_PREFIX

_REFUSALS = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"})


def stop_reason(reason: Any, *, tool_use: bool) -> ir.StopReason:
    if reason == "MAX_TOKENS":
        return "max_tokens"
    if reason in _REFUSALS:
        return "refusal"
    return "tool_use" if tool_use else "end_turn"


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
