"""Anthropic's error envelope: gateway errors rendered, foreign context overflows reworded."""

from __future__ import annotations

import pytest

from modelgate.errors import ErrorKind, GatewayError, UpstreamHTTPError
from modelgate.protocols import anthropic as codec


def test_gateway_errors_render_in_the_anthropic_envelope() -> None:
    err = GatewayError("slow down", status=429, kind=ErrorKind.RATE_LIMIT, retry_after=3)
    assert codec.error_body(err, "req_1") == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
        "request_id": "req_1",
    }


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            "prompt is too long: 5000 tokens > 4096 maximum",
        ),
        (
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130415 tokens.",
            "prompt is too long: 130415 tokens > 128000 maximum",
        ),
        ("the request exceeds the available context size, try increasing it", "prompt is too long: the request"),
        ("temperature must be between 0 and 2", "temperature must be between 0 and 2"),
    ],
)
def test_foreign_context_overflow_is_worded_like_anthropic(upstream: str, expected: str) -> None:
    err = UpstreamHTTPError(upstream, status=400, kind=ErrorKind.INVALID_REQUEST, protocol="openai_chat")
    assert codec.error_body(err)["error"]["message"].startswith(expected)
