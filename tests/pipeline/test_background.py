"""Claude Code's background calls through the app, in process: warm-ups answered locally (in
the shape the official SDK reads, never reaching the upstream), the ``/model`` probe and
the session title sent on, the title to ``router.title_model`` when one is set. The bodies
are the ones real releases sent (``tests/fixtures/claude_code``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, gateway_config
from tests.pipeline.helpers import ANTHROPIC_HEADERS, configured_gateway, record_settlements
from tests.policy.tenancy_helpers import make_key

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
MESSAGES = "/v1/messages?beta=true"  # where Claude Code posts
BARE = {"model": "claude-haiku-4-5", "max_tokens": 32000, "messages": [{"role": "user", "content": "Warmup"}]}


def captured(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def config(fake: FakeUpstream, **router: Any) -> dict[str, Any]:
    data = gateway_config(fake)
    return {**data, "router": {**data["router"], **router}}


@asynccontextmanager
async def gateway(fake: FakeUpstream, **router: Any) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    fake.reset()
    async with configured_gateway(config(fake, **router)) as (gw, client):
        yield gw, client


def sdk(gw: Gateway, key: str = MASTER_KEY) -> anthropic.AsyncAnthropic:
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw.asgi()), base_url="http://gw")
    return anthropic.AsyncAnthropic(base_url="http://gw", api_key=key, http_client=client, max_retries=0)


def upstream_calls(fake: FakeUpstream) -> list[dict[str, Any]]:
    """Every generation the fake upstream was asked for, in any protocol."""
    return [r for r in fake.requests() if r["method"] == "POST" and not r["path"].startswith("/_fake")]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.decode().split("\n\n"):
        if frame.strip():
            lines = dict(line.split(": ", 1) for line in frame.splitlines())
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


# --------------------------------------------------------------------------- warm-ups answered here


async def test_a_streamed_warmup_is_answered_locally_for_the_sdk(fake: FakeUpstream, monkeypatch) -> None:
    async with gateway(fake) as (gw, _):
        settled = record_settlements(gw, monkeypatch)
        async with sdk(gw) as client, client.messages.stream(**BARE) as stream:  # type: ignore[arg-type]
            texts = [text async for text in stream.text_stream]
            message = await stream.get_final_message()
        assert texts == ["OK"]
        assert (message.model, message.stop_reason, message.role) == ("claude-haiku-4-5", "end_turn", "assistant")
        assert [block.type for block in message.content] == ["text"]
        assert (message.usage.input_tokens, message.usage.output_tokens) == (0, 0)
        assert upstream_calls(fake) == []
        ctx = settled.only
        assert (ctx.status, ctx.ended, ctx.attempts, ctx.cost, ctx.route) == (200, True, [], 0.0, None)


async def test_a_whole_warmup_is_answered_locally_for_the_sdk(fake: FakeUpstream) -> None:
    async with gateway(fake) as (gw, _), sdk(gw) as client:
        raw = await client.messages.with_raw_response.create(**{**BARE, "max_tokens": 1024})  # type: ignore[arg-type]
        message = await raw.parse()
        assert raw.headers["x-modelgate-local"] == "warmup" and raw.headers["request-id"].startswith("req_")
        text = message.content[0].text  # type: ignore[union-attr]
        assert (message.model, message.stop_reason, text) == ("claude-haiku-4-5", "end_turn", "OK")
        assert message.id.startswith("msg_") and message.type == "message"
    assert upstream_calls(fake) == []


@pytest.mark.parametrize("name", ["2.0.19/warmup_explore", "2.1.0/warmup_plan", "2.1.5/warmup_bash"])
async def test_captured_warmups_never_reach_the_upstream(fake: FakeUpstream, name: str, caplog) -> None:
    caplog.set_level("INFO", logger="modelgate.request")
    body = captured(name)
    async with gateway(fake) as (_, client):
        r = await client.post(MESSAGES, content=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.content)
    assert [kind for kind, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["model"] == orjson.loads(body)["model"]
    assert events[4][1]["delta"]["stop_reason"] == "end_turn"
    assert upstream_calls(fake) == []
    assert f"warm-up answered locally (request {r.headers['request-id']}" in caplog.text


async def test_a_warmup_still_needs_a_valid_key_and_an_allowed_model(fake: FakeUpstream) -> None:
    async with gateway(fake) as (gw, client):
        refused = await client.post(MESSAGES, json=BARE, headers={**ANTHROPIC_HEADERS, "x-api-key": "wrong"})
        assert refused.status_code == 401
        key = await make_key(gw, "sonnet-only", models=["claude-sonnet-4-6"])
        denied = await client.post(MESSAGES, json=BARE, headers={**ANTHROPIC_HEADERS, "x-api-key": key})
        assert denied.status_code == 403
    assert upstream_calls(fake) == []


async def test_the_ledger_records_a_warmup_at_no_cost(fake: FakeUpstream) -> None:
    async with gateway(fake) as (gw, client):
        key = await make_key(gw, "cc")
        r = await client.post(MESSAGES, json=BARE, headers={**ANTHROPIC_HEADERS, "x-api-key": key})
        assert r.status_code == 200
        await gw.tenancy.writer.flush()
        key_id = (await gw.tenancy.tenants.get_key("cc")).id
        spend = await gw.tenancy.ledger.spend(key_id=key_id, since=datetime(2000, 1, 1, tzinfo=UTC))
    assert (spend.requests, spend.cost_usd, spend.tokens) == (1, 0.0, 0)


# --------------------------------------------------------------------------- warm-ups sent on


async def test_with_router_warmup_upstream_a_warmup_goes_upstream(fake: FakeUpstream) -> None:
    async with gateway(fake, warmup="upstream") as (_, client):
        r = await client.post(MESSAGES, content=captured("2.1.0/warmup_explore"), headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and "x-modelgate-local" not in r.headers
    [call] = upstream_calls(fake)
    assert call["raw_body"].encode() == captured("2.1.0/warmup_explore")  # passthrough, untouched


async def test_a_key_with_intercept_warmup_false_sends_its_warmups_upstream(fake: FakeUpstream) -> None:
    async with gateway(fake) as (gw, client):
        upstream_key = await make_key(gw, "to-upstream", intercept_warmup=False)
        local_key = await make_key(gw, "local")
        for key in (local_key, upstream_key):
            r = await client.post(MESSAGES, json=BARE, headers={**ANTHROPIC_HEADERS, "x-api-key": key})
            assert r.status_code == 200
    [call] = upstream_calls(fake)
    assert call["body"]["messages"] == BARE["messages"]


# --------------------------------------------------------------------------- the probe and the title


async def test_the_model_probe_and_the_title_reach_the_upstream(fake: FakeUpstream) -> None:
    async with gateway(fake) as (_, client):
        probe = await client.post(MESSAGES, content=captured("2.1.330/model_probe"), headers=ANTHROPIC_HEADERS)
        title = await client.post(MESSAGES, content=captured("2.1.330/title"), headers=ANTHROPIC_HEADERS)
    assert probe.status_code == title.status_code == 200
    assert "x-modelgate-local" not in probe.headers
    probe_body = captured("2.1.330/model_probe")
    assert b'"stream"' not in probe_body  # sent whole: Anthropic providers force streaming upstream
    assert [call["raw_body"].encode() for call in upstream_calls(fake)] == [
        probe_body[: probe_body.rfind(b"}")] + b',"stream":true}',  # the one change forced streaming makes
        captured("2.1.330/title"),
    ]


async def test_the_title_goes_to_router_title_model(fake: FakeUpstream) -> None:
    async with gateway(fake, title_model="claude-haiku-4-5") as (_, client):
        title = await client.post(MESSAGES, content=captured("2.1.330/title"), headers=ANTHROPIC_HEADERS)
        turn = await client.post(MESSAGES, content=captured("2.1.330/first_turn"), headers=ANTHROPIC_HEADERS)
    assert title.status_code == turn.status_code == 200
    assert title.headers["x-modelgate-model"] == "claude-haiku-4-5"
    sent_title, sent_turn = upstream_calls(fake)
    asked = orjson.loads(captured("2.1.330/title"))
    assert sent_title["body"]["model"] == "claude-haiku-4-5" != asked["model"]
    # fitted to the cheaper model: its output limit, and no effort (Haiku 4.5 has none)
    assert sent_title["body"]["max_tokens"] < asked["max_tokens"]
    assert sent_title["body"]["output_config"] == {"format": asked["output_config"]["format"]}
    assert sent_title["body"]["messages"] == asked["messages"] and sent_title["body"]["system"] == asked["system"]
    assert sent_turn["raw_body"].encode() == captured("2.1.330/first_turn")  # an ordinary turn: untouched


async def test_the_title_model_may_be_another_upstream(fake: FakeUpstream) -> None:
    async with gateway(fake, title_model="qwen-local") as (_, client):
        r = await client.post(MESSAGES, content=captured("2.1.330/title"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200 and r.headers["x-modelgate-model"] == "qwen-local"
        assert [kind for kind, _ in sse_events(r.content)][-1] == "message_stop"
    [call] = upstream_calls(fake)
    assert (call["path"], call["body"]["model"]) == ("/v1/chat/completions", "qwen2.5:0.5b")


async def test_a_title_for_the_title_model_keeps_its_bytes(fake: FakeUpstream) -> None:
    body = captured("2.1.330/title")
    async with gateway(fake, title_model="claude-opus-5-5") as (_, client):
        assert (await client.post(MESSAGES, content=body, headers=ANTHROPIC_HEADERS)).status_code == 200
    [call] = upstream_calls(fake)
    assert call["raw_body"].encode() == body
