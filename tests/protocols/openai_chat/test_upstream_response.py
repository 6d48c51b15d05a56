"""An upstream's ``chat.completion`` (and its usage) → IR: golden fixtures in ``fixtures/responses``."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate import ir
from modelgate.errors import GatewayError
from modelgate.protocols import openai_chat as codec

from .helpers import as_json, check, load, names


@pytest.mark.parametrize("name", names("responses"))
def test_decode_response_golden(name: str) -> None:
    case = load("responses", name)
    try:
        actual = as_json(codec.decode_response(case["body"]))
    except GatewayError as exc:
        actual = {"raises": as_json(exc)}
    check("responses", name, actual, key="expected")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ("", {}),
        (None, {}),
        ("  ", {}),
        ({"already": "parsed"}, {"already": "parsed"}),
        ('{"city": "Par', {"_raw": '{"city": "Par'}),
        ("[1, 2]", {"_raw": "[1, 2]"}),
    ],
)
def test_parse_arguments(raw: Any, expected: dict[str, Any]) -> None:
    assert codec.parse_arguments(raw) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, ir.Usage()),
        ({"prompt_tokens": None, "completion_tokens": None, "prompt_tokens_details": None}, ir.Usage()),
        ({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}, ir.Usage(10, 3)),
        (
            {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
            ir.Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, reasoning_tokens=256),
        ),
        (
            {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cache_write_tokens": 60}},
            ir.Usage(input_tokens=40, output_tokens=1, cache_write_tokens=60),
        ),
        (
            {
                "prompt_tokens": 50,
                "completion_tokens": 5,
                "prompt_cache_hit_tokens": 32,
                "prompt_cache_miss_tokens": 18,
            },
            ir.Usage(input_tokens=18, output_tokens=5, cache_read_tokens=32),
        ),
    ],
)
def test_decode_usage(usage: Any, expected: ir.Usage) -> None:
    assert codec.decode_usage(usage) == expected
