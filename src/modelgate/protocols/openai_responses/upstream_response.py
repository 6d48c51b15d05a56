"""A Responses API ``response`` object (from an upstream) → IR response.

- ``reasoning`` items → thinking blocks: the summary texts (or the ``reasoning_text``
  content of open-weight models) joined by a blank line, ``encrypted_content`` as the
  signature, the item id kept, origin ``openai``;
- ``message`` items → one text block per ``output_text`` part; a ``refusal`` part → text,
  and the stop reason ``refusal``;
- ``function_call`` items → tool_use blocks (``call_id`` is the id; arguments parsed, what
  is not a JSON object kept as ``{"_raw": ...}``); ``custom_tool_call`` items → tool_use
  blocks with input ``{"input": <text>}``; built-in tool items (web search, …) are never
  asked for, so they are not expected, and are skipped.
- ``status``: ``incomplete`` with reason ``max_output_tokens`` → ``max_tokens``, with
  ``content_filter`` → ``refusal``; tool calls → ``tool_use``; else ``end_turn``.
- Usage: input = ``input_tokens`` - cached - cache writes (Anthropic counts them apart),
  cache read = ``input_tokens_details.cached_tokens``, output = ``output_tokens`` (reasoning
  included, as in Anthropic), reasoning = ``output_tokens_details.reasoning_tokens``.
- A ``failed`` response raises its error.
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.protocols.openai_chat.upstream_response import parse_arguments
from modelgate.protocols.openai_responses.common import count, json_object
from modelgate.protocols.openai_responses.errors import error_from_object


def decode_usage(raw: Any) -> ir.Usage:
    if not isinstance(raw, dict):
        return ir.Usage()
    details = json_object(raw.get("input_tokens_details"))
    out_details = json_object(raw.get("output_tokens_details"))
    cached = count(details.get("cached_tokens"))
    written = count(details.get("cache_write_tokens"))
    return ir.Usage(
        input_tokens=max(count(raw.get("input_tokens")) - cached - written, 0),
        output_tokens=count(raw.get("output_tokens")),
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=count(out_details.get("reasoning_tokens")),
    )


def reasoning_text(item: dict[str, Any]) -> str:
    for key in ("summary", "content"):
        texts = [p["text"] for p in item.get(key) or () if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if texts:
            return "\n\n".join(texts)
    return ""


def stop_reason_for(status: Any, incomplete: Any, *, tool_use: bool, refusal: bool) -> ir.StopReason:
    reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
    if status == "incomplete" and reason == "max_output_tokens":
        return "max_tokens"
    if refusal or (status == "incomplete" and reason == "content_filter"):
        return "refusal"
    return "tool_use" if tool_use else "end_turn"


def decode_item(item: dict[str, Any]) -> tuple[list[ir.Block], bool]:
    """One output item → its blocks, and whether it held a refusal."""
    kind = item.get("type")
    if kind == "reasoning":
        sealed = item.get("encrypted_content")
        signature = sealed if isinstance(sealed, str) and sealed else None
        ident = item.get("id") if isinstance(item.get("id"), str) else None
        return [ir.ThinkingBlock(reasoning_text(item), signature, "openai", ident)], False
    if kind == "message":
        blocks: list[ir.Block] = []
        refusal = False
        for part in item.get("content") or ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                blocks.append(ir.TextBlock(part["text"]))
            elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                blocks.append(ir.TextBlock(part["refusal"]))
                refusal = True
        return blocks, refusal
    if kind == "function_call":
        call = ir.ToolUseBlock(str(item.get("call_id") or ""), str(item.get("name") or ""))
        call.input = parse_arguments(item.get("arguments"))
        return [call], False
    if kind == "custom_tool_call":
        call = ir.ToolUseBlock(str(item.get("call_id") or ""), str(item.get("name") or ""))
        call.input = {"input": str(item.get("input") or "")}
        return [call], False
    return [], False


def decode_response(body: dict[str, Any]) -> ir.Response:
    """A ``response`` object → IR; a failed response raises its error."""
    if body.get("status") == "failed" or (isinstance(body.get("error"), dict) and not body.get("output")):
        raise error_from_object(body)
    content: list[ir.Block] = []
    refusal = False
    for item in body.get("output") or ():
        if isinstance(item, dict):
            blocks, refused = decode_item(item)
            content.extend(blocks)
            refusal = refusal or refused
    tool_use = any(isinstance(b, ir.ToolUseBlock) for b in content)
    return ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop_reason_for(
            body.get("status"), body.get("incomplete_details"), tool_use=tool_use, refusal=refusal
        ),
        usage=decode_usage(body.get("usage")),
    )
