"""Codec for the Anthropic Messages wire format, to and from the IR.

Pure functions only: no I/O, no globals. Used in both directions: by the
Anthropic front door (decode client requests, encode responses and stream
events) and by the Anthropic upstream when a request came in another protocol.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, InvalidRequest, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.sse import SSEFrame, encode_frame

PROTOCOL = "anthropic"

# --------------------------------------------------------------------------- validation


def check_request(body: Any, *, require_max_tokens: bool = True) -> None:
    """The cheap checks every request gets, even on the passthrough path."""
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise InvalidRequest("model: Field required")
    if not isinstance(model, str):
        raise InvalidRequest("model: Input should be a valid string")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        if not require_max_tokens:
            max_tokens = 1
        else:
            raise InvalidRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")


# --------------------------------------------------------------------------- request


_REQUEST_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
    }
)


def decode_request(body: dict[str, Any]) -> ir.Request:
    """Client JSON → IR. Raises :class:`InvalidRequest` naming the offending field."""
    check_request(body)
    messages: list[ir.Message] = []
    system = _decode_system(body.get("system"), "system")
    for i, raw in enumerate(body["messages"]):
        where = f"messages.{i}"
        if not isinstance(raw, dict):
            raise InvalidRequest(f"{where}: Input should be a valid dictionary")
        role = raw.get("role")
        content = _decode_content(raw.get("content"), f"{where}.content")
        if role == "system":
            # Newer clients put system turns inside ``messages``: fold them into
            # the system prompt of the IR, which every upstream understands.
            system = (system or []) + [b for b in content if isinstance(b, ir.TextBlock)]
            continue
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"{where}.role: Input should be 'user' or 'assistant'")
        messages.append(ir.Message(role, content))
    tools = None
    if body.get("tools") is not None:
        if not isinstance(body["tools"], list):
            raise InvalidRequest("tools: Input should be a valid list")
        tools = [_decode_tool(t, f"tools.{i}") for i, t in enumerate(body["tools"])]
    thinking = None
    if isinstance(body.get("thinking"), dict):
        t = body["thinking"]
        if t.get("type") not in ("enabled", "adaptive", "disabled"):
            raise InvalidRequest("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
        thinking = ir.Thinking(t["type"], t.get("budget_tokens"))
    tool_choice = None
    if isinstance(body.get("tool_choice"), dict):
        tc = body["tool_choice"]
        tool_choice = ir.ToolChoice(tc.get("type", "auto"), tc.get("name"), bool(tc.get("disable_parallel_tool_use")))
    extras = {k: v for k, v in body.items() if k not in _REQUEST_FIELDS}
    effort, output_format = _pop_output_config(extras)
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("stop_sequences: Input should be a valid list of strings")
    return ir.Request(
        model=body["model"],
        messages=messages,
        max_tokens=body["max_tokens"],
        system=system,
        stream=bool(body.get("stream")),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        top_k=body.get("top_k"),
        stop_sequences=stop,
        tools=tools,
        tool_choice=tool_choice,
        thinking=thinking,
        effort=effort,
        output_format=output_format,
        metadata=body.get("metadata"),
        extras=extras,
    )


def _pop_output_config(extras: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """Move ``output_config.effort`` / ``.format`` (and the older top-level ``output_format``)
    out of the extras into their IR slots; unknown sub-fields stay behind."""
    effort = output_format = None
    config = extras.pop("output_config", None)
    if isinstance(config, dict):
        rest = dict(config)
        effort = rest.pop("effort", None)
        output_format = rest.pop("format", None)
        if rest:
            extras["output_config"] = rest
    elif config is not None:
        extras["output_config"] = config
    legacy = extras.pop("output_format", None)
    if output_format is None and isinstance(legacy, dict):
        output_format = legacy
    elif legacy is not None:
        extras["output_format"] = legacy
    return effort, output_format


def _decode_system(system: Any, where: str) -> list[ir.TextBlock] | None:
    if system is None:
        return None
    if isinstance(system, str):
        return [ir.TextBlock(system)] if system else []
    if isinstance(system, list):
        blocks = []
        for i, b in enumerate(system):
            if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
                raise InvalidRequest(f"{where}.{i}: system blocks must be text blocks")
            blocks.append(ir.TextBlock(b["text"], b.get("cache_control")))
        return blocks
    raise InvalidRequest(f"{where}: Input should be a valid string or list of text blocks")


def _decode_content(content: Any, where: str) -> list[ir.Block]:
    if isinstance(content, str):
        return [ir.TextBlock(content)]
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}: Input should be a valid string or list of content blocks")
    return [decode_block(b, f"{where}.{i}") for i, b in enumerate(content)]


def decode_block(b: Any, where: str = "content") -> ir.Block:
    if not isinstance(b, dict):
        raise InvalidRequest(f"{where}: Input should be a valid dictionary")
    kind = b.get("type")
    cc = b.get("cache_control")
    if kind == "text":
        if not isinstance(b.get("text"), str):
            raise InvalidRequest(f"{where}.text: Field required")
        return ir.TextBlock(b["text"], cc, b.get("citations"))
    if kind == "image":
        src = b.get("source") or {}
        if src.get("type") == "base64":
            return ir.ImageBlock(src.get("media_type"), src.get("data"), None, cc)
        if src.get("type") == "url":
            return ir.ImageBlock(None, None, src.get("url"), cc)
        raise InvalidRequest(f"{where}.source: image source must be base64 or url")
    if kind == "document":
        if not isinstance(b.get("source"), dict):
            raise InvalidRequest(f"{where}.source: Field required")
        return ir.DocumentBlock(b["source"], b.get("title"), b.get("context"), b.get("citations"), cc)
    if kind == "tool_use":
        return ir.ToolUseBlock(str(b.get("id", "")), str(b.get("name", "")), b.get("input") or {}, cc)
    if kind == "tool_result":
        content = b.get("content")
        if content is None:
            inner: list[Any] = []
        elif isinstance(content, str):
            inner = [ir.TextBlock(content)]
        else:
            inner = [decode_block(x, f"{where}.content.{j}") for j, x in enumerate(content)]
        return ir.ToolResultBlock(str(b.get("tool_use_id", "")), inner, bool(b.get("is_error")), cc)
    if kind == "thinking":
        return ir.ThinkingBlock(b.get("thinking", ""), b.get("signature"), PROTOCOL)
    if kind == "redacted_thinking":
        return ir.RedactedThinkingBlock(b.get("data", ""))
    raise InvalidRequest(f"{where}.type: content block type {kind!r} is not supported on this route")


def _decode_tool(t: Any, where: str) -> ir.Tool:
    if not isinstance(t, dict) or not isinstance(t.get("name"), str):
        raise InvalidRequest(f"{where}.name: Field required")
    known = {"name", "description", "input_schema", "cache_control"}
    return ir.Tool(
        name=t["name"],
        description=t.get("description"),
        input_schema=t.get("input_schema") or {"type": "object"},
        cache_control=t.get("cache_control"),
        extras={k: v for k, v in t.items() if k not in known},
    )


def encode_request(req: ir.Request) -> dict[str, Any]:
    """IR → Anthropic request JSON (for an Anthropic upstream on a translated path)."""
    body: dict[str, Any] = {
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": [{"role": m.role, "content": _encode_content(m.content)} for m in req.messages],
    }
    if req.system:
        body["system"] = [encode_block(b) for b in req.system]
    for name in ("temperature", "top_p", "top_k", "stop_sequences", "metadata"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.tools:
        body["tools"] = [_encode_tool(t) for t in req.tools]
    if req.tool_choice:
        tc: dict[str, Any] = {"type": req.tool_choice.type}
        if req.tool_choice.name:
            tc["name"] = req.tool_choice.name
        if req.tool_choice.disable_parallel_tool_use:
            tc["disable_parallel_tool_use"] = True
        body["tool_choice"] = tc
    if req.thinking:
        th: dict[str, Any] = {"type": req.thinking.type}
        if req.thinking.budget_tokens is not None:
            th["budget_tokens"] = req.thinking.budget_tokens
        body["thinking"] = th
    if req.stream:
        body["stream"] = True
    body.update(req.extras)
    if req.effort or req.output_format:
        config = dict(body.get("output_config") or {})
        if req.effort:
            config["effort"] = req.effort
        if req.output_format:
            config["format"] = req.output_format
        body["output_config"] = config
    return body


def _encode_content(blocks: list[ir.Block]) -> list[dict[str, Any]]:
    """Blocks for an Anthropic upstream; reasoning written by another provider is left out,
    since Anthropic would reject its signature (or its lack of one)."""
    return [
        encode_block(b) for b in blocks if not (isinstance(b, ir.ThinkingBlock) and b.origin not in (None, PROTOCOL))
    ]


def _encode_tool(t: ir.Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    out["input_schema"] = t.input_schema
    if t.cache_control:
        out["cache_control"] = t.cache_control
    out.update(t.extras)
    return out


def encode_block(b: ir.Block) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(b, ir.TextBlock):
        out = {"type": "text", "text": b.text}
        if b.citations is not None:
            out["citations"] = b.citations
    elif isinstance(b, ir.ToolUseBlock):
        out = {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
    elif isinstance(b, ir.ThinkingBlock):
        out = {"type": "thinking", "thinking": b.thinking}
        if b.signature is not None:
            out["signature"] = b.signature
        return out
    elif isinstance(b, ir.RedactedThinkingBlock):
        return {"type": "redacted_thinking", "data": b.data}
    elif isinstance(b, ir.ImageBlock):
        if b.url is not None:
            src = {"type": "url", "url": b.url}
        else:
            src = {"type": "base64", "media_type": b.media_type, "data": b.data}
        out = {"type": "image", "source": src}
    elif isinstance(b, ir.DocumentBlock):
        out = {"type": "document", "source": b.source}
        for name in ("title", "context", "citations"):
            if getattr(b, name) is not None:
                out[name] = getattr(b, name)
    elif isinstance(b, ir.ToolResultBlock):
        out = {"type": "tool_result", "tool_use_id": b.tool_use_id, "content": [encode_block(x) for x in b.content]}
        if b.is_error:
            out["is_error"] = True
    else:  # pragma: no cover - exhaustive over ir.Block
        raise TypeError(f"unknown block {b!r}")
    if b.cache_control:
        out["cache_control"] = b.cache_control
    return out


# --------------------------------------------------------------------------- response


def encode_usage(u: ir.Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    }


def decode_usage(raw: dict[str, Any] | None, base: ir.Usage | None = None) -> ir.Usage:
    """Anthropic usage → IR; fields absent from ``raw`` keep their value in ``base``."""
    u = base or ir.Usage()
    if not raw:
        return u

    def pick(key: str, current: int) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else current

    return ir.Usage(
        input_tokens=pick("input_tokens", u.input_tokens),
        output_tokens=pick("output_tokens", u.output_tokens),
        cache_read_tokens=pick("cache_read_input_tokens", u.cache_read_tokens),
        cache_write_tokens=pick("cache_creation_input_tokens", u.cache_write_tokens),
        reasoning_tokens=u.reasoning_tokens,
    )


def encode_response(resp: ir.Response) -> dict[str, Any]:
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": [encode_block(b) for b in resp.content],
        "stop_reason": resp.stop_reason,
        "stop_sequence": resp.stop_sequence,
        "usage": encode_usage(resp.usage),
    }


def decode_response(body: dict[str, Any]) -> ir.Response:
    return ir.Response(
        id=body.get("id", ""),
        model=body.get("model", ""),
        content=[decode_block(b) for b in body.get("content") or []],
        stop_reason=body.get("stop_reason"),
        stop_sequence=body.get("stop_sequence"),
        usage=decode_usage(body.get("usage")),
    )


# --------------------------------------------------------------------------- stream


def _block_start_json(b: ir.Block) -> dict[str, Any]:
    if isinstance(b, ir.TextBlock):
        return {"type": "text", "text": ""}
    if isinstance(b, ir.ToolUseBlock):
        return {"type": "tool_use", "id": b.id, "name": b.name, "input": {}}
    if isinstance(b, ir.ThinkingBlock):
        return {"type": "thinking", "thinking": ""}
    return encode_block(b)


_DELTA_TYPES = {
    "text": ("text_delta", "text"),
    "input_json": ("input_json_delta", "partial_json"),
    "thinking": ("thinking_delta", "thinking"),
    "signature": ("signature_delta", "signature"),
    "citation": ("citations_delta", "citation"),
}


def encode_event(ev: ir.StreamEvent) -> bytes:
    """One IR stream event → one Anthropic SSE frame."""
    if isinstance(ev, ir.BlockDelta):
        dtype, key = _DELTA_TYPES[ev.kind]
        payload: dict[str, Any] = {
            "type": "content_block_delta",
            "index": ev.index,
            "delta": {"type": dtype, key: ev.value},
        }
        return encode_frame(orjson.dumps(payload), "content_block_delta")
    if isinstance(ev, ir.BlockStart):
        payload = {"type": "content_block_start", "index": ev.index, "content_block": _block_start_json(ev.block)}
        return encode_frame(orjson.dumps(payload), "content_block_start")
    if isinstance(ev, ir.BlockStop):
        return encode_frame(orjson.dumps({"type": "content_block_stop", "index": ev.index}), "content_block_stop")
    if isinstance(ev, ir.MessageStart):
        message = {
            "id": ev.id,
            "type": "message",
            "role": "assistant",
            "model": ev.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": encode_usage(ev.usage),
        }
        return encode_frame(orjson.dumps({"type": "message_start", "message": message}), "message_start")
    if isinstance(ev, ir.MessageDelta):
        usage = {
            "input_tokens": ev.usage.input_tokens,
            "cache_creation_input_tokens": ev.usage.cache_write_tokens,
            "cache_read_input_tokens": ev.usage.cache_read_tokens,
            "output_tokens": ev.usage.output_tokens,
        }
        payload = {
            "type": "message_delta",
            "delta": {"stop_reason": ev.stop_reason, "stop_sequence": ev.stop_sequence},
            "usage": usage,
        }
        return encode_frame(orjson.dumps(payload), "message_delta")
    if isinstance(ev, ir.MessageStop):
        return encode_frame(b'{"type":"message_stop"}', "message_stop")
    if isinstance(ev, ir.Ping):
        return encode_frame(b'{"type":"ping"}', "ping")
    if isinstance(ev, ir.StreamError):
        return encode_frame(orjson.dumps(error_body(ev.error)), "error")
    raise TypeError(f"unknown stream event {ev!r}")  # pragma: no cover


class StreamDecoder:
    """Anthropic SSE frames (from an upstream) → IR events."""

    __slots__ = ("done", "usage")

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self.done = False

    def finish(self) -> list[ir.StreamEvent]:
        """Called when the upstream body ends: a stream without ``message_stop`` was cut short."""
        if self.done:
            return []
        return [ir.StreamError(UpstreamUnavailable("upstream stream ended before message_stop"))]

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        if not frame.data:
            return []
        data = orjson.loads(frame.data)
        kind = data.get("type")
        if kind == "content_block_delta":
            d = data["delta"]
            dtype = d.get("type")
            if dtype == "text_delta":
                return [ir.BlockDelta(data["index"], "text", d["text"])]
            if dtype == "input_json_delta":
                return [ir.BlockDelta(data["index"], "input_json", d["partial_json"])]
            if dtype == "thinking_delta":
                return [ir.BlockDelta(data["index"], "thinking", d["thinking"])]
            if dtype == "signature_delta":
                return [ir.BlockDelta(data["index"], "signature", d["signature"])]
            if dtype == "citations_delta":
                return [ir.BlockDelta(data["index"], "citation", d["citation"])]
            return []
        if kind == "content_block_start":
            return [ir.BlockStart(data["index"], decode_block(data["content_block"]))]
        if kind == "content_block_stop":
            return [ir.BlockStop(data["index"])]
        if kind == "message_start":
            msg = data["message"]
            self.usage = decode_usage(msg.get("usage"))
            return [ir.MessageStart(msg.get("id", ""), msg.get("model", ""), self.usage)]
        if kind == "message_delta":
            self.usage = decode_usage(data.get("usage"), self.usage)
            delta = data.get("delta") or {}
            return [ir.MessageDelta(delta.get("stop_reason"), self.usage, delta.get("stop_sequence"))]
        if kind == "message_stop":
            self.done = True
            return [ir.MessageStop()]
        if kind == "ping":
            return [ir.Ping()]
        if kind == "error":
            self.done = True
            err = data.get("error") or {}
            etype = err.get("type", "api_error")
            status = _STATUS_BY_TYPE.get(etype, 500)
            return [
                ir.StreamError(
                    UpstreamHTTPError(
                        err.get("message", "upstream error"),
                        status=status,
                        kind=_KIND_BY_TYPE.get(etype, "api_error"),
                        protocol=PROTOCOL,
                        body=data,
                    )
                )
            ]
        return []


# --------------------------------------------------------------------------- errors

_TYPE_BY_KIND = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "billing": "billing_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "api_error": "api_error",
    "timeout": "timeout_error",
    "overloaded": "overloaded_error",
}
_KIND_BY_TYPE = {v: k for k, v in _TYPE_BY_KIND.items()}
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_body(err: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """The Anthropic error envelope; an Anthropic upstream's own body passes through as-is."""
    if isinstance(err, UpstreamHTTPError) and err.protocol == PROTOCOL and isinstance(err.body, dict):
        body = dict(err.body)
        if "type" in body and "error" in body:
            if request_id and "request_id" not in body:
                body["request_id"] = request_id
            return body
    message = err.message
    if isinstance(err, UpstreamHTTPError) and err.status == 400:
        message = prompt_too_long(message) or message
    body = {"type": "error", "error": {"type": _TYPE_BY_KIND.get(err.kind, "api_error"), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


_CONTEXT_NUMBERS = re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S)
_CONTEXT_WORDS = ("context length", "context size", "context window", "too many tokens", "prompt is too long")


def prompt_too_long(message: str) -> str | None:
    """Reword another server's context-overflow error the way Anthropic words it.

    Claude Code recognises ``prompt is too long`` and compacts the conversation;
    vLLM's or OpenAI's wording would make it fail instead.
    """
    numbers = _CONTEXT_NUMBERS.search(message)
    if numbers:
        return f"prompt is too long: {numbers.group(2)} tokens > {numbers.group(1)} maximum"
    low = message.lower()
    if any(words in low for words in _CONTEXT_WORDS):
        return message if low.startswith("prompt is too long") else f"prompt is too long: {message}"
    return None


def error_type(kind: str) -> str:
    return _TYPE_BY_KIND.get(kind, "api_error")
