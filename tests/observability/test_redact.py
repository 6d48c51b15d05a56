from __future__ import annotations

import orjson
import pytest

from modelgate.observability.redact import REDACTED, redact

ANTHROPIC = "sk-ant-api03-" + "a1B2" * 20
OPENAI = "sk-proj-" + "Zx9_" * 12
GOOGLE = "AIza" + "SyD-" * 9
VIRTUAL = "sk-mg-" + "Q7r-" * 10


@pytest.mark.parametrize("secret", [ANTHROPIC, OPENAI, "sk-" + "x" * 48, GOOGLE, VIRTUAL])
def test_keys_in_text_are_replaced(secret: str) -> None:
    assert redact(f"my key is {secret}, use it") == f"my key is {REDACTED}, use it"


def test_bearer_tokens_keep_the_word() -> None:
    assert redact("curl -H 'Authorization: Bearer abc.def-123_456'") == f"curl -H 'Authorization: Bearer {REDACTED}'"


def test_credential_fields_of_json_are_emptied_and_the_json_stays_valid() -> None:
    body = orjson.dumps(
        {
            "model": "sonnet",
            "api_key": "plain-secret",
            "nested": {"Authorization": 'token "quoted" value', "apiKey": "x", "password": "hunter2"},
            "x-goog-api-key": "g",
            "messages": [{"role": "user", "content": "what is an api_key?"}],
        }
    ).decode()
    out = orjson.loads(redact(body))
    assert out == {
        "model": "sonnet",
        "api_key": REDACTED,
        "nested": {"Authorization": REDACTED, "apiKey": REDACTED, "password": REDACTED},
        "x-goog-api-key": REDACTED,
        "messages": [{"role": "user", "content": "what is an api_key?"}],
    }


def test_ordinary_text_is_left_alone() -> None:
    text = 'data: {"type":"content_block_delta","delta":{"text":"task-list and sk- words, AIza short"}}\n\n'
    assert redact(text) == text
