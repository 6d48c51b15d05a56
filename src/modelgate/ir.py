"""The internal representation (IR) every wire protocol is translated to and from.

Anthropic Messages is the richest of the wire formats, so the IR follows its
vocabulary (content blocks, stop reasons, stream events) and loses nothing it
carries. Other protocols are codecs into and out of these types; a field that
has no IR slot rides in ``extras`` so that nothing is silently dropped.

The types are plain slotted dataclasses: cheap to build on the hot path and
free of I/O, so codecs that use them stay pure and easy to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]

#: Stop reasons, in Anthropic's vocabulary (the IR's lingua franca).
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


# --------------------------------------------------------------------------- content


@dataclass(slots=True)
class TextBlock:
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None
    #: Gemini's ``thoughtSignature`` when it rides on a text part; must go back on later turns.
    signature: str | None = None
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImageBlock:
    """An image, either inline (``data`` is base64) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    cache_control: dict[str, Any] | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class DocumentBlock:
    """A document (PDF or plain text); ``source`` keeps Anthropic's source object."""

    source: dict[str, Any]
    title: str | None = None
    context: str | None = None
    citations: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    type: Literal["document"] = "document"


@dataclass(slots=True)
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    cache_control: dict[str, Any] | None = None
    #: Gemini's ``thoughtSignature`` on a function call; must go back on later turns.
    signature: str | None = None
    type: Literal["tool_use"] = "tool_use"


#: What a tool result may hold.
ToolResultContent = TextBlock | ImageBlock | DocumentBlock


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: list[ToolResultContent] = field(default_factory=list)
    is_error: bool = False
    cache_control: dict[str, Any] | None = None
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class ThinkingBlock:
    """Reasoning. ``signature`` is opaque proof from the provider that wrote it (Anthropic's
    signature, OpenAI's ``encrypted_content``); ``origin`` names that provider's protocol so a
    signature is only ever sent back to the kind of upstream that can check it."""

    thinking: str
    signature: str | None = None
    origin: str | None = None
    #: The provider's id for the reasoning item (OpenAI Responses ``rs_…``).
    id: str | None = None
    type: Literal["thinking"] = "thinking"


@dataclass(slots=True)
class RedactedThinkingBlock:
    data: str
    type: Literal["redacted_thinking"] = "redacted_thinking"


Block = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


@dataclass(slots=True)
class Message:
    role: Role
    content: list[Block]


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    cache_control: dict[str, Any] | None = None
    #: Fields of the tool definition with no IR slot (``strict``, server-tool ``type`` …).
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolChoice:
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None
    disable_parallel_tool_use: bool = False


@dataclass(slots=True)
class Thinking:
    """Extended thinking: ``enabled`` (with a budget), ``adaptive`` or ``disabled``."""

    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message]
    max_tokens: int
    system: list[TextBlock] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    #: How hard to think: ``minimal``, ``low``, ``medium``, ``high`` or ``max``.
    effort: str | None = None
    #: Structured output: ``{"type": "json_schema", "schema": {...}, "name"?, "strict"?}``
    #: or ``{"type": "json_object"}``.
    output_format: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    #: Fields the IR has no slot for, kept as the client sent them.
    extras: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Response:
    id: str
    model: str
    content: list[Block]
    stop_reason: StopReason | None
    usage: Usage
    stop_sequence: str | None = None


# --------------------------------------------------------------------------- stream events


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage


@dataclass(slots=True)
class BlockStart:
    """Opens block ``index``; ``block`` carries its header (tool id and name, empty text)."""

    index: int
    block: Block


DeltaKind = Literal["text", "input_json", "thinking", "signature", "citation"]


@dataclass(slots=True)
class BlockDelta:
    index: int
    kind: DeltaKind
    value: Any


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class MessageDelta:
    """The end of the message: stop reason and the final (cumulative) usage."""

    stop_reason: StopReason | None
    usage: Usage
    stop_sequence: str | None = None


@dataclass(slots=True)
class MessageStop:
    pass


@dataclass(slots=True)
class Ping:
    pass


@dataclass(slots=True)
class StreamError:
    """An error after the stream began; ``error`` is a :class:`modelgate.errors.GatewayError`."""

    error: Any


StreamEvent = MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | Ping | StreamError
