"""The request log through a gateway in process: one record per request with its client, its
session, its attempts, its tool calls and its timings; bodies only for a key that opted in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from modelgate.app import Gateway
from modelgate.observability.redact import REDACTED
from modelgate.store import RequestRecord
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import OPENAI_HEADERS, chat_body, gemini_body, responses_body
from tests.policy.tenancy_helpers import MODEL, anthropic_headers, make_key, messages, tenant_gateway

UA = "claude-cli/2.1.330 (external, cli)"
SESSION = "e93716e0-7e83-4c2b-a91f-b4031430fbed"
TOOLS = [{"name": "Bash", "input": {"command": "ls"}}, {"name": "Read", "input": {"path": "a"}}]


@pytest.fixture
async def gw(fake: Any) -> AsyncIterator[Gateway]:
    async with tenant_gateway(fake, {}, tenancy={"ledger_flush_seconds": 3600}) as gateway:
        yield gateway


def client(gw: Gateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gw.asgi(), client=("198.51.100.7", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30)


async def records(gw: Gateway) -> list[RequestRecord]:
    await gw.tenancy.writer.flush()
    assert gw.tenancy.requests is not None
    return list(reversed(await gw.tenancy.requests.list(limit=100)))


async def test_a_passthrough_stream_is_recorded_with_its_client_session_and_tool_calls(gw: Gateway, fake: Any) -> None:
    key = await make_key(gw, "rec")
    fake.script(tool_calls=TOOLS)
    headers = {**anthropic_headers(key), "user-agent": UA, "x-claude-code-session-id": SESSION}
    async with client(gw) as ac:
        r = await ac.post("/v1/messages", json=messages(stream=True), headers=headers)
    assert r.status_code == 200
    (rec,) = await records(gw)
    stored = await gw.tenancy.tenants.get_key("rec")
    assert rec.request_id.startswith("req_")
    assert (rec.key_id, rec.team_id, rec.door, rec.endpoint) == (stored.id, None, "anthropic", "messages")
    assert (rec.model, rec.served_model, rec.provider, rec.stream) == (MODEL, MODEL, "anth", True)
    assert (rec.status, rec.error_type, rec.stop_reason, rec.tool_calls) == (200, None, "tool_use", 2)
    assert (rec.user_agent, rec.client_ip, rec.session_id) == (UA, "198.51.100.7", SESSION)
    assert rec.input_tokens > 0 and rec.output_tokens > 0 and rec.cost_usd > 0
    assert rec.ttft_ms is not None and 0 <= rec.ttft_ms <= rec.latency_ms
    (attempt,) = rec.attempts
    assert attempt == {
        "provider": "anth",
        "model": MODEL,
        "route": MODEL,
        "key_id": attempt["key_id"],
        "passthrough": True,
        "status": 200,
        "latency_ms": attempt["latency_ms"],
        "error_type": None,
        "error_message": None,
        "upstream_request_id": attempt["upstream_request_id"],
    }
    assert attempt["key_id"].startswith("anth") and "sk-" not in attempt["key_id"]
    assert attempt["upstream_request_id"] == r.headers["request-id"]  # the passthrough forwards the upstream's
    assert rec.upstream_request_id == r.headers["request-id"] != rec.request_id  # its own column, for lookups
    assert (await gw.tenancy.requests.get(rec.request_id)).body is None  # type: ignore[union-attr]


async def test_sessions_from_the_body_and_the_headers_of_each_client(gw: Gateway, fake: Any) -> None:
    key = await make_key(gw, "sess")
    old_claude = {"user_id": "user_0123abcd_account__session_8671d9ab-5f5c-4a61-898d-80d5b4dde1b1"}
    new_claude = {"user_id": orjson.dumps({"device_id": "d", "account_uuid": "", "session_id": SESSION}).decode()}
    async with client(gw) as ac:
        for metadata in (old_claude, new_claude):
            await ac.post("/v1/messages", json=messages(metadata=metadata), headers=anthropic_headers(key))
        codex = {"authorization": f"Bearer {key}", "session_id": "codex-1"}
        await ac.post("/v1/responses", json=responses_body("gpt-5-mini"), headers=codex)
        ours = {**anthropic_headers(key), "x-modelgate-session-id": "x" * 500, "x-claude-code-session-id": "cc"}
        await ac.post("/v1/messages", json=messages(), headers=ours)
        await ac.post("/v1/chat/completions", json=chat_body("gpt-4o"), headers={"authorization": f"Bearer {key}"})
    assert [r.session_id for r in await records(gw)] == [
        "8671d9ab-5f5c-4a61-898d-80d5b4dde1b1",
        SESSION,
        "codex-1",
        "x" * 128,  # the generic header wins, cut to its bound
        None,
    ]


async def test_translated_answers_count_tool_calls_and_errors_are_recorded(gw: Gateway, fake: Any) -> None:
    async with client(gw) as ac:
        fake.script(tool_calls=TOOLS)
        r = await ac.post("/v1/chat/completions", json=chat_body(MODEL), headers=OPENAI_HEADERS)
        assert r.status_code == 200
        fake.script(tool_calls=TOOLS[:1])
        r = await ac.post("/v1/chat/completions", json=chat_body(MODEL, stream=True), headers=OPENAI_HEADERS)
        assert r.status_code == 200
        fake.script(tool_calls=TOOLS)
        gemini = "/v1beta/models/gemini-2.5-flash:generateContent"
        r = await ac.post(gemini, json=gemini_body(), headers={"x-goog-api-key": MASTER_KEY})
        assert r.status_code == 200
        fake.script(error={"status": 529, "type": "overloaded_error", "message": "the fake is overloaded"})
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(MASTER_KEY))
        assert r.status_code == 529
    chat, chat_stream, gemini, failed = await records(gw)
    assert (chat.key_id, chat.tool_calls, chat.stream, chat.attempts[0]["passthrough"]) == (None, 2, False, False)
    assert (chat_stream.tool_calls, chat_stream.stream, chat_stream.ttft_ms is not None) == (1, True, True)
    assert (gemini.tool_calls, gemini.attempts[0]["passthrough"]) == (2, True)
    assert (failed.status, failed.error_type, failed.failed) == (529, "overloaded", True)
    assert failed.error_message is not None and "overloaded" in failed.error_message
    assert failed.attempts[0]["status"] == 529 and failed.attempts[0]["error_type"] == "overloaded"


async def test_bodies_are_kept_for_a_key_that_opted_in_capped_and_redacted(gw: Gateway, fake: Any) -> None:
    gw.tenancy.records = gw.tenancy.records.model_copy(update={"body_max_bytes": 1000})
    quiet = await make_key(gw, "quiet")
    loud = await make_key(gw, "loud", log_bodies=True)
    secret = "sk-ant-api03-" + "s3cr3t" * 8
    body = messages(stream=True, system=f"the key is {secret} " + "pad " * 300)
    async with client(gw) as ac:
        for key in (quiet, loud):
            r = await ac.post("/v1/messages", json=body, headers=anthropic_headers(key))
            assert r.status_code == 200
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(loud))
    assert gw.tenancy.requests is not None
    quiet_rec, loud_rec, whole = await records(gw)
    assert (await gw.tenancy.requests.get(quiet_rec.request_id)).body is None  # type: ignore[union-attr]
    kept = (await gw.tenancy.requests.get(loud_rec.request_id)).body  # type: ignore[union-attr]
    assert kept is not None and kept.truncated
    assert secret not in kept.request and REDACTED in kept.request
    assert len(kept.request.encode()) <= 1000
    assert kept.response is not None and kept.response.startswith("event: message_start")
    whole_body = (await gw.tenancy.requests.get(whole.request_id)).body  # type: ignore[union-attr]
    assert whole_body is not None and not whole_body.truncated
    assert orjson.loads(whole_body.request) == messages()
    assert orjson.loads(whole_body.response or "")["type"] == "message"


async def test_refusals_before_authentication_are_not_recorded(gw: Gateway) -> None:
    async with client(gw) as ac:
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers("sk-mg-unknown"))
        assert r.status_code == 401
    assert await records(gw) == []


async def test_records_off_writes_none(fake: Any) -> None:
    async with tenant_gateway(fake, {}, records={"enabled": False}) as gw, client(gw) as ac:
        assert gw.tenancy.requests is None
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(MASTER_KEY))
        assert r.status_code == 200
        await gw.tenancy.writer.flush()
        assert (await gw.tenancy.ledger.summary())[0].requests == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat_body("gpt-4o")),
        ("/v1/chat/completions", chat_body("gpt-4o", stream=True)),
        ("/v1/responses", responses_body("gpt-5-mini")),
        ("/v1/responses", responses_body("gpt-5-mini", stream=True)),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini_body()),
        ("/v1/messages", messages()),
    ],
)
async def test_passthrough_answers_count_their_tool_calls(gw: Gateway, fake: Any, path: str, body: Any) -> None:
    fake.script(tool_calls=TOOLS)
    headers = {"authorization": f"Bearer {MASTER_KEY}", "x-goog-api-key": MASTER_KEY, **anthropic_headers(MASTER_KEY)}
    async with client(gw) as ac:
        r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    (rec,) = await records(gw)
    assert (rec.attempts[0]["passthrough"], rec.tool_calls) == (True, 2)


async def test_a_call_refused_after_authentication_is_recorded_with_its_error(gw: Gateway) -> None:
    async with client(gw) as ac:
        r = await ac.post("/v1/messages", content=b"{not json", headers=anthropic_headers(MASTER_KEY))
        assert r.status_code == 400
        too_big = b'{"model":"m","pad":"' + b"x" * 300_000 + b'"}'
        r = await ac.post("/v1/messages", content=too_big, headers=anthropic_headers(MASTER_KEY))
        assert r.status_code == 413
    bad, big = await records(gw)
    assert (bad.status, bad.error_type, bad.model, bad.attempts, bad.user_agent) == (
        400,
        "invalid_request",
        None,
        [],
        f"python-httpx/{httpx.__version__}",
    )
    assert (big.status, big.error_type, big.model) == (413, "request_too_large", None)
