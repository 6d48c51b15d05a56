"""A client's tools, tool choice and response format → IR.

- ``tools`` of type ``function`` (and the legacy ``functions``) → IR tools: ``parameters`` is
  the input schema (an empty object schema when omitted, as OpenAI reads it), ``strict`` rides
  in the tool's extras. ``custom`` tools (free-text input, grammars) have no equivalent: refused.
- ``tool_choice``: ``none`` → none, ``auto`` → auto, ``required`` → any, a named function → that
  tool; ``allowed_tools`` narrows the tools to the allowed ones with mode auto or required (the
  model sees only what it may call, which is what the restriction means). The legacy
  ``function_call`` (``none``/``auto``/``{"name"}``) maps the same way. A choice that forces a
  tool when there are no tools is refused, as OpenAI does; ``none``/``auto`` alone are ignored.
- ``parallel_tool_calls: false`` → ``disable_parallel_tool_use``.
- ``response_format``: ``text`` → nothing, ``json_object`` → ``{"type": "json_object"}``,
  ``json_schema`` → ``{"type": "json_schema", "schema", "name", "strict"?}``; its
  ``description`` (a hint to the model) has no IR slot and is dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from modelgate import ir
from modelgate.protocols.openai_chat.client_messages import missing, wrong_type
from modelgate.protocols.openai_chat.errors import invalid


def decode_tools(body: dict[str, Any]) -> tuple[list[ir.Tool] | None, ir.ToolChoice | None]:
    tools: list[ir.Tool] = []
    for field in ("tools", "functions"):
        raw = body.get(field)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise wrong_type(field, "an array", raw)
        for i, t in enumerate(raw):
            tools.append(_tool(t, f"{field}[{i}]", legacy=field == "functions"))
    choice = _choice(body)
    if isinstance(choice, tuple):  # allowed_tools: (mode, names)
        mode, names = choice
        unknown = sorted(names - {t.name for t in tools})
        if unknown:
            message = f"tool_choice.allowed_tools.tools: {unknown[0]!r} is not one of the tools"
            raise invalid(message, "tool_choice", "invalid_value")
        tools = [t for t in tools if t.name in names]
        choice = ir.ToolChoice(mode)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise wrong_type("parallel_tool_calls", "a boolean", parallel)
    if not tools:
        if choice is not None and choice.type in ("any", "tool"):
            raise invalid(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        return None, None
    if parallel is False:
        choice = choice or ir.ToolChoice("auto")
        choice.disable_parallel_tool_use = True
    return tools, choice


def _tool(t: Any, where: str, *, legacy: bool) -> ir.Tool:
    if not isinstance(t, dict):
        raise wrong_type(where, "an object", t)
    if legacy:
        fn = t
    else:
        kind = t.get("type")
        if kind == "custom":
            raise invalid(f"{where}: custom tools are not supported for this model; use function tools", where)
        if kind != "function":
            raise invalid(
                f"Invalid value: {kind!r}. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
                "invalid_value",
            )
        spec = t.get("function")
        where = f"{where}.function"
        if not isinstance(spec, dict):
            raise missing(where) if spec is None else wrong_type(where, "an object", spec)
        fn = spec
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"{where}.name")
    description = fn.get("description")
    if description is not None and not isinstance(description, str):
        raise wrong_type(f"{where}.description", "a string", description)
    schema = fn.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise wrong_type(f"{where}.parameters", "an object", schema)
    extras = {"strict": fn["strict"]} if fn.get("strict") is not None else {}
    if schema is None:
        schema = {"type": "object", "properties": {}}  # what OpenAI reads an omitted schema as
    return ir.Tool(name, description, schema, extras=extras)


#: ``allowed_tools``: the mode the allowed tools are offered with, and their names.
_Allowed = tuple[Literal["auto", "any"], set[str]]


def _choice(body: dict[str, Any]) -> ir.ToolChoice | _Allowed | None:
    field = "tool_choice" if body.get("tool_choice") is not None else "function_call"
    raw = body.get(field)
    if raw is None:
        return None
    if raw in ("none", "auto"):
        return ir.ToolChoice(raw)
    if raw == "required" and field == "tool_choice":
        return ir.ToolChoice("any")
    if not isinstance(raw, dict):
        values = "'none', 'auto', 'required'" if field == "tool_choice" else "'none', 'auto'"
        raise invalid(f"Invalid value: {raw!r}. Supported values are: {values} or an object.", field, "invalid_value")
    if field == "function_call":
        return ir.ToolChoice("tool", _name(raw, field))
    kind = raw.get("type")
    if kind == "function":
        fn = raw.get("function")
        if not isinstance(fn, dict):
            raise missing("tool_choice.function")
        return ir.ToolChoice("tool", _name(fn, "tool_choice.function"))
    if kind == "allowed_tools":
        return _allowed(raw.get("allowed_tools"))
    if kind == "custom":
        raise invalid("tool_choice: custom tools are not supported for this model", "tool_choice")
    raise invalid(
        f"Invalid value: {kind!r}. Supported values are: 'function', 'allowed_tools' and 'custom'.",
        "tool_choice.type",
        "invalid_value",
    )


def _allowed(spec: Any) -> _Allowed:
    where = "tool_choice.allowed_tools"
    if not isinstance(spec, dict):
        raise missing(where) if spec is None else wrong_type(where, "an object", spec)
    mode = spec.get("mode")
    if mode not in ("auto", "required"):
        raise invalid(
            f"Invalid value: {mode!r}. Supported values are: 'auto' and 'required'.", f"{where}.mode", "invalid_value"
        )
    names: set[str] = set()
    for k, t in enumerate(spec.get("tools") or ()):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict):
            raise missing(f"{where}.tools[{k}].function")
        names.add(_name(fn, f"{where}.tools[{k}].function"))
    return ("any" if mode == "required" else "auto"), names


def _name(fn: dict[str, Any], where: str) -> str:
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"{where}.name")
    return name


def decode_response_format(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise wrong_type("response_format", "an object", raw)
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise invalid(
            f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise missing("response_format.json_schema")
    name = _name(spec, "response_format.json_schema")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        where = "response_format.json_schema.schema"
        raise missing(where) if schema is None else wrong_type(where, "an object", schema)
    out: dict[str, Any] = {"type": "json_schema", "schema": schema, "name": name}
    if spec.get("strict") is not None:
        out["strict"] = spec["strict"]
    return out
