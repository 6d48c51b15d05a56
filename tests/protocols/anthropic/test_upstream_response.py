"""An Anthropic ``message`` → IR, and back as a client gets it."""

from __future__ import annotations

from modelgate.protocols import anthropic as codec


def test_response_round_trip() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 4,
            "output_tokens": 5,
        },
    }
    assert codec.encode_response(codec.decode_response(body)) == body
