"""``POST /v1/responses/compact`` on the translated path: compaction done by the routed model.

OpenAI's endpoint takes ``model``, ``input`` and ``instructions`` and answers a
``response.compaction`` object whose ``output`` is the conversation's user messages followed
by one ``compaction`` item, whose opaque ``encrypted_content`` stands for everything else;
Codex replaces its history with that output. Here the routed model writes the summary:

- the conversation is rendered as a plain transcript (tool calls and results as bracketed
  lines, reasoning left out) inside one user message, followed by :data:`COMPACT_PROMPT`;
  ``instructions`` stay the system prompt. A transcript, not the raw turns, so that any
  upstream can take it (no dangling tool calls, no reasoning signatures to check);
- the summary goes into the compaction item as ``mgc1:`` + base64 (readable, not
  encrypted: the gateway keeps no state). When the item comes back in a later ``input``,
  it becomes a user message holding the summary (``client_input``); a compaction item
  written by OpenAI cannot be read on this path and is refused with a 400.
- ``previous_response_id`` is refused, as on ``/v1/responses``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.protocols.openai_responses.client_input import decode_conversation
from modelgate.protocols.openai_responses.client_request import check_request
from modelgate.protocols.openai_responses.client_response import encode_usage
from modelgate.protocols.openai_responses.common import DEFAULT_MAX_OUTPUT_TOKENS, invalid, item_id, seal_summary

COMPACT_PROMPT = (
    "The conversation above is about to be compacted so that the work can continue in a fresh context. "
    "Write a handoff summary for whoever continues it: the user's goals and constraints, what has been done "
    "so far (files, commands, decisions and their results), the current state, and the next steps. "
    "Be concise but leave out nothing needed to continue. Answer with the summary only."
)


def compaction_request(body: Any) -> ir.Request:
    """The IR request that asks the routed model for the summary."""
    check_request(body)
    if body.get("previous_response_id"):
        raise invalid(
            "previous_response_id: this model is served without stored responses; "
            "send the whole conversation in 'input'",
            "previous_response_id",
            "unsupported_parameter",
        )
    system, messages = decode_conversation(body)
    transcript = "\n\n".join(t for t in (_render(m) for m in messages) if t)
    prompt = f"<conversation>\n{transcript}\n</conversation>\n\n{COMPACT_PROMPT}"
    return ir.Request(
        model=body["model"],
        messages=[ir.Message("user", [ir.TextBlock(prompt)])],
        max_tokens=DEFAULT_MAX_OUTPUT_TOKENS,
        system=system or None,
    )


def _render(m: ir.Message) -> str:
    lines = [t for t in (_render_block(b) for b in m.content) if t]
    return f"{m.role}:\n" + "\n".join(lines) if lines else ""


def _render_block(b: ir.Block) -> str:
    if isinstance(b, ir.TextBlock):
        return b.text
    if isinstance(b, ir.ToolUseBlock):
        return f"[tool call {b.id}: {b.name} {orjson.dumps(b.input).decode()}]"
    if isinstance(b, ir.ToolResultBlock):
        inner = "\n".join(_render_block(x) for x in b.content)
        return f"[tool result {b.tool_use_id}{' (error)' if b.is_error else ''}]\n{inner}"
    if isinstance(b, ir.ImageBlock):
        return "[image]"
    if isinstance(b, ir.DocumentBlock):
        return f"[document {b.title or ''}]".replace(" ]", "]")
    return ""  # reasoning stays out of the transcript


def _user_messages(raw: Any) -> list[dict[str, Any]]:
    """The user messages of ``input``, as items with a list of content parts."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    out = []
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            content = item.get("content")
            if isinstance(content, str):
                content = [{"type": "input_text", "text": content}]
            out.append({"type": "message", **item, "content": content})
    return out


def compaction_response(
    body: dict[str, Any], summary: str, usage: ir.Usage, response_id: str, created_at: int
) -> dict[str, Any]:
    """The ``response.compaction`` object: the user messages, then the compaction item."""
    output = _user_messages(body.get("input"))
    output.append(
        {
            "id": item_id("cmp", response_id, len(output)),
            "type": "compaction",
            "encrypted_content": seal_summary(summary),
        }
    )
    return {
        "id": response_id,
        "object": "response.compaction",
        "created_at": created_at,
        "output": output,
        "usage": encode_usage(usage),
    }
