"""What both directions of the Responses codec share: names, ids, effort scales, the
reasoning envelope and the naming of namespaced and custom tools."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols import WireProtocol

PROTOCOL = WireProtocol.OPENAI_RESPONSES

#: ``max_output_tokens`` when the client sends none (OpenAI then allows the model's maximum;
#: the IR needs a number). A model's configured ``max_output_tokens`` caps it further.
DEFAULT_MAX_OUTPUT_TOKENS = 8192
#: OpenAI refuses a smaller ``max_output_tokens``.
MIN_MAX_OUTPUT_TOKENS = 16

#: ``reasoning.effort`` → the IR's effort scale (Anthropic's words).
IR_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "max"}
#: ``reasoning.effort`` → a thinking budget, for upstreams that take budgets (Anthropic).
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768}
#: The smallest thinking budget Anthropic accepts.
MIN_THINKING_BUDGET = 1024
#: The IR's effort scale → ``reasoning.effort`` (for a Responses upstream).
RESPONSES_EFFORTS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "max": "high"}

#: Prefix of reasoning envelopes this gateway writes into ``encrypted_content``.
ENVELOPE_PREFIX = "mg1:"
#: Prefix of compaction summaries this gateway writes into a compaction item.
COMPACTION_PREFIX = "mgc1:"


class CodedInvalidRequest(InvalidRequest):
    """An :class:`InvalidRequest` that also carries OpenAI's error ``code``."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, param=param)
        self.code = code


def invalid(message: str, param: str | None = None, code: str | None = None) -> CodedInvalidRequest:
    return CodedInvalidRequest(message, param=param, code=code)


def json_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def item_id(prefix: str, response_id: str, n: int) -> str:
    """The id of output item ``n``: unique within the response, tied to its id (``msg_…``)."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{n:02x}"


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


# --------------------------------------------------------------------------- reasoning envelope


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal_reasoning(block: ir.ThinkingBlock | ir.RedactedThinkingBlock) -> str:
    """``encrypted_content`` for a reasoning item. OpenAI's own encrypted reasoning goes out
    as it came; reasoning from any other upstream is wrapped in an envelope holding its text,
    signature and origin, so that it comes back exact (a signature only checks against the
    exact text) and is only ever replayed to the kind of upstream that wrote it."""
    if isinstance(block, ir.RedactedThinkingBlock):
        payload: dict[str, Any] = {"o": "anthropic", "r": block.data}
    elif block.origin == "openai" and block.signature:
        return block.signature
    else:
        payload = {"o": block.origin, "t": block.thinking, "s": block.signature}
    return ENVELOPE_PREFIX + _b64encode(orjson.dumps(payload))


def open_reasoning(sealed: str, summary_text: str, item: str | None) -> ir.ThinkingBlock | ir.RedactedThinkingBlock:
    """A reasoning item's ``encrypted_content`` → the block it came from (see :func:`seal_reasoning`).
    Content that is not an envelope is OpenAI's: its text is the summary."""
    if sealed.startswith(ENVELOPE_PREFIX):
        try:
            payload = orjson.loads(_b64decode(sealed[len(ENVELOPE_PREFIX) :]))
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            payload = None
        if isinstance(payload, dict):
            if isinstance(payload.get("r"), str):
                return ir.RedactedThinkingBlock(payload["r"])
            text, signature, origin = payload.get("t"), payload.get("s"), payload.get("o")
            return ir.ThinkingBlock(
                text if isinstance(text, str) else summary_text,
                signature if isinstance(signature, str) else None,
                origin if isinstance(origin, str) else None,
                item,
            )
    return ir.ThinkingBlock(summary_text, sealed, "openai", item)


def seal_summary(text: str) -> str:
    """The ``encrypted_content`` of a compaction item this gateway wrote: the summary itself."""
    return COMPACTION_PREFIX + _b64encode(text.encode())


def open_summary(sealed: str) -> str | None:
    """The summary inside a compaction item this gateway wrote; None for anyone else's."""
    if not sealed.startswith(COMPACTION_PREFIX):
        return None
    try:
        return _b64decode(sealed[len(COMPACTION_PREFIX) :]).decode()
    except (ValueError, binascii.Error):
        return None


# --------------------------------------------------------------------------- tool names


def flat_name(namespace: str, name: str) -> str:
    """The one name a tool of a ``namespace`` gets where namespaces do not exist."""
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


@dataclass(slots=True, frozen=True)
class ToolNames:
    """What the client's tool list says about a tool name the model calls: a custom
    (free-form) tool answers with ``custom_tool_call`` items, a namespaced one names its
    namespace apart."""

    custom: frozenset[str] = frozenset()
    namespaced: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def split(self, name: str) -> tuple[str | None, str]:
        """(namespace, name) of a flat tool name."""
        return self.namespaced.get(name, (None, name))


def tool_names(tools: Any) -> ToolNames:
    """The :class:`ToolNames` of a request's ``tools``."""
    custom: set[str] = set()
    namespaced: dict[str, tuple[str, str]] = {}
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "custom" and isinstance(tool.get("name"), str):
            custom.add(tool["name"])
        elif tool.get("type") == "namespace" and isinstance(tool.get("name"), str):
            for inner in tool.get("tools") or ():
                if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                    flat = flat_name(tool["name"], inner["name"])
                    namespaced[flat] = (tool["name"], inner["name"])
                    if inner.get("type") == "custom":
                        custom.add(flat)
    return ToolNames(frozenset(custom), namespaced)
