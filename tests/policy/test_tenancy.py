"""Virtual keys through the whole chain, in process: each refusal in each protocol's envelope,
with its status, code and headers; budgets charged at the real cost; ``/v1/usage``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event

from modelgate.store import BodyRecord, Budget, RequestRecord
from tests.conftest import MASTER_KEY
from tests.policy.tenancy_helpers import MODEL, anthropic_headers, client, make_key, messages, tenant_gateway


async def test_a_virtual_key_works_like_the_master_key(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "alice")
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 200 and r.json()["type"] == "message"
        r = await ac.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )
        assert r.status_code == 200 and r.json()["object"] == "chat.completion"
        r = await ac.post(
            f"/v1beta/models/gemini-2.5-flash:generateContent?key={key}",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
        )
        assert r.status_code == 200 and "candidates" in r.json()


async def test_unknown_revoked_and_expired_keys_are_refused_in_each_protocols_words(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        revoked = await make_key(gw, "gone")
        record = await gw.tenancy.tenants.update_key("gone", revoked_at=datetime.now(UTC))
        gw.tenancy.cache.put_key(record)
        expired = await make_key(gw, "old", expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        unknown = "sk-mg-" + "x" * 43
        for key in (unknown, revoked, expired):
            r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
            assert r.status_code == 401
            assert r.json()["error"]["type"] == "authentication_error"
            r = await ac.post(
                "/v1/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {key}"},
            )
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
            r = await ac.post(
                "/v1beta/models/gemini-2.5-flash:generateContent",
                json={"contents": [{"parts": [{"text": "hi"}]}]},
                headers={"x-goog-api-key": key},
            )
            assert r.status_code == 400
            assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_requests_per_minute_in_every_envelope(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "rpm", rpm=2)
        for _ in range(2):
            assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 429
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert body["error"]["code"] == "rate_limit_rpm" and "requests per minute" in body["error"]["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["anthropic-ratelimit-requests-limit"] == "2"
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert r.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        r = await ac.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )
        assert r.status_code == 429
        assert r.json()["error"]["type"] == "rate_limit_error"
        assert r.json()["error"]["code"] == "rate_limit_rpm"
        assert r.headers["x-ratelimit-limit-requests"] == "2" and r.headers["x-ratelimit-remaining-requests"] == "0"
        assert r.headers["x-ratelimit-reset-requests"].endswith("s")
        r = await ac.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json={"contents": [{"parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": key},
        )
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        reasons = [d.get("reason") for d in error["details"]]
        assert "rate_limit_rpm" in reasons


async def test_count_tokens_does_not_count_against_request_limits(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "counter", rpm=1)
        for _ in range(3):
            r = await ac.post(
                "/v1/messages/count_tokens",
                json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                headers=anthropic_headers(key),
            )
            assert r.status_code == 200
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 429


async def test_a_lifetime_budget_is_charged_the_real_cost_and_then_refuses_without_retry_after(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "spender", budgets=[Budget("total", usd=0.000001)])
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 200  # a budget with some remainder admits; the real cost then exceeds it
        await gw.tenancy.settle_pending()
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "budget_exceeded" and "lifetime budget" in error["message"]
        assert "retry-after" not in r.headers


async def test_a_rolling_budget_refuses_with_the_time_it_frees(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "weekly", budgets=[Budget("7d", usd=0.000001)])
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200
        await gw.tenancy.settle_pending()
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_7d"
        assert 7 * 86400 - 120 <= int(r.headers["retry-after"]) <= 7 * 86400 + 1
        usage = (await ac.get("/v1/usage", headers=anthropic_headers(key))).json()
        [window] = usage["windows"]
        assert window["window"] == "7d" and window["limit_usd"] == 0.000001
        assert window["used_usd"] > 0.000001 and window["used_percent"] == 100.0
        assert window["next_free_at"].endswith("Z")


async def test_max_tokens_caps_of_the_key_and_of_the_model(fake, backend) -> None:
    async with tenant_gateway(fake, backend, model_claude_sonnet_4_6={"max_tokens_cap": 1000}) as gw, client(gw) as ac:
        key = await make_key(gw, "capped", max_tokens=100)
        r = await ac.post("/v1/messages", json=messages(max_tokens=101), headers=anthropic_headers(key))
        assert r.status_code == 400
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert r.json()["error"]["code"] == "max_tokens_too_large"
        assert (
            await ac.post("/v1/messages", json=messages(max_tokens=100), headers=anthropic_headers(key))
        ).status_code == 200
        master = {"x-api-key": "mg-test-master-key", "anthropic-version": "2023-06-01"}
        r = await ac.post("/v1/messages", json=messages(max_tokens=1001), headers=master)
        assert r.status_code == 400 and r.json()["error"]["code"] == "max_tokens_too_large"
        r = await ac.post(
            "/v1/chat/completions",
            json={"model": MODEL, "max_completion_tokens": 500, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "max_tokens_too_large"


async def test_models_a_key_may_not_use_and_a_quarantined_key_are_forbidden(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "haiku-only", models=["claude-haiku-*"])
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 403
        assert r.json()["error"] == {
            "type": "permission_error",
            "message": f"API key 'haiku-only' may not use model {MODEL!r}",
            "code": "model_not_allowed",
        }
        ok = await ac.post("/v1/messages", json=messages(model="claude-haiku-4-5"), headers=anthropic_headers(key))
        assert ok.status_code == 200
        record = await gw.tenancy.tenants.update_key(
            "haiku-only", quarantined_at=datetime.now(UTC), quarantine_reason="test"
        )
        gw.tenancy.cache.put_key(record)
        r = await ac.post("/v1/messages", json=messages(model="claude-haiku-4-5"), headers=anthropic_headers(key))
        assert r.status_code == 403 and r.json()["error"]["code"] == "key_quarantined"


async def test_client_ip_rules_and_quarantine(fake, backend) -> None:
    tenancy = {"trusted_proxies": ["127.0.0.1"], "quarantine_ips": 3}
    async with tenant_gateway(fake, backend, tenancy=tenancy) as gw:
        transport = httpx.ASGITransport(app=gw.asgi(), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as ac:
            allow = await make_key(gw, "office", ip_allow=["10.0.0.0/8"])

            def via(key: str, ip: str) -> dict[str, str]:
                return {**anthropic_headers(key), "x-forwarded-for": f"6.6.6.6, {ip}"}

            assert (await ac.post("/v1/messages", json=messages(), headers=via(allow, "10.1.2.3"))).status_code == 200
            r = await ac.post("/v1/messages", json=messages(), headers=via(allow, "192.168.0.1"))
            assert r.status_code == 403 and r.json()["error"]["code"] == "ip_not_allowed"

            two = await make_key(gw, "two-ips", ip_limit=2, ip_window="1h")
            for ip in ("1.1.1.1", "2.2.2.2", "1.1.1.1"):
                assert (await ac.post("/v1/messages", json=messages(), headers=via(two, ip))).status_code == 200
            r = await ac.post("/v1/messages", json=messages(), headers=via(two, "3.3.3.3"))
            assert r.status_code == 403 and r.json()["error"]["code"] == "key_quarantined"  # the third address
            stored = await gw.tenancy.tenants.get_key("two-ips")
            assert stored.quarantined_at is not None and "3 addresses" in (stored.quarantine_reason or "")
            # Released by an admin: the addresses that caused the quarantine count no more.
            released = await gw.tenancy.tenants.update_key("two-ips", quarantined_at=None, quarantine_reason=None)
            gw.tenancy.cache.put_key(released)
            assert (await ac.post("/v1/messages", json=messages(), headers=via(two, "1.1.1.1"))).status_code == 200


async def test_ip_limit_without_quarantine(fake, backend) -> None:
    async with tenant_gateway(fake, backend, tenancy={"trusted_proxies": ["127.0.0.1"]}) as gw:
        transport = httpx.ASGITransport(app=gw.asgi(), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as ac:
            key = await make_key(gw, "one-ip", ip_limit=1)
            headers = {**anthropic_headers(key), "x-forwarded-for": "1.1.1.1"}
            assert (await ac.post("/v1/messages", json=messages(), headers=headers)).status_code == 200
            headers["x-forwarded-for"] = "2.2.2.2"
            r = await ac.post("/v1/messages", json=messages(), headers=headers)
            assert r.status_code == 403 and r.json()["error"]["code"] == "ip_limit_reached"


async def test_the_ledger_holds_one_row_per_request_with_its_cost(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        key = await make_key(gw, "ledgered")
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        assert r.status_code == 200
        await gw.tenancy.writer.flush()
        spend = await gw.tenancy.ledger.spend(
            key_id=(await gw.tenancy.tenants.get_key("ledgered")).id, since=datetime(2000, 1, 1, tzinfo=UTC)
        )
        assert spend.requests == 1 and spend.cost_usd > 0 and spend.tokens > 0


async def test_byok_sends_the_clients_own_key_upstream_for_that_request_only(fake, backend) -> None:
    async with tenant_gateway(fake, backend, provider_anth={"byok": True}) as gw, client(gw) as ac:
        key = await make_key(gw, "byo")
        fake.configure(require_key=None)
        headers = {**anthropic_headers(key), "x-modelgate-key-anth": "sk-ant-clients-own-0123456789"}
        assert (await ac.post("/v1/messages", json=messages(), headers=headers)).status_code == 200
        assert fake.last_request("/v1/messages")["headers"]["x-api-key"] == "sk-ant-clients-own-0123456789"
        assert "x-modelgate-key-anth" not in fake.last_request("/v1/messages")["headers"]
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200
        assert fake.last_request("/v1/messages")["headers"]["x-api-key"] != "sk-ant-clients-own-0123456789"


async def test_the_request_path_makes_no_query_for_a_cached_key(fake, backend) -> None:
    settings = {"ledger_flush_seconds": 3600, "key_refresh_seconds": 3600}
    async with tenant_gateway(fake, backend, tenancy=settings) as gw, client(gw) as ac:
        key = await make_key(gw, "cached", rpm=100, budgets=[Budget("7d", usd=5.0)])
        await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))  # seeds the windows once
        queries: list[str] = []

        def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            queries.append(statement)

        event.listen(gw.tenancy.database.engine.sync_engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
                assert r.status_code == 200
            await gw.tenancy.settle_pending()
        finally:
            event.remove(gw.tenancy.database.engine.sync_engine, "before_cursor_execute", count)
        assert queries == []


@pytest.mark.parametrize("path", ["/v1/usage", "/usage"])
async def test_usage_of_the_master_key_and_of_a_key_without_budgets(fake, backend, path: str) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        master = await ac.get(path, headers={"x-api-key": "mg-test-master-key"})
        assert master.status_code == 200
        assert master.json() == {
            "object": "usage",
            "key": {"name": "master", "team": None},
            "windows": [],
            "limits": {},
        }
        key = await make_key(gw, "plain" + path.replace("/", "-"), rpm=10, concurrency=2)
        await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))
        await gw.tenancy.settle_pending()
        body = (await ac.get(path, headers={"authorization": f"Bearer {key}"})).json()
        assert body["key"] == {"name": "plain" + path.replace("/", "-"), "team": None}
        assert body["limits"]["rpm"]["limit"] == 10 and body["limits"]["rpm"]["used"] == 1
        assert body["limits"]["concurrency"] == {"limit": 2, "active": 0}
        r = await ac.get(path, headers={"authorization": "Bearer sk-mg-nope"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


async def test_a_key_made_or_revoked_through_the_admin_api_takes_effect_here_at_once(fake, backend) -> None:
    settings = {"key_refresh_seconds": 3600}  # no poll: only the admin API's own refresh can tell
    async with tenant_gateway(fake, backend, tenancy=settings) as gw, client(gw) as ac:
        master = {"authorization": "Bearer mg-test-master-key"}
        made = await ac.post("/admin/keys", json={"name": "via-api", "rpm": 5}, headers=master)
        assert made.status_code == 201
        secret = made.json()["key"]
        assert secret.startswith("sk-mg-")
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(secret))).status_code == 200
        assert (await ac.post("/admin/keys/via-api/revoke", headers=master)).status_code == 200
        r = await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(secret))
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await ac.get("/admin/keys", headers={"x-api-key": secret})
        assert r.status_code == 403


async def test_a_byok_key_the_upstream_refuses_is_the_answer_not_a_rotation(fake, backend) -> None:
    async with tenant_gateway(fake, backend, provider_anth={"byok": True}) as gw, client(gw) as ac:
        key = await make_key(gw, "byo-bad")
        headers = {**anthropic_headers(key), "x-modelgate-key-anth": "sk-ant-wrong-0123456789"}
        r = await ac.post("/v1/messages", json=messages(), headers=headers)  # the fake requires its own key
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert len(fake.requests("/v1/messages")) == 1  # one attempt: no rotation to the pool's keys
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200


async def test_the_request_log_is_pruned_past_its_retention(fake, backend) -> None:
    records = {"retention_days": 30, "bodies_retention_days": 7}
    async with tenant_gateway(fake, backend, records=records) as gw:
        store = gw.tenancy.requests
        assert store is not None
        now = datetime(2026, 6, 1, tzinfo=UTC)
        ages = (1, 8, 31)  # days
        await store.insert_many(
            [
                RequestRecord(request_id=f"req_{d}", at=now - timedelta(days=d), key_id=None, team_id=None,
                              door="anthropic", endpoint="messages")
                for d in ages
            ]
        )  # fmt: skip
        await store.insert_bodies(
            [BodyRecord(request_id=f"req_{d}", at=now - timedelta(days=d), request="{}") for d in ages]
        )
        assert await gw.tenancy.prune(store, now) == (1, 2)  # one record; two bodies (one with its record)
        assert [r.request_id for r in await store.list(until=now)] == ["req_1", "req_8"]  # others: newer
        assert (await store.get("req_1")).body is not None  # type: ignore[union-attr]
        assert (await store.get("req_8")).body is None  # type: ignore[union-attr]


async def test_a_nul_from_a_client_does_not_poison_the_writers_batch(fake, backend) -> None:
    """PostgreSQL refuses NUL in text: a model name or a session id holding one is stored with
    U+FFFD instead, and the batch (everyone's ledger rows and records) is written."""
    metadata = {"user_id": '{"session_id":"s\\u0000" }'}
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        body = messages(model="claude-x\u0000y", metadata=metadata)
        assert (await ac.post("/v1/messages", json=body, headers=anthropic_headers(MASTER_KEY))).status_code == 200
        await gw.tenancy.writer.flush()
        assert gw.tenancy.writer.pending == 0
        assert gw.tenancy.requests is not None
        (record,) = await gw.tenancy.requests.list(session_id="s\ufffd")
        assert record.model == "claude-x\ufffdy"
