"""Gemini schemas → JSON Schema, for upstreams that speak JSON Schema (Anthropic, OpenAI).

Gemini takes schemas two ways. ``parameters`` / ``responseSchema`` are Google's ``Schema``
message, an OpenAPI subset: upper-case type names (``"OBJECT"``, ``"STRING"``),
``nullable``, ``propertyOrdering``, and field names in camelCase *or* proto snake_case (the
google-genai SDK sends ``any_of``, ``min_items``, ``property_ordering``).
``parametersJsonSchema`` / ``responseJsonSchema`` take JSON Schema as it is, though
clients (Gemini CLI among them) still write upper-case type names there. Anthropic and
OpenAI reject ``"OBJECT"``, so both are walked:

- a known Gemini type name is lower-cased wherever a schema has ``type``;
- ``Schema`` messages only: snake_case field names become the JSON Schema keywords
  (``min_items`` → ``minItems``, ``any_of`` → ``anyOf``, …); ``nullable: true`` becomes a
  ``"null"`` member of ``type``; ``example`` becomes ``examples: [example]``;
  ``propertyOrdering`` is an output-ordering hint with no JSON Schema keyword: dropped;
- every other keyword is kept as written.

Only positions that hold schemas are walked, so a *property named* ``type`` is never
mistaken for the keyword.
"""

from __future__ import annotations

from typing import Any

TYPE_NAMES = {
    "STRING": "string",
    "NUMBER": "number",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "ARRAY": "array",
    "OBJECT": "object",
    "NULL": "null",
}
#: Google ``Schema`` fields spelled differently in JSON Schema (proto name → keyword).
_PROTO_NAMES = {
    "any_of": "anyOf",
    "max_items": "maxItems",
    "min_items": "minItems",
    "max_length": "maxLength",
    "min_length": "minLength",
    "max_properties": "maxProperties",
    "min_properties": "minProperties",
    "property_ordering": "propertyOrdering",
}
#: Keywords whose value is one schema.
_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames", "unevaluatedItems")
#: Keywords whose value is a list of schemas.
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
#: Keywords whose value maps names to schemas.
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def to_json_schema(schema: Any, *, openapi: bool) -> Any:
    """A copy of ``schema`` that JSON Schema upstreams accept (see the module docstring)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if openapi:
            key = _PROTO_NAMES.get(key, key)
            if key in ("propertyOrdering", "nullable"):
                continue
            if key == "example":
                out["examples"] = [value]
                continue
        if key == "type":
            out[key] = _type(value)
        elif key in _ONE and isinstance(value, dict):
            out[key] = to_json_schema(value, openapi=openapi)
        elif (key in _MANY or key == "items") and isinstance(value, list):
            out[key] = [to_json_schema(v, openapi=openapi) for v in value]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: to_json_schema(v, openapi=openapi) for name, v in value.items()}
        else:
            out[key] = value
    if openapi and schema.get("nullable") is True:
        current = out.get("type")
        if isinstance(current, str) and current != "null":
            out["type"] = [current, "null"]
        elif isinstance(current, list) and "null" not in current:
            out["type"] = [*current, "null"]
        elif current is None and "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


def _type(value: Any) -> Any:
    if isinstance(value, str):
        return TYPE_NAMES.get(value, value)
    if isinstance(value, list):
        return [TYPE_NAMES.get(v, v) if isinstance(v, str) else v for v in value]
    return value
