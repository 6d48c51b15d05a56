"""An upstream's ``chat.completion`` → IR response, and the helpers its stream decoder shares.

- ``reasoning_content`` (DeepSeek, llama.cpp) or ``reasoning`` (vLLM, Ollama) → a leading
  :class:`ir.ThinkingBlock` without signature; content → one text block; ``refusal`` → text;
  ``tool_calls`` → tool_use blocks. Arguments are parsed as JSON; empty arguments are ``{}``;
  invalid JSON or a non-object is kept as ``{"_raw": "<arguments>"}``, so the client's schema
  check fails and tells the model, instead of the whole turn failing.
- finish_reason: stop → end_turn, length → max_tokens, tool_calls/function_call → tool_use,
  content_filter → refusal; a ``stop`` with tool calls present is tool_use (some servers say
  stop), and a refusal is refusal. OpenAI does not say which stop sequence matched, so a stop
  stays end_turn, except when vLLM names the matched string in ``stop_reason``: stop_sequence.

Usage is decoded in :mod:`.usage`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelgate import ir
from modelgate.protocols.openai_chat.errors import error_from_object
from modelgate.protocols.openai_chat.usage import decode_usage

PROTOCOL = "openai"


def decode_response(body: dict[str, Any]) -> ir.Response:
    """A ``chat.completion`` → IR. A 200 body that holds only an ``error`` raises it."""
    if body.get("error") and not body.get("choices"):
        raise error_from_object(body, None)
    msg_id = str(body.get("id") or "")
    choices = body.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content: list[ir.Block] = []
    reasoning = reasoning_text(msg)
    if reasoning:
        content.append(ir.ThinkingBlock(reasoning, origin=PROTOCOL))
    text = _message_text(msg.get("content"))
    if text:
        content.append(ir.TextBlock(text))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(ir.TextBlock(refusal))
    for i, tc in enumerate(msg.get("tool_calls") or []):
        if not isinstance(tc, dict):
            continue
        fn = tc.get("function") or {}
        call_id = tc.get("id") or fallback_tool_id(msg_id, i)
        content.append(ir.ToolUseBlock(call_id, fn.get("name") or "", parse_arguments(fn.get("arguments"))))
    stop_reason, stop_sequence = stop_reason_for(
        choice.get("finish_reason"),
        choice.get("stop_reason"),
        tool_use=any(isinstance(b, ir.ToolUseBlock) for b in content),
        refusal=bool(refusal),
    )
    return ir.Response(
        id=msg_id,
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop_reason,
        usage=decode_usage(body.get("usage")),
        stop_sequence=stop_sequence,
    )


def reasoning_text(msg: dict[str, Any]) -> str:
    """The reasoning of a message or delta, under either name servers use for it."""
    for key in ("reasoning_content", "reasoning"):
        value = msg.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def fallback_tool_id(message_id: str, n: int) -> str:
    """An id for a tool call the upstream left without one: unique within the conversation, and
    made of the characters Anthropic allows in tool ids, so the call can go to any upstream later."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", message_id)
    return f"call_{safe}_{n}" if safe else f"call_{n}"


def parse_arguments(raw: Any) -> dict[str, Any]:
    """Tool-call arguments (Chat's and the Responses API's) → input object; what is not a JSON
    object is kept as ``{"_raw": ...}`` so the exact text goes back to a model that wrote it."""
    if isinstance(raw, dict):
        return raw  # some servers (Ollama's native shape) send an object already
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    try:
        value = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw": str(raw)}
    return value if isinstance(value, dict) else {"_raw": raw}


def stop_reason_for(
    finish_reason: Any, matched: Any = None, *, tool_use: bool = False, refusal: bool = False
) -> tuple[ir.StopReason, str | None]:
    """finish_reason (and vLLM's matched ``stop_reason``) → IR stop reason and stop sequence."""
    if finish_reason in ("tool_calls", "function_call"):
        return "tool_use", None
    if finish_reason == "length":
        return "max_tokens", None
    if finish_reason == "content_filter" or refusal:
        return "refusal", None
    if tool_use:
        return "tool_use", None
    if finish_reason == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return "end_turn", None
