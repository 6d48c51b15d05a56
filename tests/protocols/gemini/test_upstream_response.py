"""A Gemini upstream's ``GenerateContentResponse`` → IR: golden fixtures (``fixtures/upstream_responses``,
modeled on Google's documented answers and recorded ones)."""

from __future__ import annotations

import pytest

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini.upstream_response import decode_usage, stop_reason

from .helpers import as_json, check, load, names


@pytest.mark.parametrize("name", names("upstream_responses"))
def test_upstream_response_golden(name: str) -> None:
    resp = codec.decode_response(load("upstream_responses", name)["response"])
    check("upstream_responses", name, as_json(resp), key="expected")


def test_calls_without_ids_get_stable_made_up_ids() -> None:
    resp = codec.decode_response(load("upstream_responses", "parallel_function_calls")["response"])
    ids = [b.id for b in resp.content if isinstance(b, ir.ToolUseBlock)]
    assert ids == ["gmcall_qpc2afWVFJK4vr0Pq6WiyAU_0", "gmcall_qpc2afWVFJK4vr0Pq6WiyAU_1"]
    assert resp.stop_reason == "tool_use"


def test_inline_data_cannot_be_translated() -> None:
    body = {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "x"}}]}}]}
    with pytest.raises(UpstreamUnavailable):
        codec.decode_response(body)


@pytest.mark.parametrize(
    ("reason", "tool_use", "stop"),
    [
        ("STOP", False, "end_turn"),
        ("STOP", True, "tool_use"),
        ("MAX_TOKENS", True, "max_tokens"),
        ("SAFETY", False, "refusal"),
        ("PROHIBITED_CONTENT", False, "refusal"),
        ("MALFORMED_FUNCTION_CALL", False, "end_turn"),
        (None, False, "end_turn"),
    ],
)
def test_stop_reasons(reason: str | None, tool_use: bool, stop: str) -> None:
    assert stop_reason(reason, tool_use=tool_use) == stop


def test_usage() -> None:
    raw = {"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 7, "thoughtsTokenCount": 3}
    assert decode_usage(raw) == ir.Usage(40, 10, cache_read_tokens=60, reasoning_tokens=3)
    assert decode_usage(None) == ir.Usage()
    assert decode_usage({"promptTokenCount": "x"}) == ir.Usage()
