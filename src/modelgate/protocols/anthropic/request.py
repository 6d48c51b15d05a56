"""Requests: the cheap checks, decoding client JSON to IR, and encoding IR for an Anthropic upstream."""

from __future__ import annotations

import re
from typing import Any

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.anthropic.blocks import PROTOCOL, decode_block, encode_block

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
    """IR → Anthropic request JSON (for an Anthropic upstream on a translated path).

    Requests translated from other protocols are fitted to what the Messages API
    accepts (see :func:`_fit_thinking`), and structured output is reduced to
    Anthropic's ``{"type": "json_schema", "schema"}``.
    """
    thinking, temperature, top_p, top_k = _fit_thinking(req)
    body: dict[str, Any] = {
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": [{"role": m.role, "content": _encode_content(m.content)} for m in req.messages],
    }
    if req.system:
        body["system"] = [encode_block(b) for b in req.system]
    for name, value in (
        ("temperature", temperature),
        ("top_p", top_p),
        ("top_k", top_k),
        ("stop_sequences", req.stop_sequences),
        ("metadata", req.metadata),
    ):
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
    if thinking:
        th: dict[str, Any] = {"type": thinking.type}
        if thinking.budget_tokens is not None:
            th["budget_tokens"] = thinking.budget_tokens
        body["thinking"] = th
    if req.stream:
        body["stream"] = True
    body.update(req.extras)
    effort = req.effort if thinking is not None and thinking.type == "adaptive" else None
    output_format = _anthropic_format(req.output_format)
    if effort or output_format:
        config = dict(body.get("output_config") or {})
        if effort:
            config["effort"] = effort
        if output_format:
            config["format"] = output_format
        body["output_config"] = config
    return body


MIN_THINKING_BUDGET = 1024
#: Thinking budgets for an effort, on models without adaptive thinking.
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384, "xhigh": 32768, "max": 32768}
#: Claude models older than adaptive thinking and ``output_config.effort`` (Opus/Sonnet 4.6 have it):
#: they answer 400 to ``{"type": "adaptive"}``.
_BEFORE_ADAPTIVE = re.compile(r"claude-(3|(opus|sonnet|haiku)-4(-[0-5])?(-\d{8})?$)")


def supports_adaptive_thinking(model: str) -> bool:
    return _BEFORE_ADAPTIVE.match(model) is None


def _fit_thinking(req: ir.Request) -> tuple[ir.Thinking | None, float | None, float | None, int | None]:
    """Thinking and sampling as the Messages API accepts them together.

    Anthropic rejects: adaptive thinking on models before Opus/Sonnet 4.6 (a budget for the
    effort is used instead); a budget under 1,024 (raised to 1,024) or not below ``max_tokens``; thinking with a
    forced tool choice; thinking when the last assistant turn calls tools without starting
    with a thinking block (clients of other protocols drop those blocks); with thinking,
    any ``temperature`` but 1, ``top_k``, or ``top_p`` under 0.95; and ``temperature`` over 1.
    Rather than fail, the budget shrinks to fit, or thinking is left out, and sampling
    values the API would refuse are dropped.
    """
    thinking = req.thinking
    if thinking is not None and thinking.type == "disabled":
        return thinking, _cap_temperature(req.temperature), req.top_p, req.top_k
    if thinking is not None and thinking.type == "adaptive" and not supports_adaptive_thinking(req.model):
        thinking = ir.Thinking("enabled", EFFORT_BUDGETS.get(req.effort or "", 4096))
    if thinking is not None and thinking.type == "enabled":
        # Raise small budgets (Gemini clients ask for 128+) to Anthropic's minimum when it fits.
        budget = min(max(thinking.budget_tokens or 0, MIN_THINKING_BUDGET), req.max_tokens - 1)
        thinking = ir.Thinking("enabled", budget) if budget >= MIN_THINKING_BUDGET else None
    if thinking is not None and req.tool_choice is not None and req.tool_choice.type in ("any", "tool"):
        thinking = None
    if thinking is not None and _unthought_tool_turn(req.messages):
        thinking = None
    if thinking is None:
        return None, _cap_temperature(req.temperature), req.top_p, req.top_k
    top_p = req.top_p if req.top_p is None or req.top_p >= 0.95 else None
    return thinking, (1 if req.temperature == 1 else None), top_p, None


def _cap_temperature(value: float | None) -> float | None:
    return min(value, 1.0) if value is not None else None


def _unthought_tool_turn(messages: list[ir.Message]) -> bool:
    for m in reversed(messages):
        if m.role == "assistant":
            calls = any(isinstance(b, ir.ToolUseBlock) for b in m.content)
            first = next((b for b in m.content if not (isinstance(b, ir.TextBlock) and not b.text)), None)
            thought = isinstance(first, (ir.ThinkingBlock, ir.RedactedThinkingBlock)) and (
                not isinstance(first, ir.ThinkingBlock) or first.origin in (None, PROTOCOL)
            )
            return calls and not thought
    return False


def _anthropic_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    """Anthropic's structured output takes only ``type`` and ``schema``; JSON mode is a schema
    of any object."""
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {"type": "json_schema", "schema": fmt["schema"]}
    return None


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
