"""200 concurrent streaming requests against an upstream that fails at random — before its
answer, in the middle of it, by breaking the connection, by stopping short, by being slow —
each end either as its protocol promises or with a proper error, and the gateway keeps
nothing behind: no upstream connection held, no task left running."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import orjson

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    OPENAI_HEADERS,
    anthropic_body,
    chat_body,
    configured_gateway,
    provider_config,
)

#: The faults, as directives in the prompt (so each request carries its own, retries included).
FAULTS = [
    "",
    "[[fake:error 529]]",
    "[[fake:error 500 after=3]]",
    "[[fake:break 4]]",
    "[[fake:end 3]]",
    "[[fake:delay 0.05]]",
    "[[fake:error 429 retry_after=0]]",
    "[[fake:body <html>down</html>]]",
]


def check_anthropic(r: httpx.Response) -> str:
    """``ok``, ``error event`` or ``error status``; fails on anything else."""
    if r.status_code != 200:
        assert r.json()["type"] == "error" and r.json()["error"]["type"], r.text
        return "error status"
    frames = [f for f in r.content.split(b"\n\n") if f]
    assert frames[0].startswith(b"event: message_start\n"), r.content[:200]
    last = frames[-1]
    if last.startswith(b"event: message_stop\n"):
        return "ok"
    assert last.startswith(b"event: error\n"), last
    assert orjson.loads(last.split(b"data: ", 1)[1])["type"] == "error"
    return "error event"


def check_chat(r: httpx.Response) -> str:
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text
        return "error status"
    frames = [f for f in r.content.split(b"\n\n") if f]
    if frames[-1] == b"data: [DONE]":
        return "ok"
    assert b'"error"' in frames[-1], frames[-1]
    return "error event"


async def one(client: httpx.AsyncClient, i: int, fault: str) -> tuple[str, str]:
    prompt = f"request {i} [[fake:words 12]] {fault}"
    if i % 2:
        body: dict[str, Any] = anthropic_body("claude-sonnet-4-6" if i % 4 == 1 else "qwen-local", prompt, stream=True)
        r = await client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        return fault, check_anthropic(r)
    body = chat_body("qwen-local" if i % 4 == 0 else "claude-sonnet-4-6", prompt, stream=True)
    r = await client.post("/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    return fault, check_chat(r)


def held_connections(gw: Gateway) -> int:
    session = gw.client._session  # the pool is the point here
    assert session is not None
    return len(session.connector._acquired)  # type: ignore[union-attr]


async def test_two_hundred_streams_under_random_faults(fake: FakeUpstream) -> None:
    data = {
        "providers": [
            provider_config("anth", "anthropic", fake.anthropic_base_url, first_byte_timeout=5),
            provider_config("local", "openai-compatible", fake.openai_base_url),
        ],
        "models": [
            {"name": "claude-sonnet-4-6", "provider": "anth"},
            {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b"},
        ],
        "router": {"attempts": 2, "backoff": 0.01, "backoff_max": 0.02},
    }
    rng = random.Random(8)
    async with configured_gateway(data) as (gw, client):
        before = len(asyncio.all_tasks())
        outcomes = await asyncio.gather(*(one(client, i, rng.choice(FAULTS)) for i in range(200)))
        await asyncio.sleep(0.05)  # let closed connections go back to the pool
        await gw.tenancy.settle_pending()  # the one task that settles leases ends with its queue
        assert held_connections(gw) == 0
        assert len(asyncio.all_tasks()) == before
    seen: dict[str, set[str]] = {}
    for fault, outcome in outcomes:
        seen.setdefault(fault, set()).add(outcome)
    assert seen[""] == {"ok"} and seen["[[fake:delay 0.05]]"] == {"ok"}
    assert seen["[[fake:error 529]]"] == {"error status"}  # the same on every attempt
    assert seen["[[fake:error 500 after=3]]"] == {"error event"}  # after the first byte: never retried
    assert seen["[[fake:end 3]]"] == {"error event"}
    assert seen["[[fake:break 4]]"] == {"error event"}
    assert seen["[[fake:error 429 retry_after=0]]"] == {"error status"}
    assert seen["[[fake:body <html>down</html>]]"] == {"error status"}
