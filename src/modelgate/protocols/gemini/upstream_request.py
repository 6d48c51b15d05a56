"""IR → Gemini ``GenerateContentRequest``, for a Gemini upstream on the translated path
(an Anthropic or OpenAI client talking to a Gemini model).

Policies:

- Messages → ``contents`` (assistant → role ``model``). Text → text parts (the Gemini
  ``thoughtSignature`` kept on them goes back; empty text is left out before, by
  :mod:`modelgate.protocols.cleanup`). Images → ``inlineData``
  (base64) or ``fileData`` (URL; ``mimeType`` from the block or the extension, else
  image/jpeg). Documents: base64 → ``inlineData``, URL → ``fileData`` (application/pdf),
  plain text and content documents → text parts (title and context first); file-id
  sources → 400.
- ``tool_use`` → ``functionCall`` {``id``, ``name``, ``args``} with its ``thoughtSignature``.
  Ids the gateway made up for Gemini calls that had none (``gmcall_…``) are not sent back.
  Gemini 3 refuses a function call of the current turn without its signature; history from
  another client or model has none, so the first call of each model turn that lacks one
  gets ``skip_thought_signature_validator``, the value Google documents for that case.
- ``tool_result`` → ``functionResponse`` {``id``, ``name`` (of the call it answers),
  ``response``}: text that is a JSON object is that object (what a Gemini client sent),
  other text becomes ``{"output": text}`` (``{"error": text}`` when ``is_error``), as
  Google's docs advise. Images of a result follow as ``inlineData`` parts of the same turn.
- Thinking written by Gemini (origin "gemini") goes back as a thought part with its
  signature; reasoning of other providers means nothing to Gemini and is left out, as are
  redacted thinking blocks.
- ``system`` → ``systemInstruction`` (one text part per block; Claude Code's per-request
  ``x-anthropic-billing-header:`` line is removed: it would defeat Gemini's implicit prefix
  caching).
- Tools → one ``functionDeclarations`` entry, schemas as ``parametersJsonSchema`` (JSON
  Schema as the client wrote it); Anthropic server tools (a ``type``) → 400. ``tool_choice``
  auto/any/tool/none → ``functionCallingConfig`` AUTO/ANY/ANY+``allowedFunctionNames``/NONE;
  ``disable_parallel_tool_use`` has no Gemini equivalent and is dropped.
- ``max_tokens`` → ``maxOutputTokens``; ``temperature``, ``top_p``, ``top_k``,
  ``stop_sequences`` → ``temperature``, ``topP``, ``topK``, ``stopSequences``.
- Thinking → ``thinkingConfig`` with ``includeThoughts`` (so thoughts reach the client):
  enabled → ``thinkingBudget`` = budget; adaptive → -1 (dynamic); ``effort`` → ``thinkingLevel``
  low/high on Gemini 3 models (minimal/low → low, else high), else a budget (low 1,024,
  medium 8,192, high 24,576, max dynamic). Disabled → no ``thinkingConfig``: some Gemini
  models cannot stop thinking, and omitting it never fails.
- ``output_format`` json_schema → ``responseMimeType: application/json`` +
  ``responseJsonSchema``; json_object → the mime type alone.
- ``cache_control``, ``metadata`` and Anthropic-only extras (``context_management``,
  ``service_tier``, …) have no Gemini equivalent and are dropped; ``mcp_servers`` → 400.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.gemini.signatures import SKIP_VALIDATOR

GENERATED_ID_PREFIX = "gmcall_"
_BILLING_PREFIX = "x-anthropic-billing-header:"
_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "max": -1}
_EXTENSIONS = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


def encode_request(req: ir.Request) -> dict[str, Any]:
    """IR → the Gemini request JSON for ``req.model`` (which goes in the URL, not the body)."""
    if req.extras.get("mcp_servers"):
        raise InvalidRequest("mcp_servers: MCP servers are run by Anthropic's API and cannot be sent to Gemini")
    names: dict[str, str] = {}
    contents = [_content(m, f"messages.{i}", names) for i, m in enumerate(req.messages)]
    body: dict[str, Any] = {"contents": [c for c in contents if c["parts"]]}
    system = [t for t in (_strip_billing_line(b.text) for b in req.system or ()) if t]
    if system:
        body["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t, f"tools.{i}") for i, t in enumerate(req.tools)]}]
        if req.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(req.tool_choice)}
    body["generationConfig"] = _generation_config(req)
    return body


def _strip_billing_line(text: str) -> str:
    if not text.startswith(_BILLING_PREFIX):
        return text
    return text.partition("\n")[2].lstrip("\n")


def _content(m: ir.Message, where: str, names: dict[str, str]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    trailing: list[dict[str, Any]] = []
    signed_call = False
    for j, b in enumerate(m.content):
        w = f"{where}.content.{j}"
        if isinstance(b, ir.TextBlock):
            parts.append(_signed({"text": b.text}, b.signature))
        elif isinstance(b, ir.ToolUseBlock):
            names[b.id] = b.name
            call: dict[str, Any] = {"name": b.name, "args": b.input}
            if not b.id.startswith(GENERATED_ID_PREFIX):
                call = {"id": b.id, **call}
            signature = b.signature
            if signature is None and not signed_call:
                signature = SKIP_VALIDATOR
            signed_call = True
            parts.append(_signed({"functionCall": call}, signature))
        elif isinstance(b, ir.ToolResultBlock):
            parts.append(_function_response(b, names, w))
            for k, inner in enumerate(b.content):
                if not isinstance(inner, ir.TextBlock):
                    trailing.extend(_media(inner, f"{w}.content.{k}"))
        elif isinstance(b, ir.ThinkingBlock):
            if b.origin == "gemini" and (b.thinking or b.signature):
                parts.append(_signed({"text": b.thinking, "thought": True}, b.signature))
        elif isinstance(b, (ir.ImageBlock, ir.DocumentBlock)):
            parts.extend(_media(b, w))
    return {"role": "model" if m.role == "assistant" else "user", "parts": parts + trailing}


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _function_response(b: ir.ToolResultBlock, names: dict[str, str], where: str) -> dict[str, Any]:
    name = names.get(b.tool_use_id)
    if name is None:
        raise InvalidRequest(
            f"{where}.tool_use_id: no earlier tool_use block has id {b.tool_use_id!r}", param=f"{where}.tool_use_id"
        )
    text = "\n\n".join(x.text for x in b.content if isinstance(x, ir.TextBlock))
    response: Any = None
    if text.startswith("{"):
        try:
            response = orjson.loads(text)
        except orjson.JSONDecodeError:
            response = None
    if not isinstance(response, dict):
        response = {"error" if b.is_error else "output": text}
    fr: dict[str, Any] = {"name": name, "response": response}
    if not b.tool_use_id.startswith(GENERATED_ID_PREFIX):
        fr = {"id": b.tool_use_id, **fr}
    return {"functionResponse": fr}


def _media(b: ir.Block, where: str) -> list[dict[str, Any]]:
    if isinstance(b, ir.ImageBlock):
        if b.data:
            return [{"inlineData": {"mimeType": b.media_type or "image/png", "data": b.data}}]
        if b.url:
            return [{"fileData": {"mimeType": b.media_type or _guess_image(b.url), "fileUri": b.url}}]
        raise InvalidRequest(f"{where}.source: image has neither data nor url", param=where)
    if isinstance(b, ir.DocumentBlock):
        return _document(b, where)
    raise InvalidRequest(f"{where}: a {b.type} block cannot appear here", param=where)


def _guess_image(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    return next((m for ext, m in _EXTENSIONS.items() if path.endswith(ext)), "image/jpeg")


def _document(b: ir.DocumentBlock, where: str) -> list[dict[str, Any]]:
    src = b.source
    kind = src.get("type")
    header = "\n\n".join(x for x in (b.title, b.context) if x)
    if kind == "base64":
        return [{"inlineData": {"mimeType": src.get("media_type") or "application/pdf", "data": src.get("data", "")}}]
    if kind == "url":
        return [{"fileData": {"mimeType": "application/pdf", "fileUri": src.get("url", "")}}]
    if kind == "text":
        text = "\n\n".join(x for x in (header, src.get("data") or "") if x)
        return [{"text": text}] if text else []
    if kind == "content":
        parts: list[dict[str, Any]] = [{"text": header}] if header else []
        inner = src.get("content")
        if isinstance(inner, str):
            return [*parts, {"text": inner}] if inner else parts
        for k, item in enumerate(inner or []):
            if not isinstance(item, dict):
                continue
            if item.get("type") == "text" and item.get("text"):
                parts.append({"text": item["text"]})
            elif item.get("type") == "image":
                isrc = item.get("source") or {}
                image = ir.ImageBlock(isrc.get("media_type"), isrc.get("data"), isrc.get("url"))
                parts.extend(_media(image, f"{where}.source.content.{k}"))
        return parts
    raise InvalidRequest(f"{where}.source: a {kind} document source cannot be sent to Gemini", param=where)


def _declaration(t: ir.Tool, where: str) -> dict[str, Any]:
    kind = t.extras.get("type")
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"{where}: tool {t.name!r} is an Anthropic server tool ({kind}) and cannot be sent to Gemini", param=where
        )
    out: dict[str, Any] = {"name": t.name}
    if t.description:
        out["description"] = t.description
    out["parametersJsonSchema"] = t.input_schema
    return out


def _calling_config(tc: ir.ToolChoice) -> dict[str, Any]:
    if tc.type == "any":
        return {"mode": "ANY"}
    if tc.type == "tool" and tc.name:
        return {"mode": "ANY", "allowedFunctionNames": [tc.name]}
    if tc.type == "none":
        return {"mode": "NONE"}
    return {"mode": "AUTO"}


def _generation_config(req: ir.Request) -> dict[str, Any]:
    config: dict[str, Any] = {"maxOutputTokens": req.max_tokens}
    for name, key in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        value = getattr(req, name)
        if value is not None:
            config[key] = value
    if req.stop_sequences:
        config["stopSequences"] = req.stop_sequences
    fmt = req.output_format
    if fmt and fmt.get("type") in ("json_schema", "json_object"):
        config["responseMimeType"] = "application/json"
        if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            config["responseJsonSchema"] = fmt["schema"]
    thinking = _thinking_config(req)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(req: ir.Request) -> dict[str, Any] | None:
    thinking, effort = req.thinking, req.effort
    if thinking is not None and thinking.type == "disabled":
        return None
    if thinking is None and effort is None:
        return None
    if effort is not None and req.model.startswith("gemini-3"):
        return {"includeThoughts": True, "thinkingLevel": "low" if effort in ("minimal", "low") else "high"}
    if thinking is not None and thinking.type == "enabled" and thinking.budget_tokens:
        return {"includeThoughts": True, "thinkingBudget": thinking.budget_tokens}
    return {"includeThoughts": True, "thinkingBudget": _BUDGETS.get(effort or "", -1)}
