"""A client's ``POST /v1/responses`` body → IR request (the translated path), and the cheap
checks every request gets, even on the passthrough path.

Field by field (see the package docstring for the whole policy):

- mapped: ``model``, ``input``, ``instructions`` (→ system, before the input's system and
  developer messages), ``tools``, ``tool_choice``, ``parallel_tool_calls``, ``text.format``,
  ``reasoning.effort``, ``max_output_tokens``, ``temperature``, ``top_p``, ``stream``, ``user``
  (or else ``safety_identifier``) → ``metadata.user_id``;
- used when answering: ``reasoning.summary``, ``include: ["reasoning.encrypted_content"]``
  and every field the Response object echoes;
- refused with a 400 naming the field: ``previous_response_id``, ``conversation``, ``prompt``
  and ``background: true`` (they need stored responses), ``top_logprobs`` > 0 and
  ``include: ["message.output_text.logprobs"]`` (no upstream here returns them),
  ``context_management`` (server-side compaction: use ``/v1/responses/compact``);
- ignored, because they change nothing in the answer: ``store`` (nothing is stored; the
  field is echoed), ``metadata`` (echoed, never sent upstream: Anthropic refuses keys it does
  not know), ``prompt_cache_key``, ``prompt_cache_retention``, ``prompt_cache_options``,
  ``service_tier``, ``truncation``, ``max_tool_calls`` (built-in tools only), ``stream_options``,
  ``text.verbosity``, Codex's ``client_metadata``, the other ``include`` values, and any field
  this codec does not know (a newer client's field must not break an older gateway).
"""

from __future__ import annotations

from typing import Any, Literal

from modelgate import ir
from modelgate.protocols.openai_responses.client_input import decode_conversation
from modelgate.protocols.openai_responses.common import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    EFFORT_BUDGETS,
    IR_EFFORTS,
    MIN_MAX_OUTPUT_TOKENS,
    MIN_THINKING_BUDGET,
    flat_name,
    invalid,
)

#: Built-in tools the model merely *may* use (Codex declares web search on every request):
#: left out of a translated request, since no upstream here can run them.
OPTIONAL_HOSTED_TOOLS = frozenset({"web_search", "web_search_preview"})
_EFFORTS = frozenset({"none", *IR_EFFORTS})
_SUMMARIES = frozenset({"auto", "concise", "detailed"})
_CUSTOM_SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's input, as free-form text."}},
    "required": ["input"],
}


def check_request(body: Any) -> None:
    """The checks every request gets before routing (passthrough included)."""
    if not isinstance(body, dict):
        raise invalid("Invalid type for request body: expected a JSON object.", None, "invalid_type")
    model = body.get("model")
    if model is None:
        raise invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise invalid("Invalid type for 'model': expected a string.", "model", "invalid_type")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")


def decode_request(body: dict[str, Any]) -> ir.Request:
    """Client JSON → IR. Raises :class:`InvalidRequest` (with OpenAI's ``param`` and ``code``)."""
    check_request(body)
    _refuse_stateful(body)
    system, messages = decode_conversation(body)
    max_tokens = _max_output_tokens(body.get("max_output_tokens"))
    tools, choice = decode_tools(body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls"))
    effort, thinking = decode_reasoning(body.get("reasoning"), max_tokens)
    user = body.get("user") or body.get("safety_identifier")
    return ir.Request(
        model=body["model"],
        messages=messages,
        max_tokens=max_tokens,
        system=system or None,
        stream=bool(body.get("stream")),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        tools=tools,
        tool_choice=choice,
        thinking=thinking,
        effort=effort,
        output_format=decode_text_format(body.get("text")),
        metadata={"user_id": user} if isinstance(user, str) and user else None,
    )


def _refuse_stateful(body: dict[str, Any]) -> None:
    for name in ("previous_response_id", "conversation", "prompt"):
        if body.get(name):
            raise invalid(
                f"{name}: this model is served without stored responses; send the whole conversation in 'input'",
                name,
                "unsupported_parameter",
            )
    if body.get("background"):
        raise invalid("background: background responses need stored responses", "background", "unsupported_parameter")
    if body.get("context_management"):
        raise invalid(
            "context_management: server-side compaction is not available for this model; "
            "use POST /v1/responses/compact",
            "context_management",
            "unsupported_parameter",
        )
    top_logprobs = body.get("top_logprobs")
    if isinstance(top_logprobs, int) and not isinstance(top_logprobs, bool) and top_logprobs > 0:
        raise invalid(
            "top_logprobs: log probabilities are not available for this model", "top_logprobs", "unsupported_parameter"
        )
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise invalid("Invalid type for 'include': expected an array of strings.", "include", "invalid_type")
    if "message.output_text.logprobs" in (include or ()):
        raise invalid(
            "include: message.output_text.logprobs is not available for this model", "include", "unsupported_parameter"
        )


def _max_output_tokens(value: Any) -> int:
    if value is None:
        return DEFAULT_MAX_OUTPUT_TOKENS
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid("Invalid type for 'max_output_tokens': expected an integer.", "max_output_tokens", "invalid_type")
    if value < MIN_MAX_OUTPUT_TOKENS:
        raise invalid(
            "Invalid 'max_output_tokens': integer below minimum value. "
            f"Expected a value >= {MIN_MAX_OUTPUT_TOKENS}, but got {value} instead.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise invalid(f"Invalid type for '{name}': expected a number.", name, "invalid_type")
    if not low <= value <= high:
        raise invalid(f"Invalid '{name}': expected a value between {low:g} and {high:g}.", name, "invalid_value")
    return value


# --------------------------------------------------------------------------- tools


def decode_tools(raw: Any, choice: Any, parallel: Any) -> tuple[list[ir.Tool] | None, ir.ToolChoice | None]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` → IR tools and tool choice."""
    if raw is None:
        tools: list[ir.Tool] = []
    elif not isinstance(raw, list):
        raise invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    else:
        tools = [t for i, spec in enumerate(raw) for t in _tool(spec, f"tools[{i}]")]
    tool_choice = _tool_choice(choice, tools)
    if tool_choice is not None and tool_choice.type != "tool":
        allowed = _allowed_tools(choice)
        if allowed is not None:
            tools = [t for t in tools if t.name in allowed]
    if parallel is False and tools:
        tool_choice = tool_choice or ir.ToolChoice("auto")
        tool_choice.disable_parallel_tool_use = True
    if not tools:
        return None, None
    return tools, tool_choice


def _tool(spec: Any, where: str) -> list[ir.Tool]:
    if not isinstance(spec, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    kind = spec.get("type")
    if kind in ("function", "custom"):
        return [_function(spec, where, None)]
    if kind == "namespace":
        namespace = spec.get("name")
        if not isinstance(namespace, str) or not namespace:
            raise invalid(f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter")
        inner = spec.get("tools")
        if not isinstance(inner, list):
            raise invalid(
                f"Missing required parameter: '{where}.tools'.", f"{where}.tools", "missing_required_parameter"
            )
        return [_function(t, f"{where}.tools[{j}]", namespace) for j, t in enumerate(inner)]
    if isinstance(kind, str) and kind.startswith(tuple(OPTIONAL_HOSTED_TOOLS)):
        return []
    raise invalid(
        f"{where}: tools of type {kind!r} run on OpenAI's servers and cannot be used with this model",
        f"{where}.type",
        "unsupported_value",
    )


def _function(spec: Any, where: str, namespace: str | None) -> ir.Tool:
    if not isinstance(spec, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter")
    kind = spec.get("type")
    description = spec.get("description") if isinstance(spec.get("description"), str) else None
    flat = flat_name(namespace, name) if namespace else name
    if kind == "custom":
        return ir.Tool(flat, _custom_description(description, spec.get("format")), _CUSTOM_SCHEMA)
    if kind != "function":
        raise invalid(
            f"{where}: tools of type {kind!r} cannot be used in a namespace", f"{where}.type", "invalid_value"
        )
    parameters = spec.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise invalid(
            f"Invalid type for '{where}.parameters': expected an object.", f"{where}.parameters", "invalid_type"
        )
    return ir.Tool(flat, description, parameters or {"type": "object", "properties": {}})


def _custom_description(description: str | None, fmt: Any) -> str | None:
    """A custom tool takes free text; its grammar, if any, goes into the description."""
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") or "lark"
        rule = f"The input must follow this {syntax} grammar:\n{fmt['definition']}"
        return f"{description}\n\n{rule}" if description else rule
    return description


_TOOL_CHOICES: dict[str, Literal["auto", "any", "none"]] = {"auto": "auto", "required": "any", "none": "none"}


def _tool_choice(raw: Any, tools: list[ir.Tool]) -> ir.ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "required", "none"):
        return ir.ToolChoice(_TOOL_CHOICES[raw])
    if isinstance(raw, dict):
        kind = raw.get("type")
        if kind in ("function", "custom") and isinstance(raw.get("name"), str):
            namespace = raw.get("namespace")
            name = flat_name(namespace, raw["name"]) if isinstance(namespace, str) and namespace else raw["name"]
            if all(t.name != name for t in tools):
                raise invalid(f"tool_choice: no tool named {raw['name']!r} in 'tools'", "tool_choice", "invalid_value")
            return ir.ToolChoice("tool", name)
        if kind == "allowed_tools":
            return ir.ToolChoice("any" if raw.get("mode") == "required" else "auto")
        raise invalid(
            f"tool_choice: {kind!r} tools run on OpenAI's servers and cannot be used with this model",
            "tool_choice",
            "unsupported_value",
        )
    raise invalid("Invalid value for 'tool_choice'.", "tool_choice", "invalid_value")


def _allowed_tools(raw: Any) -> set[str] | None:
    if not isinstance(raw, dict) or raw.get("type") != "allowed_tools":
        return None
    names = set()
    for t in raw.get("tools") or ():
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            ns = t.get("namespace")
            names.add(flat_name(ns, t["name"]) if isinstance(ns, str) and ns else t["name"])
    return names


# --------------------------------------------------------------------------- text and reasoning


def decode_text_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` → IR ``output_format``; plain text is no format."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise invalid("Invalid type for 'text': expected an object.", "text", "invalid_type")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise invalid(
                "Missing required parameter: 'text.format.schema'.", "text.format.schema", "missing_required_parameter"
            )
        out: dict[str, Any] = {"type": "json_schema", "schema": schema}
        if isinstance(fmt.get("name"), str):
            out["name"] = fmt["name"]
        if isinstance(fmt.get("strict"), bool):
            out["strict"] = fmt["strict"]
        return out
    raise invalid(f"Invalid value for 'text.format.type': {kind!r}.", "text.format.type", "invalid_value")


def decode_reasoning(raw: Any, max_tokens: int) -> tuple[str | None, ir.Thinking | None]:
    """``reasoning.effort`` → (IR effort, thinking with a budget below ``max_tokens``)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise invalid("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type")
    summary = raw.get("summary", raw.get("generate_summary"))
    if summary is not None and summary not in _SUMMARIES:
        raise invalid(f"Invalid value for 'reasoning.summary': {summary!r}.", "reasoning.summary", "invalid_value")
    effort = raw.get("effort")
    if effort is None:
        return None, None
    if effort not in _EFFORTS:
        raise invalid(
            f"Invalid value: {effort!r}. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.",
            "reasoning.effort",
            "invalid_value",
        )
    if effort == "none":
        return None, ir.Thinking("disabled")
    return IR_EFFORTS[effort], _fitted(EFFORT_BUDGETS[effort], max_tokens)


def _fitted(budget: int, max_tokens: int) -> ir.Thinking | None:
    budget = min(budget, max_tokens - 1)
    return ir.Thinking("enabled", budget) if budget >= MIN_THINKING_BUDGET else None
