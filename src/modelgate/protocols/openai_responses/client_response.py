"""IR response → a Responses API ``response`` object (the translated path, non-streaming).

The object echoes the request's settings as OpenAI does (instructions, tools, tool_choice,
text, reasoning, sampling, metadata, …), so SDK code that reads them back works. Output:

- thinking → a ``reasoning`` item (``rs_…``): its text as a ``summary_text`` part when the
  request asked for ``reasoning.summary``, and ``encrypted_content`` when it asked for
  ``include: ["reasoning.encrypted_content"]`` (see ``common.seal_reasoning``: the
  signature and exact text ride along, so the item can be sent back on a later turn);
  redacted thinking → a reasoning item holding only ``encrypted_content``;
- consecutive text blocks → one ``message`` item (``msg_…``), one ``output_text`` part each,
  with ``annotations: []`` (Anthropic citations have no equivalent here and are left out);
- tool calls → ``function_call`` items (``fc_…``; ``call_id`` is the upstream's tool id),
  ``custom_tool_call`` items (``ctc_…``) for the request's custom tools, with ``namespace``
  set for tools of a namespace.

Stop reasons: ``max_tokens`` → ``status: "incomplete"`` with ``incomplete_details.reason``
``max_output_tokens``; ``refusal`` → ``incomplete`` / ``content_filter``; anything else
``completed``. Usage: ``input_tokens`` counts cached and cache-written tokens too (OpenAI's
convention), ``input_tokens_details.cached_tokens`` the cache reads, ``cache_write_tokens``
the cache writes.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.protocols.openai_responses.common import ToolNames, item_id, json_object, seal_reasoning, tool_names


def wants_summary(body: dict[str, Any]) -> bool:
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return False
    return reasoning.get("summary", reasoning.get("generate_summary")) is not None


def wants_encrypted_reasoning(body: dict[str, Any]) -> bool:
    include = body.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def response_shell(
    body: dict[str, Any], response_id: str, created_at: int, model: str, status: str = "in_progress"
) -> dict[str, Any]:
    """The Response object around the output: the request's settings echoed back."""
    reasoning = json_object(body.get("reasoning"))
    text = json_object(body.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def finish_status(stop_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) for an IR stop reason."""
    if stop_reason == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop_reason == "refusal":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def encode_usage(u: ir.Usage) -> dict[str, Any]:
    total_input = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {
        "input_tokens": total_input,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": total_input + u.output_tokens,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(
    block: ir.ThinkingBlock | ir.RedactedThinkingBlock, ident: str, *, summary: bool, encrypted: bool
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": ident, "type": "reasoning", "summary": []}
    if summary and isinstance(block, ir.ThinkingBlock) and block.thinking:
        item["summary"] = [{"type": "summary_text", "text": block.thinking}]
    if encrypted:
        item["encrypted_content"] = seal_reasoning(block)
    return item


def tool_call_item(block: ir.ToolUseBlock, ident: str, names: ToolNames, arguments: str) -> dict[str, Any]:
    """A ``function_call`` (or ``custom_tool_call``) item; ``arguments`` is the input as JSON text."""
    namespace, name = names.split(block.name)
    if block.name in names.custom:
        item: dict[str, Any] = {
            "id": "ctc_" + ident.partition("_")[2],
            "type": "custom_tool_call",
            "status": "completed",
            "call_id": block.id,
            "name": name,
            "input": custom_input(arguments),
        }
    else:
        item = {
            "id": ident,
            "type": "function_call",
            "status": "completed",
            "arguments": arguments,
            "call_id": block.id,
            "name": name,
        }
    if namespace is not None:
        item["namespace"] = namespace
    return item


def custom_input(arguments: str) -> str:
    """A custom tool's free text, from the ``{"input": ...}`` object the model filled in."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return arguments
    text = value.get("input") if isinstance(value, dict) else None
    if isinstance(text, str):
        return text
    return arguments


def encode_arguments(value: dict[str, Any]) -> str:
    raw = value.get("_raw")
    if len(value) == 1 and isinstance(raw, str):
        return raw  # arguments the model got wrong go back exactly as it wrote them
    return orjson.dumps(value).decode()


def encode_response(resp: ir.Response, body: dict[str, Any], response_id: str, created_at: int) -> dict[str, Any]:
    """IR response → the ``response`` object; ``body`` is the client's request."""
    status, incomplete = finish_status(resp.stop_reason)
    out = response_shell(body, response_id, created_at, resp.model, status)
    out["incomplete_details"] = incomplete
    names = tool_names(body.get("tools"))
    summary, encrypted = wants_summary(body), wants_encrypted_reasoning(body)
    output: list[dict[str, Any]] = []
    message: dict[str, Any] | None = None
    for block in resp.content:
        n = len(output)
        if isinstance(block, ir.TextBlock):
            if message is None:
                message = {"id": item_id("msg", response_id, n), "type": "message", "status": "completed"}
                message.update(role="assistant", content=[])
                output.append(message)
            message["content"].append(output_text(block.text))
            continue
        message = None
        if isinstance(block, (ir.ThinkingBlock, ir.RedactedThinkingBlock)):
            output.append(reasoning_item(block, item_id("rs", response_id, n), summary=summary, encrypted=encrypted))
        elif isinstance(block, ir.ToolUseBlock):
            output.append(tool_call_item(block, item_id("fc", response_id, n), names, encode_arguments(block.input)))
    if status == "incomplete":
        for item in output:
            if item["type"] == "message":
                item["status"] = "incomplete"
    out["output"] = output
    out["usage"] = encode_usage(resp.usage)
    return out
