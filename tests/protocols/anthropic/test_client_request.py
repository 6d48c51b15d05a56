"""A client's Messages request → IR: the cheap checks, field names in errors, system turns."""

from __future__ import annotations

import pytest

from modelgate.errors import InvalidRequest
from modelgate.protocols import anthropic as codec


def test_system_messages_inside_messages_fold_into_system() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "system": "base",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "be brief"},
            {"role": "assistant", "content": "ok"},
        ],
    }
    req = codec.decode_request(body)
    assert [b.text for b in req.system] == ["base", "be brief"]
    assert [m.role for m in req.messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Request body must be a JSON object"),
        ({"max_tokens": 1, "messages": []}, "model: Field required"),
        ({"model": "m", "messages": []}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": "10", "messages": []}, "max_tokens: Input should be a valid integer"),
        ({"model": "m", "max_tokens": 0, "messages": []}, "max_tokens: Input should be greater than or equal to 1"),
        ({"model": "m", "max_tokens": 1}, "messages: Field required"),
        ({"model": "m", "max_tokens": 1, "messages": {}}, "messages: Input should be a valid list"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
    ],
)
def test_invalid_requests_name_the_field(body, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        codec.decode_request(body)
    assert message in info.value.message
