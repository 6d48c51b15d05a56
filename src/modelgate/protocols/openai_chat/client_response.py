"""IR response → the ``chat.completion`` object a client gets (translated path).

- ``id`` is ``chatcmpl-`` + the upstream message id (kept as is when it already has the prefix),
  ``model`` the name the client asked for, ``created`` the time the answer was made.
- Text blocks are concatenated into ``content``; ``content`` is null when the answer is only
  tool calls, as OpenAI's is. ``refusal`` is always null: a refusing upstream (Anthropic's
  ``refusal`` stop reason) says so with ``finish_reason: content_filter`` and its text stays in
  ``content``. Citations have no Chat Completions equivalent (``annotations`` holds web-search
  URLs only) and are left out.
- Tool calls are ``function`` calls with their input as compact JSON ``arguments``; a Gemini
  thought signature rides as ``extra_content.google.thought_signature`` (the field Gemini's own
  OpenAI-compatible API uses) so that it comes back on the next turn.
- Reasoning is never lost: thinking text is ``reasoning_content`` (the extension DeepSeek,
  vLLM and LiteLLM clients read); Anthropic's signed thinking and redacted thinking also go out
  as LiteLLM-style ``thinking_blocks`` (``{"type": "thinking", "thinking", "signature"}`` /
  ``{"type": "redacted_thinking", "data"}``), which a client may send back on the assistant
  message so that Anthropic accepts the next turn of a tool loop.
- ``finish_reason``: end_turn, stop_sequence, pause_turn → ``stop``; max_tokens and
  model_context_window_exceeded → ``length``; tool_use → ``tool_calls``; refusal →
  ``content_filter``.
- ``usage`` as in :mod:`.usage`.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from modelgate import ir
from modelgate.protocols.openai_chat.usage import encode_usage

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def completion_id(message_id: str) -> str:
    if message_id.startswith("chatcmpl-"):
        return message_id
    return "chatcmpl-" + (message_id or secrets.token_hex(12))


def arguments(value: dict[str, Any]) -> str:
    """Tool input → ``arguments``; ``{"_raw": s}`` (arguments a model got wrong) goes back as ``s``."""
    raw = value.get("_raw")
    if len(value) == 1 and isinstance(raw, str):
        return raw
    return orjson.dumps(value).decode()


def tool_call_header(b: ir.ToolUseBlock, args: str) -> dict[str, Any]:
    call: dict[str, Any] = {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": args}}
    if b.signature:
        call["extra_content"] = {"google": {"thought_signature": b.signature}}
    return call


def thinking_block(b: ir.ThinkingBlock | ir.RedactedThinkingBlock) -> dict[str, Any] | None:
    """The ``thinking_blocks`` entry for an Anthropic-signed or redacted block, else None."""
    if isinstance(b, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    if b.origin == "anthropic" and b.signature:
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature}
    return None


def encode_response(resp: ir.Response, created: int) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    signed: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for b in resp.content:
        if isinstance(b, ir.TextBlock):
            texts.append(b.text)
        elif isinstance(b, ir.ToolUseBlock):
            calls.append(tool_call_header(b, arguments(b.input)))
        elif isinstance(b, ir.ThinkingBlock | ir.RedactedThinkingBlock):
            if isinstance(b, ir.ThinkingBlock) and b.thinking:
                reasoning.append(b.thinking)
            entry = thinking_block(b)
            if entry is not None:
                signed.append(entry)
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if signed:
        message["thinking_blocks"] = signed
    message["refusal"] = None
    message["annotations"] = []
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(resp.stop_reason)}
    return {
        "id": completion_id(resp.id),
        "object": "chat.completion",
        "created": created,
        "model": resp.model,
        "choices": [choice],
        "usage": encode_usage(resp.usage),
    }
