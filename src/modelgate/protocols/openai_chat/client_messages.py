"""A client's Chat Completions ``messages`` → IR system prompt and turns.

Policies (each refusal is a 400 naming the field, e.g. ``messages[2].content[0]``):

- ``system`` and ``developer`` messages become the IR system prompt, in order, wherever they
  are: one in the middle of the conversation is folded into the system prompt too (as the
  Anthropic codec does), since no upstream other than OpenAI takes system turns mid-conversation.
  Their content is text only (a string or ``text`` parts).
- ``user`` content is a string or parts: ``text``; ``image_url`` (a base64 ``data:`` URL → an
  inline image with its media type, an http(s) URL → an image by URL; ``detail`` is a rendering
  hint with no equivalent elsewhere and is dropped); ``file`` with inline ``file_data`` (a
  ``data:`` URL or bare base64; PDF → a base64 document, ``text/*`` → a text document, images →
  an image; ``filename`` → the document title). ``file_id`` (OpenAI's Files API) and
  ``input_audio`` (no upstream but OpenAI takes audio) are refused.
- ``assistant``: text or ``refusal`` parts (and the ``refusal`` field) → text; ``tool_calls``
  (``function`` type) → tool_use blocks, arguments parsed as a JSON object (anything else is
  refused); the legacy ``function_call`` → a tool_use with the id ``call_fn_<message index>``.
  Reasoning a client sends back → thinking blocks first: LiteLLM-style ``thinking_blocks``
  (Anthropic's signed thinking, see :mod:`.client_response`) as Anthropic's, else plain
  ``reasoning_content``, unsigned and marked as OpenAI's (so Anthropic, which would reject an
  unsigned thinking block, is never sent it). Gemini's
  ``extra_content.google.thought_signature`` on a tool call → the tool_use's signature. Custom
  tool calls and ``audio`` are refused.
- ``tool`` messages → tool_result blocks in a user turn; the legacy ``function`` role → a
  tool_result for the earliest unanswered ``function_call`` of that name.
- Consecutive turns of the same role merge into one, so tool results and the user text that
  follows them form one user turn (Anthropic requires alternation). Empty text is left out
  (Anthropic rejects empty text blocks), and a turn left with nothing is left out.
- ``name`` (a participant name) has no equivalent anywhere else and is dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.openai_chat.errors import invalid

PROTOCOL = "openai"
_DATA_URL = re.compile(r"data:(?P<media>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.S)
_ROLES = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"


def type_name(value: Any) -> str:
    """How OpenAI names a JSON value's type in its error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def wrong_type(where: str, expected: str, value: Any) -> InvalidRequest:
    return invalid(
        f"Invalid type for '{where}': expected {expected}, but got {type_name(value)} instead.", where, "invalid_type"
    )


def missing(where: str) -> InvalidRequest:
    return invalid(f"Missing required parameter: '{where}'.", where, "missing_required_parameter")


def decode_messages(raw: list[Any]) -> tuple[list[ir.TextBlock] | None, list[ir.Message]]:
    """``messages`` → (system blocks or None, alternating IR turns)."""
    system: list[ir.TextBlock] = []
    turns: list[ir.Message] = []
    pending: dict[str, list[str]] = {}  # legacy function name → ids of its unanswered calls
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise wrong_type(where, "an object", m)
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend(_text_only(m.get("content"), f"{where}.content"))
        elif role == "user":
            _append(turns, "user", _user_content(m.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_content(m, where, i, pending))
        elif role == "tool":
            _append(turns, "user", [_tool_result(m, where)])
        elif role == "function":
            _append(turns, "user", [_function_result(m, where, pending)])
        elif role is None:
            raise missing(f"{where}.role")
        else:
            raise invalid(f"Invalid value: {role!r}. Supported values are: {_ROLES}.", f"{where}.role", "invalid_value")
    return (system or None), turns


def _append(turns: list[ir.Message], role: ir.Role, blocks: Sequence[ir.Block]) -> None:
    if not blocks:
        return
    if turns and turns[-1].role == role:
        turns[-1].content.extend(blocks)
    else:
        turns.append(ir.Message(role, list(blocks)))


def _parts(content: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Content parts with their field path; a string is one text part."""
    if isinstance(content, str):
        return [(where, {"type": "text", "text": content})]
    if not isinstance(content, list):
        raise wrong_type(where, "one of a string or array of objects", content)
    out = []
    for j, part in enumerate(content):
        w = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise wrong_type(w, "an object", part)
        if not isinstance(part.get("type"), str):
            raise missing(f"{w}.type")
        out.append((w, part))
    return out


def _text(part: dict[str, Any], where: str, key: str = "text") -> list[ir.TextBlock]:
    text = part.get(key)
    if not isinstance(text, str):
        raise missing(f"{where}.{key}") if text is None else wrong_type(f"{where}.{key}", "a string", text)
    return [ir.TextBlock(text)] if text else []


def _text_only(content: Any, where: str) -> list[ir.TextBlock]:
    blocks: list[ir.TextBlock] = []
    for w, part in _parts(content, where):
        if part["type"] != "text":
            message = f"Invalid value: {part['type']!r}. Supported values are: 'text'."
            raise invalid(message, f"{w}.type", "invalid_value")
        blocks.extend(_text(part, w))
    return blocks


def _user_content(content: Any, where: str) -> list[ir.ToolResultContent]:
    blocks: list[ir.ToolResultContent] = []
    for w, part in _parts(content, where):
        kind = part["type"]
        if kind == "text":
            blocks.extend(_text(part, w))
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{w}.image_url"))
        elif kind == "file":
            blocks.append(_file(part.get("file"), f"{w}.file"))
        elif kind == "input_audio":
            raise invalid(f"{w}: input_audio content is not supported for this model", w, "unsupported_content")
        else:
            raise invalid(
                f"Invalid value: {kind!r}. Supported values are: 'text', 'image_url', 'input_audio', and 'file'.",
                f"{w}.type",
                "invalid_value",
            )
    return blocks


def _data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL."""
    m = _DATA_URL.fullmatch(url)
    if m is None or ";base64" not in m.group("params"):
        raise invalid(f"{where}: only base64 data URLs are supported (data:<media type>;base64,<data>)", where)
    return m.group("media") or "application/octet-stream", m.group("data")


def _image(spec: Any, where: str) -> ir.ImageBlock:
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise missing(f"{where}.url") if url is None else wrong_type(f"{where}.url", "a string", url)
    if url.startswith("data:"):
        media, data = _data_url(url, f"{where}.url")
        return ir.ImageBlock(media_type=media, data=data)
    if url.startswith(("http://", "https://")):
        return ir.ImageBlock(url=url)
    raise invalid(f"{where}.url: expected an http(s) URL or a base64 data URL", f"{where}.url", "invalid_value")


def _file(spec: Any, where: str) -> ir.DocumentBlock | ir.ImageBlock:
    if not isinstance(spec, dict):
        raise wrong_type(where, "an object", spec)
    if spec.get("file_id") is not None and spec.get("file_data") is None:
        raise invalid(
            f"{where}.file_id: uploaded files cannot be sent to this model; send the file inline as file_data",
            f"{where}.file_id",
            "unsupported_value",
        )
    data = spec.get("file_data")
    if not isinstance(data, str):
        raise missing(f"{where}.file_data") if data is None else wrong_type(f"{where}.file_data", "a string", data)
    name = spec.get("filename") if isinstance(spec.get("filename"), str) else None
    if data.startswith("data:"):
        media, data = _data_url(data, f"{where}.file_data")
    else:
        media = "text/plain" if name and name.lower().endswith((".txt", ".md")) else "application/pdf"
    if media == "application/pdf":
        return ir.DocumentBlock({"type": "base64", "media_type": media, "data": data}, title=name)
    if media.startswith("image/"):
        return ir.ImageBlock(media_type=media, data=data)
    if media.startswith("text/"):
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise invalid(f"{where}.file_data: not valid base64 UTF-8 text", f"{where}.file_data") from None
        return ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": text}, title=name)
    raise invalid(
        f"{where}.file_data: files of type {media} are not supported (PDF, text and images are)",
        f"{where}.file_data",
        "unsupported_value",
    )


def _assistant_content(m: dict[str, Any], where: str, i: int, pending: dict[str, list[str]]) -> list[ir.Block]:
    if m.get("audio") is not None:
        raise invalid(f"{where}.audio: audio responses are not supported for this model", f"{where}.audio")
    blocks: list[ir.Block] = list(_reasoning(m, where))
    content = m.get("content")
    if content is not None:
        for w, part in _parts(content, f"{where}.content"):
            if part["type"] not in ("text", "refusal"):
                raise invalid(
                    f"Invalid value: {part['type']!r}. Supported values are: 'text' and 'refusal'.",
                    f"{w}.type",
                    "invalid_value",
                )
            blocks.extend(_text(part, w, part["type"]))
    if isinstance(m.get("refusal"), str) and m["refusal"]:
        blocks.append(ir.TextBlock(m["refusal"]))
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise wrong_type(f"{where}.tool_calls", "an array", calls)
        blocks.extend(_tool_call(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(calls))
    legacy = m.get("function_call")
    if legacy is not None:
        w = f"{where}.function_call"
        if not isinstance(legacy, dict):
            raise wrong_type(w, "an object", legacy)
        name = _name(legacy, w)
        call_id = f"call_fn_{i}"
        pending.setdefault(name, []).append(call_id)
        blocks.append(ir.ToolUseBlock(call_id, name, _arguments(legacy.get("arguments"), f"{w}.arguments")))
    return blocks


def _reasoning(m: dict[str, Any], where: str) -> list[ir.Block]:
    """Reasoning sent back: Anthropic-signed ``thinking_blocks`` win over plain ``reasoning_content``."""
    thinking = m.get("thinking_blocks")
    if isinstance(thinking, list) and thinking:
        out: list[ir.Block] = []
        for k, b in enumerate(thinking):
            w = f"{where}.thinking_blocks[{k}]"
            if not isinstance(b, dict):
                raise wrong_type(w, "an object", b)
            if b.get("type") == "redacted_thinking":
                out.append(ir.RedactedThinkingBlock(str(b.get("data") or "")))
            elif b.get("type") == "thinking":
                out.append(ir.ThinkingBlock(str(b.get("thinking") or ""), b.get("signature"), "anthropic"))
            else:
                raise invalid(f"{w}.type: expected 'thinking' or 'redacted_thinking'", f"{w}.type", "invalid_value")
        return out
    text = m.get("reasoning_content")
    return [ir.ThinkingBlock(text, origin=PROTOCOL)] if isinstance(text, str) and text else []


def _tool_call(c: Any, where: str) -> ir.ToolUseBlock:
    if not isinstance(c, dict):
        raise wrong_type(where, "an object", c)
    kind = c.get("type", "function")
    if kind != "function":
        raise invalid(f"{where}.type: only function tool calls are supported", f"{where}.type", "invalid_value")
    call_id = c.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise missing(f"{where}.id")
    fn = c.get("function")
    if not isinstance(fn, dict):
        raise missing(f"{where}.function") if fn is None else wrong_type(f"{where}.function", "an object", fn)
    extra = c.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return ir.ToolUseBlock(
        call_id,
        _name(fn, f"{where}.function"),
        _arguments(fn.get("arguments"), f"{where}.function.arguments"),
        signature=signature if isinstance(signature, str) else None,
    )


def _name(fn: dict[str, Any], where: str) -> str:
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"{where}.name")
    return name


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    """Arguments the model wrote, as an object: every upstream but OpenAI takes an object."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise wrong_type(where, "a string", raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid(f"{where}: the arguments are not valid JSON", where, "invalid_value") from None
    if not isinstance(value, dict):
        raise invalid(f"{where}: the arguments must be a JSON object", where, "invalid_value")
    return value


def _tool_result(m: dict[str, Any], where: str) -> ir.ToolResultBlock:
    call_id = m.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise missing(f"{where}.tool_call_id")
    content = m.get("content")
    blocks = _user_content(content, f"{where}.content") if content is not None else []
    return ir.ToolResultBlock(call_id, blocks)


def _function_result(m: dict[str, Any], where: str, pending: dict[str, list[str]]) -> ir.ToolResultBlock:
    name = _name(m, where)
    ids = pending.get(name)
    if not ids:
        raise invalid(
            f"{where}: no earlier assistant function_call named {name!r} for this function message to answer",
            f"{where}.name",
        )
    content = m.get("content")
    text = content if isinstance(content, str) else ""
    return ir.ToolResultBlock(ids.pop(0), [ir.TextBlock(text)] if text else [])
