"""IR request → a Responses API request, for an upstream that only serves some models through
``/v1/responses`` (OpenAI's ``*-codex``, ``o1-pro``, ``o3-pro``, …) and a client of another
protocol (Claude Code, a Chat Completions or Gemini client).

- ``system`` → ``instructions`` (texts joined by a blank line; Claude Code's
  ``x-anthropic-billing-header`` line is removed, as for Chat Completions upstreams).
- User turns → ``message`` items of ``input_text`` / ``input_image`` (a data URL or the URL) /
  ``input_file`` (PDF as a data URL, or ``file_url``) parts; tool results →
  ``function_call_output`` items (text output; with images or files, a list of parts;
  ``is_error`` prefixes the text with ``Error: ``), placed before the rest of the turn.
- Assistant turns → a ``message`` of ``output_text`` parts and ``function_call`` items, in
  order; OpenAI reasoning (a thinking block of origin ``openai`` with its item id and
  ``encrypted_content``) → a ``reasoning`` item, so the model keeps its chain of thought
  between tool calls; reasoning written by other providers cannot be replayed and is left out.
- Tools → function tools (``strict: false``, since Anthropic's schemas need not be strict-
  compatible); server tools (a ``type`` such as ``web_search_20250305``) raise. Tool choice:
  auto/any/tool/none → ``"auto"``/``"required"``/``{"type":"function","name"}``/``"none"``;
  ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``.
- ``max_tokens`` → ``max_output_tokens`` (at least 16, OpenAI's minimum); ``temperature`` and
  ``top_p`` pass as they are (OpenAI's reasoning models only take the defaults and say so
  with a 400); ``top_k`` is dropped (OpenAI has no such knob); ``stop_sequences`` raise (the
  Responses API has no stop sequences).
- ``thinking`` / ``effort`` → ``reasoning.effort`` as for Chat Completions (budget <= 1024
  low, <= 8192 medium, else high; adaptive → the effort or medium; disabled → none sent) with
  ``summary: "auto"``, so the client sees the reasoning as thinking, and
  ``include: ["reasoning.encrypted_content"]``.
- ``output_format`` → ``text.format`` (json_schema named ``output`` unless named, or
  json_object); ``metadata.user_id`` → ``user`` (hashed above 64 characters).
- Always ``store: false``: the gateway keeps no state, so every turn carries the whole
  conversation (and reasoning travels encrypted).
"""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.openai_chat.upstream_request import end_user, json_format, reasoning_effort, system_text
from modelgate.protocols.openai_responses.client_response import encode_arguments
from modelgate.protocols.openai_responses.common import MIN_MAX_OUTPUT_TOKENS, RESPONSES_EFFORTS


def encode_request(req: ir.Request, model: str, *, reasoning: bool = True) -> dict[str, Any]:
    """IR → Responses request JSON for ``model``; ``reasoning`` False leaves reasoning out
    (for models that refuse the parameter)."""
    if req.stop_sequences:
        raise InvalidRequest("stop_sequences: the OpenAI Responses API has no stop sequences", param="stop_sequences")
    if req.extras.get("mcp_servers"):
        raise InvalidRequest("mcp_servers: MCP servers are run by Anthropic's API", param="mcp_servers")
    body: dict[str, Any] = {"model": model}
    instructions = system_text(req)
    if instructions:
        body["instructions"] = instructions
    items: list[dict[str, Any]] = []
    for i, m in enumerate(req.messages):
        if m.role == "assistant":
            items.extend(_assistant_items(m.content))
        else:
            items.extend(_user_items(m.content, f"messages.{i}"))
    body["input"] = items
    body["max_output_tokens"] = max(req.max_tokens, MIN_MAX_OUTPUT_TOKENS)
    for name in ("temperature", "top_p"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.tools:
        body["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(req.tools)]
        tc = req.tool_choice
        if tc is not None:
            body["tool_choice"] = _tool_choice(tc)
            if tc.disable_parallel_tool_use:
                body["parallel_tool_calls"] = False
    effort = reasoning_effort(req, RESPONSES_EFFORTS) if reasoning else None
    if effort:
        body["reasoning"] = {"effort": effort, "summary": "auto"}
        body["include"] = ["reasoning.encrypted_content"]
    fmt = json_format(req.output_format)
    if fmt:
        body["text"] = {"format": fmt}
    user = end_user(req)
    if user:
        body["user"] = user
    body["store"] = False
    if req.stream:
        body["stream"] = True
    return body


def _user_items(blocks: list[ir.Block], where: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        w = f"{where}.content.{j}"
        if isinstance(b, ir.ToolResultBlock):
            items.append(_tool_output(b, w))
        elif isinstance(b, (ir.TextBlock, ir.ImageBlock, ir.DocumentBlock)):
            parts.extend(_parts(b, w))
        else:
            raise InvalidRequest(f"{w}: a {b.type} block cannot appear in a user turn", param=w)
    if parts or not items:
        items.append({"type": "message", "role": "user", "content": parts})
    return items


def _tool_output(b: ir.ToolResultBlock, where: str) -> dict[str, Any]:
    parts = [p for k, inner in enumerate(b.content) for p in _parts(inner, f"{where}.content.{k}")]
    output: str | list[dict[str, Any]]
    if all(p["type"] == "input_text" for p in parts):
        output = "\n\n".join(p["text"] for p in parts)
        if b.is_error:
            output = f"Error: {output}" if output else "Error"
    else:
        output = [{"type": "input_text", "text": "Error"}, *parts] if b.is_error else parts
    return {"type": "function_call_output", "call_id": b.tool_use_id, "output": output}


def _parts(b: ir.Block, where: str) -> list[dict[str, Any]]:
    if isinstance(b, ir.TextBlock):
        return [{"type": "input_text", "text": b.text}] if b.text else []
    if isinstance(b, ir.ImageBlock):
        if b.url:
            return [{"type": "input_image", "image_url": b.url, "detail": "auto"}]
        if b.data:
            url = f"data:{b.media_type or 'image/png'};base64,{b.data}"
            return [{"type": "input_image", "image_url": url, "detail": "auto"}]
        raise InvalidRequest(f"{where}.source: image has neither data nor url", param=where)
    if isinstance(b, ir.DocumentBlock):
        return _document(b, where)
    raise InvalidRequest(f"{where}: a {b.type} block cannot appear here", param=where)


def _document(b: ir.DocumentBlock, where: str) -> list[dict[str, Any]]:
    src = b.source
    kind = src.get("type")
    if kind == "base64":
        media_type = src.get("media_type") or "application/pdf"
        data = f"data:{media_type};base64,{src.get('data', '')}"
        return [{"type": "input_file", "filename": b.title or "document.pdf", "file_data": data}]
    if kind == "url" and isinstance(src.get("url"), str):
        return [{"type": "input_file", "file_url": src["url"]}]
    header = "\n\n".join(x for x in (b.title, b.context) if x)
    if kind == "text":
        return [{"type": "input_text", "text": "\n\n".join(x for x in (header, src.get("data") or "") if x)}]
    if kind == "content":
        inner = src.get("content")
        texts = [header] if header else []
        if isinstance(inner, str):
            texts.append(inner)
        else:
            texts += [c["text"] for c in inner or () if isinstance(c, dict) and isinstance(c.get("text"), str)]
        return [{"type": "input_text", "text": "\n\n".join(t for t in texts if t)}]
    raise InvalidRequest(f"{where}.source: a {kind} document cannot be sent to the OpenAI Responses API", param=where)


def _assistant_items(blocks: list[ir.Block]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    texts: list[dict[str, Any]] = []

    def flush() -> None:
        if texts:
            items.append({"type": "message", "role": "assistant", "content": list(texts)})
            texts.clear()

    for b in blocks:
        if isinstance(b, ir.TextBlock):
            if b.text:
                texts.append({"type": "output_text", "text": b.text})
            continue
        flush()
        if isinstance(b, ir.ToolUseBlock):
            items.append(
                {"type": "function_call", "call_id": b.id, "name": b.name, "arguments": encode_arguments(b.input)}
            )
        elif isinstance(b, ir.ThinkingBlock) and b.origin == "openai" and b.signature and b.id:
            summary = [{"type": "summary_text", "text": b.thinking}] if b.thinking else []
            items.append({"type": "reasoning", "id": b.id, "summary": summary, "encrypted_content": b.signature})
    flush()
    return items


def _tool(t: ir.Tool, where: str) -> dict[str, Any]:
    kind = t.extras.get("type")
    if kind not in (None, "custom", "function"):
        raise InvalidRequest(
            f"{where}: tool {t.name!r} is an Anthropic server tool ({kind}) and cannot be sent to OpenAI", param=where
        )
    out: dict[str, Any] = {"type": "function", "name": t.name}
    if t.description:
        out["description"] = t.description
    out["parameters"] = t.input_schema
    out["strict"] = False
    return out


def _tool_choice(tc: ir.ToolChoice) -> str | dict[str, Any]:
    if tc.type == "any":
        return "required"
    if tc.type == "tool" and tc.name:
        return {"type": "function", "name": tc.name}
    return "none" if tc.type == "none" else "auto"
