"""Gemini schemas → JSON Schema (see ``protocols.gemini.schema``), and reading both field spellings."""

from __future__ import annotations

from modelgate.protocols.gemini.fields import get, snake, standard_b64
from modelgate.protocols.gemini.schema import to_json_schema


def test_openapi_subset() -> None:
    schema = {
        "type": "OBJECT",
        "nullable": True,
        "propertyOrdering": ["type"],
        "properties": {"type": {"type": "STRING", "enum": ["a"], "format": "enum"}},
        "any_of": [{"type": "INTEGER"}],
    }
    assert to_json_schema(schema, openapi=True) == {
        "type": ["object", "null"],
        "properties": {"type": {"type": "string", "enum": ["a"], "format": "enum"}},
        "anyOf": [{"type": "integer"}],
    }


def test_json_schema_keeps_everything_but_type_names() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "OBJECT",
        "properties": {"x": {"type": ["STRING", "NULL"]}, "nullable": {"type": "BOOLEAN"}},
        "additionalProperties": False,
        "$defs": {"d": {"type": "ARRAY", "items": {"type": "NUMBER"}}},
        "propertyOrdering": ["x"],
    }
    assert to_json_schema(schema, openapi=False) == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"x": {"type": ["string", "null"]}, "nullable": {"type": "boolean"}},
        "additionalProperties": False,
        "$defs": {"d": {"type": "array", "items": {"type": "number"}}},
        "propertyOrdering": ["x"],
    }


def test_nullable_any_of() -> None:
    assert to_json_schema({"nullable": True, "anyOf": [{"type": "STRING"}]}, openapi=True) == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }


def test_field_spellings() -> None:
    assert snake("inlineData") == "inline_data" and snake("responseJsonSchema") == "response_json_schema"
    assert get({"inline_data": 1}, "inlineData") == 1 and get({"inlineData": 2, "inline_data": 1}, "inlineData") == 2
    assert get({}, "x", "d") == "d"


def test_standard_base64() -> None:
    assert standard_b64("a-b_") == "a+b/"
    assert standard_b64("YWI") == "YWI="
    assert standard_b64("YWJj") == "YWJj"
