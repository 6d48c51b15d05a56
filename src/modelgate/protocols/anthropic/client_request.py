"""A client's Messages request: the cheap checks every request gets (even on the passthrough
path) and the decoding of its JSON to the IR (the translated path).

Unknown top-level fields ride along in ``extras``; ``output_config.effort`` / ``.format`` (and the
older top-level ``output_format``) move into their IR slots; ``system`` turns inside ``messages``
fold into the system prompt."""

from __future__ import annotations

from typing import Any

from modelgate import ir
from modelgate.errors import InvalidRequest
from modelgate.protocols.anthropic.blocks import decode_block

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
