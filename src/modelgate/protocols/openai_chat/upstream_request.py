"""IR request → Chat Completions request JSON, for an OpenAI-compatible upstream.

An IR request (usually decoded from an Anthropic client such as Claude Code) is encoded for an
OpenAI-compatible upstream (OpenAI, vLLM, Ollama, llama.cpp, ...). Pure functions only.

Policies, where Chat Completions has no exact equivalent:

- ``system`` blocks become one leading ``system`` message, texts joined by a blank line: a plain
  string is the one system content every server and chat template accepts. Claude Code's
  ``x-anthropic-billing-header: ...`` line is removed: it is Anthropic billing metadata, and its
  hash changes on every request at the very start of the prompt, defeating prefix caching.
- A user turn of text only becomes one string (blocks joined by a blank line); with images or
  files it becomes a list of content parts in the original order. Images become ``image_url``
  parts (a ``data:`` URL for base64), base64 PDFs ``file`` parts (``file_data`` as a data URL,
  ``filename`` = title or ``document.pdf``), plain-text and content documents text parts (title
  and context first). URL and file-id documents cannot be expressed: :class:`InvalidRequest`.
- ``tool_result`` blocks become ``role: tool`` messages, in order, *before* the rest of the user
  turn (OpenAI wants them right after the assistant's ``tool_calls``). Their text, joined by a
  blank line, is the message content; ``is_error`` has no slot, so the text is prefixed with
  ``Error: ``. A tool message holds text only: images and PDFs of a result move to the user
  message that follows the tool messages, under a text part naming the tool call.
- Assistant text blocks are concatenated (they are pieces of one generated text); ``tool_use``
  becomes ``tool_calls`` with compact JSON arguments and ``content: null`` when there is no text
  (the spec's shape). An input of exactly ``{"_raw": str}`` (see invalid arguments below) goes
  back as that raw string. Thinking and redacted thinking are dropped: Chat Completions has no
  input slot for reasoning, and signatures mean nothing upstream.
- ``cache_control`` is never written: there are no cache breakpoints (OpenAI and vLLM cache
  prefixes on their own). Empty text, cache markers and consecutive turns of one role are
  cleaned before this codec runs, by :mod:`modelgate.protocols.cleanup`.
- ``max_tokens`` stays ``max_tokens`` (every compatible server accepts it; the openai provider
  kind renames it ``max_completion_tokens`` for reasoning models); ``stop_sequences`` → ``stop``;
  ``temperature``, ``top_p`` and ``top_k`` pass as they are (vLLM, Ollama and llama.cpp accept
  ``top_k``; OpenAI itself rejects it, so the openai provider kind drops it).
- Tools become function tools; their extras (``strict``, ``defer_loading``, ...) are dropped.
  Server tools (a ``type`` such as ``web_search_20250305``) run on Anthropic's side: an
  :class:`InvalidRequest` names the tool. ``tool_choice`` auto/any/tool/none → "auto"/"required"/
  named function/"none", ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``; both are
  sent only with tools (OpenAI rejects them otherwise).
- ``thinking`` → ``reasoning_effort``: enabled by budget (<=1024 low, <=8192 medium, else high,
  no budget medium); adaptive → ``output_config.effort`` if given, else medium; disabled → none.
  Without ``thinking``, ``output_config.effort`` alone sets it (``max`` → high).
- ``output_config.format`` (or the older top-level ``output_format``) of type ``json_schema`` →
  ``response_format`` json_schema named ``output``, not strict (local servers enforce the schema
  anyway; OpenAI's strict mode would reject schemas Anthropic accepts).
- ``metadata.user_id`` → ``user``, replaced by its SHA-256 hex when longer than 64 characters
  (Claude Code's ids are long JSON strings; OpenAI caps its end-user ids at 64).
- ``stream`` → ``stream: true`` and ``stream_options: {"include_usage": true}``.
- Other request fields (``req.extras``): ``mcp_servers`` (non-empty) raises, like server tools;
  everything else is dropped, the Anthropic-only fields with no upstream meaning
  (``context_management``, ``service_tier``, ``container``, ...) silently and any unknown field
  too, so that a field a newer Claude Code starts sending never breaks a local model.
  :func:`unmapped_extras` names the unknown ones, for a warning in the log.

"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import InvalidRequest

#: Anthropic-only request fields that mean nothing to an OpenAI-compatible upstream.
_DROPPED_EXTRAS = frozenset({"context_management", "service_tier", "container", "inference_geo", "speed"})
#: Request fields this codec translates (or rejects) itself.
_HANDLED_EXTRAS = frozenset({"output_config", "output_format", "mcp_servers"})

_BILLING_PREFIX = "x-anthropic-billing-header:"
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}


def encode_request(req: ir.Request, model: str) -> dict[str, Any]:
    """IR → Chat Completions request JSON for ``model`` (the upstream's own model name)."""
    if req.extras.get("mcp_servers"):
        raise InvalidRequest(
            "mcp_servers: MCP servers are run by Anthropic's API and cannot be sent to an OpenAI-compatible upstream",
            param="mcp_servers",
        )
    messages: list[dict[str, Any]] = []
    system = system_text(req)
    if system:
        messages.append({"role": "system", "content": system})
    for i, m in enumerate(req.messages):
        if m.role == "assistant":
            messages.append(_assistant_message(m.content, f"messages.{i}"))
        else:
            messages.extend(_user_messages(m.content, f"messages.{i}"))
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": req.max_tokens}
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.stop_sequences:
        body["stop"] = req.stop_sequences
    if req.tools:
        body["tools"] = [_encode_tool(t, f"tools.{i}") for i, t in enumerate(req.tools)]
        tc = req.tool_choice
        if tc is not None:
            body["tool_choice"] = _encode_tool_choice(tc)
            if tc.disable_parallel_tool_use:
                body["parallel_tool_calls"] = False
    effort = reasoning_effort(req)
    if effort:
        body["reasoning_effort"] = effort
    response_format = _response_format(req.output_format)
    if response_format:
        body["response_format"] = response_format
    user = end_user(req)
    if user:
        body["user"] = user
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def system_text(req: ir.Request) -> str:
    """The system prompt as one text (blocks joined by a blank line), shared by both OpenAI APIs."""
    return "\n\n".join(t for t in (_strip_billing_line(b.text) for b in req.system or ()) if t)


def _strip_billing_line(text: str) -> str:
    """Drop Claude Code's ``x-anthropic-billing-header:`` line: it means nothing upstream, and its
    per-request hash at the very start of the prompt defeats every prefix (KV) cache."""
    if not text.startswith(_BILLING_PREFIX):
        return text
    return text.partition("\n")[2].lstrip("\n")


def end_user(req: ir.Request) -> str | None:
    """``metadata.user_id`` as OpenAI's ``user``: its SHA-256 hex when longer than OpenAI's 64 characters."""
    user = (req.metadata or {}).get("user_id")
    if not isinstance(user, str) or not user:
        return None
    return user if len(user) <= 64 else hashlib.sha256(user.encode()).hexdigest()


def unmapped_extras(req: ir.Request) -> list[str]:
    """Unknown request fields :func:`encode_request` drops, so the caller can log a warning."""
    return sorted(k for k in req.extras if k not in _DROPPED_EXTRAS and k not in _HANDLED_EXTRAS)


def _user_messages(blocks: list[ir.Block], where: str) -> list[dict[str, Any]]:
    """One user turn → its tool messages first, then one user message with the rest."""
    out: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        w = f"{where}.content.{j}"
        if isinstance(b, ir.ToolResultBlock):
            out.append(_tool_message(b, moved, w))
        elif isinstance(b, (ir.TextBlock, ir.ImageBlock, ir.DocumentBlock)):
            parts.extend(_content_parts(b, w))
        else:
            raise InvalidRequest(f"{w}: a {b.type} block cannot appear in a user turn", param=w)
    parts = moved + parts
    if parts or not out:
        out.append({"role": "user", "content": _collapse(parts)})
    return out


def _tool_message(b: ir.ToolResultBlock, moved: list[dict[str, Any]], where: str) -> dict[str, Any]:
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    for k, inner in enumerate(b.content):
        for part in _content_parts(inner, f"{where}.content.{k}"):
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                media.append(part)
    if media:
        moved.append({"type": "text", "text": f"Attachments from tool call {b.tool_use_id}:"})
        moved.extend(media)
    text = "\n\n".join(texts)
    if b.is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": b.tool_use_id, "content": text}


def _collapse(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string, which every chat template accepts; else the parts."""
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _content_parts(b: ir.Block, where: str) -> list[dict[str, Any]]:
    if isinstance(b, ir.TextBlock):
        return [{"type": "text", "text": b.text}]
    if isinstance(b, ir.ImageBlock):
        return [_image_part(b.media_type, b.data, b.url, where)]
    if isinstance(b, ir.DocumentBlock):
        return _document_parts(b, where)
    raise InvalidRequest(f"{where}: a {b.type} block cannot appear here", param=where)


def _image_part(media_type: str | None, data: str | None, url: str | None, where: str) -> dict[str, Any]:
    if url:
        return {"type": "image_url", "image_url": {"url": url}}
    if data:
        return {"type": "image_url", "image_url": {"url": f"data:{media_type or 'image/png'};base64,{data}"}}
    raise InvalidRequest(f"{where}.source: image has neither data nor url", param=where)


def _document_parts(b: ir.DocumentBlock, where: str) -> list[dict[str, Any]]:
    src = b.source
    kind = src.get("type")
    header = "\n\n".join(x for x in (b.title, b.context) if x)
    if kind == "base64":
        media_type = src.get("media_type") or "application/pdf"
        default_name = "document.pdf" if media_type == "application/pdf" else "document"
        file = {"filename": b.title or default_name, "file_data": f"data:{media_type};base64,{src.get('data', '')}"}
        return [{"type": "file", "file": file}]
    if kind == "text":
        return [{"type": "text", "text": "\n\n".join(x for x in (header, src.get("data") or "") if x)}]
    if kind == "content":
        inner = src.get("content")
        parts = [{"type": "text", "text": header}] if header else []
        if isinstance(inner, str):
            return [*parts, {"type": "text", "text": inner}] if inner else parts
        for k, item in enumerate(inner or []):
            if not isinstance(item, dict):
                continue
            if item.get("type") == "text" and item.get("text"):
                parts.append({"type": "text", "text": item["text"]})
            elif item.get("type") == "image":
                isrc = item.get("source") or {}
                url = isrc.get("url") if isrc.get("type") == "url" else None
                parts.append(_image_part(isrc.get("media_type"), isrc.get("data"), url, f"{where}.source.content.{k}"))
        return parts
    raise InvalidRequest(
        f"{where}.source: a {kind} document source cannot be sent to an OpenAI-compatible upstream", param=where
    )


def _assistant_message(blocks: list[ir.Block], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        if isinstance(b, ir.TextBlock):
            texts.append(b.text)
        elif isinstance(b, ir.ToolUseBlock):
            fn = {"name": b.name, "arguments": _encode_arguments(b.input)}
            calls.append({"id": b.id, "type": "function", "function": fn})
        elif not isinstance(b, (ir.ThinkingBlock, ir.RedactedThinkingBlock)):
            w = f"{where}.content.{j}"
            raise InvalidRequest(f"{w}: a {b.type} block cannot appear in an assistant turn", param=w)
    text = "".join(texts)
    msg: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _encode_arguments(value: dict[str, Any]) -> str:
    raw = value.get("_raw")
    if len(value) == 1 and isinstance(raw, str):
        return raw  # arguments the model got wrong go back exactly as it wrote them
    return orjson.dumps(value).decode()


def _encode_tool(t: ir.Tool, where: str) -> dict[str, Any]:
    kind = t.extras.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"{where}: tool {t.name!r} is an Anthropic server tool ({kind}) and cannot be sent to an "
            "OpenAI-compatible upstream",
            param=where,
        )
    fn: dict[str, Any] = {"name": t.name}
    if t.description:
        fn["description"] = t.description
    fn["parameters"] = t.input_schema
    return {"type": "function", "function": fn}


def _encode_tool_choice(tc: ir.ToolChoice) -> str | dict[str, Any]:
    if tc.type == "any":
        return "required"
    if tc.type == "tool" and tc.name:
        return {"type": "function", "function": {"name": tc.name}}
    return "none" if tc.type == "none" else "auto"


def reasoning_effort(req: ir.Request, efforts: Mapping[str, str] = _EFFORTS) -> str | None:
    """The IR's thinking and effort → OpenAI's reasoning effort (``efforts`` maps the IR's effort
    scale onto the API's own), or ``None`` for no reasoning."""
    effort = efforts.get(req.effort) if req.effort else None
    th = req.thinking
    if th is None:
        return effort
    if th.type == "disabled":
        return None
    if th.type == "adaptive" or th.budget_tokens is None:
        return effort or "medium"
    return "low" if th.budget_tokens <= 1024 else "medium" if th.budget_tokens <= 8192 else "high"


def json_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """``output_format`` → OpenAI's structured output, in the Responses API's flat ``text.format``
    shape: json_object, or json_schema named ``output`` unless named; ``None`` for anything else."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        return None
    out: dict[str, Any] = {"type": "json_schema", "name": fmt.get("name") or "output", "schema": fmt["schema"]}
    if fmt.get("strict") is not None:
        out["strict"] = fmt["strict"]
    return out


def _response_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """:func:`json_format` in Chat's shape, which nests a schema's fields under ``json_schema``."""
    out = json_format(fmt)
    if out is None or out["type"] != "json_schema":
        return out
    return {"type": "json_schema", "json_schema": {k: v for k, v in out.items() if k != "type"}}
