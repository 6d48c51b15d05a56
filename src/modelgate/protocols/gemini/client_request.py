"""A Gemini client's ``GenerateContentRequest`` → IR (the translated path only: a Gemini
upstream gets the client's bytes untouched), and the one cheap check every request gets, even
on the passthrough path (:func:`check_request`: the body is a JSON object; Google checks the rest).

Google rejects unknown fields, and so does this decoder, with Google's wording; field names
are read in camelCase and snake_case alike (see :mod:`.fields`). Policies:

- ``contents``: role ``user`` (or absent, or the legacy ``function``) → user, ``model`` →
  assistant, anything else → 400 "Please use a valid role: user, model.". Consecutive
  contents of one role are merged into one message (parallel function responses often come
  one content each; Anthropic wants them in one turn).
- parts: ``text`` → text block (its ``thoughtSignature`` kept in ``TextBlock.signature``;
  empty text carries nothing another provider can use and is left out); ``thought: true``
  → thinking block (origin "gemini", signature from ``thoughtSignature``); ``inlineData`` →
  an image (``image/*``), a base64 PDF document (``application/pdf``) or a text document
  (``text/*``, decoded); other types (audio, video) → 400. Base64 data is re-written in the
  standard alphabet (google-genai sends it url-safe; Google reads both, Anthropic does not).
  ``fileData`` with an http(s) URL → an image or PDF by URL (type from ``mimeType`` or the
  file extension); Files API, ``gs://`` and YouTube URIs only Gemini can read → 400.
  ``functionCall`` → tool_use:
  ``id`` as given, else ``gmcall_<content>_<part>`` (stable across turns), ``args`` as the
  input, ``thoughtSignature`` in ``ToolUseBlock.signature``. ``functionResponse`` →
  tool_result matched to its call by ``id``, else to the oldest unanswered call of that
  ``name`` (400 when there is none); the ``response`` object becomes its JSON text, an
  ``error`` key without ``output`` marks it ``is_error``, image ``parts`` join the result.
  ``executableCode``/``codeExecutionResult`` (code execution) → 400. ``videoMetadata``,
  ``partMetadata`` and ``mediaResolution`` are hints with no effect elsewhere: ignored.
- Reasoning of another provider that the gateway packed into a ``thoughtSignature`` (see
  :mod:`.signatures`) is unpacked back into its thinking blocks, at the head of the turn
  where the provider wrote it (ahead of Gemini thought parts, which other upstreams never see).
- ``systemInstruction`` (a Content, or a plain string) → system text blocks; other parts → 400.
- ``tools[].functionDeclarations`` → tools: ``parametersJsonSchema`` as written (type names
  lower-cased), ``parameters`` converted from the OpenAPI subset, none → an empty object
  schema. ``response``/``responseJsonSchema`` describe what the function returns: no
  upstream takes that, ignored; ``behavior`` (Live API) ignored. Built-in tools
  (``googleSearch``, ``codeExecution``, ``urlContext``, …) → 400 naming them.
- ``generationConfig``, ``toolConfig``: see :mod:`.generation`.
- ``safetySettings``: checked for shape, then ignored: other providers apply their own
  policies and have no thresholds to set (ignoring them can only make the upstream stricter
  than asked, never looser). ``cachedContent`` (Gemini's cache API) → 400.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.gemini import signatures
from modelgate.protocols.gemini.fields import as_dict, as_list, as_str, check_known, get, has, standard_b64
from modelgate.protocols.gemini.generation import decode_generation, decode_tool_config, unsupported
from modelgate.protocols.gemini.schema import to_json_schema

_TOP = (
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
)
_PART = (
    "text",
    "thought",
    "thoughtSignature",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
)
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult")
_BUILTIN_TOOLS = {
    "googleSearch": "Google Search grounding",
    "googleSearchRetrieval": "Google Search retrieval",
    "codeExecution": "code execution",
    "urlContext": "URL context",
    "retrieval": "retrieval",
    "computerUse": "computer use",
    "fileSearch": "file search",
    "googleMaps": "Google Maps grounding",
    "enterpriseWebSearch": "enterprise web search",
    "mcpServers": "MCP servers",
}
_IMAGE_EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_GEMINI_ONLY_URIS = (
    "https://generativelanguage.googleapis.com/",
    "gs://",
    "https://www.youtube.com/",
    "https://youtu.be/",
)


def check_request(body: Any) -> None:
    """The body is a JSON object (a message), or Google's 400 for one that is not."""
    if not isinstance(body, dict):
        raise InvalidRequest('Invalid JSON payload received. Unknown name "": Root element must be a message.')


def decode_request(body: Any) -> ir.Request:
    """Client JSON → IR (``model`` is left empty: it comes from the URL)."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object.")
    check_known(body, _TOP, "")
    if get(body, "cachedContent") is not None:
        raise unsupported("cachedContent", "cached content")
    _check_safety(get(body, "safetySettings"))
    gen = decode_generation(get(body, "generationConfig"))
    tools = _decode_tools(get(body, "tools"))
    tool_choice, tools = decode_tool_config(get(body, "toolConfig"), tools)
    return ir.Request(
        model="",
        messages=decode_contents(get(body, "contents")),
        max_tokens=gen.max_tokens,
        system=decode_system(get(body, "systemInstruction")),
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=gen.top_k,
        stop_sequences=gen.stop,
        tools=tools,
        tool_choice=tool_choice if tools else None,
        thinking=gen.thinking,
        effort=gen.effort,
        output_format=gen.output_format,
    )


def decode_count_request(body: Any) -> ir.Request:
    """A ``countTokens`` body: ``{"contents"}`` or ``{"generateContentRequest": {...}}``."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid JSON payload received. Expected an object.")
    check_known(body, ("contents", "generateContentRequest"), "")
    inner = get(body, "generateContentRequest")
    if inner is not None:
        if has(body, "contents"):
            raise InvalidRequest("contents and generateContentRequest cannot both be set", param="contents")
        req = decode_request(as_dict(inner, "generateContentRequest"))
    else:
        req = ir.Request(model="", messages=decode_contents(get(body, "contents")), max_tokens=1)
    req.max_tokens = 1
    return req


# --------------------------------------------------------------------------- contents


def decode_contents(raw: Any) -> list[ir.Message]:
    if raw is None or raw == []:
        raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified\n", param="contents")
    contents = as_list(raw, "contents")
    state = _Calls()
    messages: list[ir.Message] = []
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        content = as_dict(content, where)
        check_known(content, ("role", "parts"), where)
        role = get(content, "role") or "user"
        if role not in ("user", "model", "function"):
            raise InvalidRequest("Please use a valid role: user, model.", param=f"{where}.role")
        parts = get(content, "parts")
        if not parts:
            raise InvalidRequest(
                f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n", param=f"{where}.parts"
            )
        ir_role: ir.Role = "assistant" if role == "model" else "user"
        if messages and messages[-1].role == ir_role:
            blocks = messages[-1].content
        else:
            blocks = []
            messages.append(ir.Message(ir_role, blocks))
        for j, part in enumerate(as_list(parts, f"{where}.parts")):
            _decode_part(part, i, j, blocks, state)
    return messages


class _Calls:
    """Function calls seen so far, so that responses find the call they answer."""

    __slots__ = ("ids", "pending")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.pending: dict[str, list[str]] = {}

    def add(self, name: str, call_id: str) -> None:
        self.ids.add(call_id)
        self.pending.setdefault(name, []).append(call_id)

    def answer(self, name: str, call_id: Any, where: str) -> str:
        queue = self.pending.get(name) or []
        if isinstance(call_id, str) and call_id in self.ids:
            if call_id in queue:
                queue.remove(call_id)
            return call_id
        if not queue:
            raise InvalidRequest(
                f"{where}.functionResponse: there is no earlier functionCall named {name!r} for this response",
                param=f"{where}.functionResponse",
            )
        return queue.pop(0)


def _decode_part(raw: Any, i: int, j: int, blocks: list[ir.Block], calls: _Calls) -> None:
    where = f"contents[{i}].parts[{j}]"
    part = as_dict(raw, where)
    check_known(part, _PART, where)
    if not any(has(part, k) for k in _DATA):
        raise InvalidRequest(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have one initialized field\n",
            param=where,
        )
    signature = get(part, "thoughtSignature")
    if signature is not None:
        signature = as_str(signature, f"{where}.thoughtSignature")
    packed = signatures.unpack(signature)
    if packed is not None:
        _insert_reasoning(blocks, packed)
        signature = None
    if has(part, "text"):
        text = as_str(get(part, "text"), f"{where}.text")
        if get(part, "thought") is True:
            if text or signature:
                blocks.append(ir.ThinkingBlock(text, signature, "gemini"))
        elif text:
            blocks.append(ir.TextBlock(text, signature=signature))
    elif has(part, "inlineData"):
        blocks.append(_inline(get(part, "inlineData"), f"{where}.inlineData"))
    elif has(part, "fileData"):
        blocks.append(_file(get(part, "fileData"), f"{where}.fileData"))
    elif has(part, "functionCall"):
        call = as_dict(get(part, "functionCall"), f"{where}.functionCall")
        check_known(call, ("id", "name", "args", "partialArgs", "willContinue"), f"{where}.functionCall")
        name = as_str(get(call, "name"), f"{where}.functionCall.name")
        args = get(call, "args")
        args = {} if args is None else as_dict(args, f"{where}.functionCall.args")
        call_id = get(call, "id")
        call_id = call_id if isinstance(call_id, str) and call_id else f"gmcall_{i}_{j}"
        calls.add(name, call_id)
        blocks.append(ir.ToolUseBlock(call_id, name, args, signature=signature))
    elif has(part, "functionResponse"):
        blocks.append(_function_response(get(part, "functionResponse"), where, calls))
    else:
        raise unsupported(where, "code execution")


def _insert_reasoning(blocks: list[ir.Block], packed: list[Any]) -> None:
    """Put unpacked reasoning back at the head of the turn, after reasoning unpacked before it
    but ahead of Gemini's own thought parts: Anthropic wants a turn to start with its thinking,
    and thought parts (which only Gemini can use) are left out for other upstreams."""
    at = 0
    while at < len(blocks) and signatures.worth_packing(blocks[at]):
        at += 1
    blocks[at:at] = packed


def _function_response(raw: Any, where: str, calls: _Calls) -> ir.ToolResultBlock:
    fr = as_dict(raw, f"{where}.functionResponse")
    check_known(fr, ("id", "name", "response", "parts", "willContinue", "scheduling"), f"{where}.functionResponse")
    name = as_str(get(fr, "name"), f"{where}.functionResponse.name")
    response = get(fr, "response")
    response = {} if response is None else as_dict(response, f"{where}.functionResponse.response")
    content: list[ir.TextBlock | ir.ImageBlock | ir.DocumentBlock] = [ir.TextBlock(orjson.dumps(response).decode())]
    for k, inner in enumerate(as_list(get(fr, "parts") or [], f"{where}.functionResponse.parts")):
        w = f"{where}.functionResponse.parts[{k}]"
        inner = as_dict(inner, w)
        if has(inner, "inlineData"):
            content.append(_inline(get(inner, "inlineData"), f"{w}.inlineData"))
        elif has(inner, "fileData"):
            content.append(_file(get(inner, "fileData"), f"{w}.fileData"))
        else:
            check_known(inner, ("inlineData", "fileData"), w)
    is_error = "error" in response and "output" not in response
    return ir.ToolResultBlock(calls.answer(name, get(fr, "id"), where), content, is_error)


def _inline(raw: Any, where: str) -> ir.ImageBlock | ir.DocumentBlock:
    blob = as_dict(raw, where)
    check_known(blob, ("mimeType", "data", "displayName"), where)
    mime = as_str(get(blob, "mimeType"), f"{where}.mimeType").lower()
    data = standard_b64(as_str(get(blob, "data"), f"{where}.data"))
    if mime.startswith("image/"):
        return ir.ImageBlock(mime, data)
    if mime == "application/pdf":
        return ir.DocumentBlock({"type": "base64", "media_type": mime, "data": data})
    if mime.startswith("text/"):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed", param=where
            ) from None
        return ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": text})
    raise unsupported(where, f"inline data of type {mime}")


def _file(raw: Any, where: str) -> ir.ImageBlock | ir.DocumentBlock:
    ref = as_dict(raw, where)
    check_known(ref, ("mimeType", "fileUri", "displayName"), where)
    uri = as_str(get(ref, "fileUri"), f"{where}.fileUri")
    mime = get(ref, "mimeType")
    mime = as_str(mime, f"{where}.mimeType").lower() if mime is not None else _guess_mime(uri)
    if uri.startswith(_GEMINI_ONLY_URIS) or not uri.startswith(("http://", "https://")):
        raise unsupported(where, f"the file {uri!r} (Gemini Files API, Cloud Storage or YouTube)")
    if mime and mime.startswith("image/"):
        return ir.ImageBlock(mime, url=uri)
    if mime == "application/pdf":
        return ir.DocumentBlock({"type": "url", "url": uri})
    raise unsupported(where, f"a file of type {mime or 'unknown'}")


def _guess_mime(uri: str) -> str | None:
    path = uri.split("?", 1)[0].lower()
    if path.endswith(".pdf"):
        return "application/pdf"
    return next((m for ext, m in _IMAGE_EXTENSIONS.items() if path.endswith(ext)), None)


# --------------------------------------------------------------------------- system, tools, safety


def decode_system(raw: Any) -> list[ir.TextBlock] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return [ir.TextBlock(raw)] if raw else []
    content = as_dict(raw, "systemInstruction")
    check_known(content, ("role", "parts"), "system_instruction")
    out = []
    for j, part in enumerate(as_list(get(content, "parts") or [], "systemInstruction.parts")):
        where = f"systemInstruction.parts[{j}]"
        part = as_dict(part, where)
        check_known(part, _PART, where)
        if not has(part, "text"):
            raise unsupported(where, "a system instruction part other than text")
        text = as_str(get(part, "text"), f"{where}.text")
        if text:
            out.append(ir.TextBlock(text))
    return out


def _decode_tools(raw: Any) -> list[ir.Tool] | None:
    if raw is None:
        return None
    tools: list[ir.Tool] = []
    for i, entry in enumerate(as_list(raw, "tools")):
        where = f"tools[{i}]"
        entry = as_dict(entry, where)
        for key in entry:
            camel = key if key in _BUILTIN_TOOLS else next((k for k in _BUILTIN_TOOLS if has({key: 1}, k)), None)
            if camel is not None:
                raise unsupported(f"{where}.{camel}", f"the built-in Gemini tool {_BUILTIN_TOOLS[camel]}")
        check_known(entry, ("functionDeclarations",), where)
        for k, decl in enumerate(as_list(get(entry, "functionDeclarations") or [], f"{where}.functionDeclarations")):
            tools.append(_declaration(decl, f"{where}.functionDeclarations[{k}]"))
    return tools or None


def _declaration(raw: Any, where: str) -> ir.Tool:
    decl = as_dict(raw, where)
    check_known(
        decl,
        ("name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema", "behavior"),
        where,
    )
    name = as_str(get(decl, "name"), f"{where}.name")
    if not name:
        raise InvalidRequest(f"* GenerateContentRequest.{where}.name: Name cannot be empty.\n", param=f"{where}.name")
    description = get(decl, "description")
    if get(decl, "parametersJsonSchema") is not None:
        schema = to_json_schema(
            as_dict(get(decl, "parametersJsonSchema"), f"{where}.parametersJsonSchema"), openapi=False
        )
    elif get(decl, "parameters") is not None:
        schema = to_json_schema(as_dict(get(decl, "parameters"), f"{where}.parameters"), openapi=True)
    else:
        schema = {"type": "object", "properties": {}}
    return ir.Tool(name, as_str(description, f"{where}.description") if description is not None else None, schema)


def _check_safety(raw: Any) -> None:
    for i, setting in enumerate(as_list(raw, "safetySettings") if raw is not None else ()):
        where = f"safetySettings[{i}]"
        check_known(as_dict(setting, where), ("category", "threshold", "method"), where)
