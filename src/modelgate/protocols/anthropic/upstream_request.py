"""IR → a Messages request, for an Anthropic upstream on the translated path, fitted to what
the Messages API accepts (requests translated from other protocols ask for thinking and
sampling combinations Anthropic refuses: see :func:`encode_request` and :func:`_fit_thinking`)."""

from __future__ import annotations

import re
from typing import Any

from modelgate import ir
from modelgate.protocols.anthropic.blocks import PROTOCOL, encode_block


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


def fit_body(body: dict[str, Any], model: str, max_tokens_cap: int | None = None) -> dict[str, Any]:
    """A client's Messages request (JSON, as it came) fitted to ``model`` when another model
    serves it than the one the client named (an alias, a fallback): the rules of
    :func:`_fit_thinking` that a body written for a newer model breaks. Adaptive thinking on a
    model without it becomes a budget for the effort (``output_config.effort`` goes: those
    models refuse it too); ``max_tokens`` is capped at ``max_tokens_cap``; a budget is kept
    under ``max_tokens`` (thinking goes when no budget fits). Everything else — unknown
    fields, betas' fields, thinking signatures — is left as it is."""
    body = {**body, "model": model}
    max_tokens = body.get("max_tokens")
    if max_tokens_cap and isinstance(max_tokens, int) and max_tokens > max_tokens_cap:
        body["max_tokens"] = max_tokens = max_tokens_cap
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    adaptive = supports_adaptive_thinking(model)
    if not adaptive and effort is not None and isinstance(config, dict):
        rest = {k: v for k, v in config.items() if k != "effort"}
        if rest:
            body["output_config"] = rest
        else:
            del body["output_config"]
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return body
    if thinking.get("type") == "adaptive" and not adaptive:
        thinking = {"type": "enabled", "budget_tokens": EFFORT_BUDGETS.get(str(effort), 4096)}
    budget = thinking.get("budget_tokens")
    if thinking.get("type") == "enabled" and isinstance(budget, int) and isinstance(max_tokens, int):
        budget = min(budget, max_tokens - 1)
        if budget < MIN_THINKING_BUDGET:
            body.pop("thinking")
            return body
        thinking = {**thinking, "budget_tokens": budget}
    body["thinking"] = thinking
    return body


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
