"""The translated path cleans a request of what its upstream rejects (merged same-role turns,
no ``cache_control``, no empty text) and logs it with the request id; passthrough bytes stay."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest

from tests.pipeline.helpers import ANTHROPIC_HEADERS, REQUEST_LOGGER, streamed

MESSAGES = "/v1/messages"
CHAT = "/v1/chat/completions"


def messy_body(model: str) -> dict[str, Any]:
    """Two user turns in a row, a ``cache_control`` marker and an empty text block."""
    return {
        "model": model,
        "max_tokens": 16,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "first"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": ""},
                    {"type": "text", "text": "second", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
    }


async def test_an_openai_compatible_upstream_gets_a_clean_request(
    ac: httpx.AsyncClient, fake: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger=REQUEST_LOGGER):
        r = await ac.post(MESSAGES, json=messy_body("qwen-local"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200, r.text
    sent = fake.last_request(CHAT)
    assert "cache_control" not in sent["raw_body"]
    user = [m for m in sent["body"]["messages"] if m["role"] == "user"]
    assert len(user) == 1
    content = user[0]["content"]
    texts = [content] if isinstance(content, str) else [p["text"] for p in content]
    assert all(t for t in texts) and "first" in "".join(texts) and "second" in "".join(texts)
    request_id = r.headers["request-id"]
    lines = [rec.getMessage() for rec in caplog.records if rec.name == REQUEST_LOGGER and rec.levelno == logging.DEBUG]
    notes = [line for line in lines if request_id in line]
    assert any("merged 1 message" in n for n in notes), lines
    assert any("removed 2 cache_control" in n for n in notes), lines
    assert any("dropped 1 empty text" in n for n in notes), lines


async def test_an_anthropic_passthrough_keeps_the_bytes(ac: httpx.AsyncClient, fake: Any) -> None:
    raw = orjson.dumps(messy_body("claude-sonnet-4-6"))
    r = await ac.post(MESSAGES, content=raw, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200, r.text
    assert fake.last_request(MESSAGES)["raw_body"] == streamed(raw)  # only forced to stream
