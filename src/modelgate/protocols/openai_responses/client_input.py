"""A Responses ``input`` (a string or a list of items) → IR system blocks and messages.

Items become blocks of alternating user and assistant turns: ``message`` items by role
(``system`` and ``developer`` messages join the system prompt, in order), ``function_call``
and ``custom_tool_call`` items are the assistant's tool calls, their ``*_output`` items the
user's tool results, ``reasoning`` items the assistant's thinking. Consecutive items of one
role merge into one turn. What cannot be expressed raises :class:`InvalidRequest` naming
the item (``input[3].content[0].file_id``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from modelgate import ir
from modelgate.protocols.openai_chat.upstream_response import parse_arguments
from modelgate.protocols.openai_responses.common import flat_name, invalid, open_reasoning, open_summary

#: The text a compaction summary this gateway wrote comes back as.
SUMMARY_HEADER = "Summary of the earlier conversation (it was compacted to save context):"

_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.S)


def decode_conversation(body: dict[str, Any]) -> tuple[list[ir.TextBlock], list[ir.Message]]:
    """``instructions`` and ``input`` → (system blocks, messages): the instructions come first,
    then the input's system and developer messages (creating and compacting alike)."""
    if body.get("input") is None:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    system_in_input, messages = decode_input(body["input"])
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("Invalid type for 'instructions': expected a string.", "instructions", "invalid_type")
    return ([ir.TextBlock(instructions)] if instructions else []) + system_in_input, messages


def decode_input(raw: Any) -> tuple[list[ir.TextBlock], list[ir.Message]]:
    """``input`` → (system blocks from system/developer messages, messages)."""
    if isinstance(raw, str):
        return [], [ir.Message("user", [ir.TextBlock(raw)])]
    if not isinstance(raw, list):
        raise invalid(
            "Invalid type for 'input': expected a string or an array of input items.", "input", "invalid_type"
        )
    system: list[ir.TextBlock] = []
    turns: list[ir.Message] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        role, blocks = _item(item, where)
        if role == "system":
            system.extend(b for b in blocks if isinstance(b, ir.TextBlock))
        elif turns and turns[-1].role == role:
            turns[-1].content.extend(blocks)
        elif blocks or role == "user":
            turns.append(ir.Message(role, blocks))
    return system, turns


#: Whose turn an input item belongs to; system items feed the system prompt.
_Turn = Literal["system", "user", "assistant"]


def _item(item: dict[str, Any], where: str) -> tuple[_Turn, list[ir.Block]]:
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if kind == "message":
        return _message(item, where)
    if kind in ("function_call", "custom_tool_call"):
        return "assistant", [_tool_call(item, where, kind == "custom_tool_call")]
    if kind in ("function_call_output", "custom_tool_call_output"):
        return "user", [_tool_output(item, where)]
    if kind == "reasoning":
        return "assistant", _reasoning(item, where)
    if kind == "compaction" or kind == "compaction_summary":
        return "user", [_compaction(item, where)]
    if kind == "item_reference":
        raise invalid(
            f"{where}: item references cannot be resolved: this gateway does not store responses; "
            "send the items themselves",
            where,
            "unsupported_parameter",
        )
    raise invalid(f"{where}: items of type {kind!r} cannot be sent to this model", f"{where}.type", "invalid_value")


def _message(item: dict[str, Any], where: str) -> tuple[_Turn, list[ir.Block]]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise invalid(
            f"Invalid value: {role!r}. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
            f"{where}.role",
            "invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return ("system" if role in ("system", "developer") else role), [ir.TextBlock(content)]
    if not isinstance(content, list):
        raise invalid(
            f"Missing required parameter: '{where}.content'.", f"{where}.content", "missing_required_parameter"
        )
    blocks = [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]
    if role in ("system", "developer"):
        for j, b in enumerate(blocks):
            if not isinstance(b, ir.TextBlock):
                w = f"{where}.content[{j}]"
                raise invalid(f"{w}: {role} messages may only hold text", w, "invalid_value")
        return "system", blocks
    return role, blocks


def _part(part: Any, where: str) -> ir.Block:
    if not isinstance(part, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid(f"Missing required parameter: '{where}.text'.", f"{where}.text", "missing_required_parameter")
        return ir.TextBlock(text)
    if kind == "refusal":
        return ir.TextBlock(str(part.get("refusal") or ""))
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _file(part, where)
    raise invalid(
        f"{where}: content parts of type {kind!r} cannot be sent to this model", f"{where}.type", "invalid_value"
    )


def _image(part: dict[str, Any], where: str) -> ir.ImageBlock:
    url = part.get("image_url")
    if isinstance(url, str) and url:
        match = _DATA_URL.match(url)
        if match:
            return ir.ImageBlock(match.group(1) or "image/png", match.group(2))
        if url.startswith(("http://", "https://")):
            return ir.ImageBlock(url=url)
        raise invalid(
            f"{where}.image_url: expected a data: URL or an http(s) URL", f"{where}.image_url", "invalid_value"
        )
    if part.get("file_id"):
        raise _file_id(where)
    raise invalid(f"{where}: an input_image needs an image_url", f"{where}.image_url", "missing_required_parameter")


def _file(part: dict[str, Any], where: str) -> ir.DocumentBlock:
    title = part.get("filename") if isinstance(part.get("filename"), str) else None
    data = part.get("file_data")
    if isinstance(data, str) and data:
        match = _DATA_URL.match(data)
        media_type, payload = (
            (match.group(1) or "application/pdf", match.group(2)) if match else ("application/pdf", data)
        )
        if media_type == "application/pdf":
            return ir.DocumentBlock({"type": "base64", "media_type": media_type, "data": payload}, title)
        if media_type.startswith("text/"):
            try:
                text = _decode_base64_text(payload)
            except ValueError:
                raise invalid(
                    f"{where}.file_data: not valid base64 text", f"{where}.file_data", "invalid_value"
                ) from None
            return ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": text}, title)
        raise invalid(
            f"{where}.file_data: files of type {media_type} cannot be sent to this model (PDF and text only)",
            f"{where}.file_data",
            "invalid_value",
        )
    if isinstance(part.get("file_url"), str) and part["file_url"]:
        return ir.DocumentBlock({"type": "url", "url": part["file_url"]}, title)
    if part.get("file_id"):
        raise _file_id(where)
    raise invalid(
        f"{where}: an input_file needs file_data or file_url", f"{where}.file_data", "missing_required_parameter"
    )


def _decode_base64_text(payload: str) -> str:
    try:
        return base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError(str(e)) from None


def _file_id(where: str) -> Exception:
    return invalid(
        f"{where}.file_id: uploaded files cannot be resolved on this route; send the content inline",
        f"{where}.file_id",
        "unsupported_parameter",
    )


def _tool_call(item: dict[str, Any], where: str, custom: bool) -> ir.ToolUseBlock:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(
            f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id", "missing_required_parameter"
        )
    if not isinstance(name, str) or not name:
        raise invalid(f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter")
    namespace = item.get("namespace")
    if isinstance(namespace, str) and namespace:
        name = flat_name(namespace, name)
    if custom:
        return ir.ToolUseBlock(call_id, name, {"input": str(item.get("input") or "")})
    return ir.ToolUseBlock(call_id, name, parse_arguments(item.get("arguments")))


def _tool_output(item: dict[str, Any], where: str) -> ir.ToolResultBlock:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(
            f"Missing required parameter: '{where}.call_id'.", f"{where}.call_id", "missing_required_parameter"
        )
    output = item.get("output")
    if isinstance(output, str):
        content: list[Any] = [ir.TextBlock(output)] if output else []
    elif isinstance(output, list):
        content = [_part(p, f"{where}.output[{j}]") for j, p in enumerate(output)]
    else:
        raise invalid(f"Missing required parameter: '{where}.output'.", f"{where}.output", "missing_required_parameter")
    return ir.ToolResultBlock(call_id, content)


def _reasoning(item: dict[str, Any], where: str) -> list[ir.Block]:
    texts = [
        p["text"]
        for key in ("summary", "content")
        for p in item.get(key) or ()
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    summary = "\n\n".join(texts)
    sealed = item.get("encrypted_content")
    ident = item.get("id") if isinstance(item.get("id"), str) else None
    if isinstance(sealed, str) and sealed:
        return [open_reasoning(sealed, summary, ident)]
    # Without encrypted content the reasoning cannot be replayed anywhere: keep its text,
    # marked as OpenAI's, which every other upstream's encoder leaves out.
    return [ir.ThinkingBlock(summary, None, "openai", ident)] if summary or ident else []


def _compaction(item: dict[str, Any], where: str) -> ir.TextBlock:
    sealed = item.get("encrypted_content")
    summary = open_summary(sealed) if isinstance(sealed, str) else None
    if summary is None:
        raise invalid(
            f"{where}: this compaction item was written by another server and cannot be read here; "
            "compact the conversation again on this route",
            f"{where}.encrypted_content",
            "invalid_value",
        )
    return ir.TextBlock(f"{SUMMARY_HEADER}\n\n{summary}")
