"""Per-application endpoints on the request path: the cache, admission's rules, and the
base URLs ``/v1/<id>/<provider>`` through the whole chain in process, each refusal in the
called door's own envelope."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from modelgate.errors import NotFound, PermissionDenied
from modelgate.policy.auth import Principal
from modelgate.policy.endpoints import EndpointCache, admit_endpoint, check_model
from modelgate.store import EndpointRecord, KeyRecord
from tests.conftest import MASTER_KEY
from tests.policy.tenancy_helpers import MODEL, anthropic_headers, client, make_key, messages, tenant_gateway

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def endpoint(id: str = "ep_a", **fields: Any) -> EndpointRecord:
    values: dict[str, Any] = {
        "name": id.removeprefix("ep_"),
        "description": "",
        "keys": (),
        "models": (),
        "log_bodies": False,
        "disabled_at": None,
        "metadata": {},
        "created_at": T0,
        "updated_at": T0,
    }
    return EndpointRecord(id=id, **{**values, **fields})


def key(id: str = "key_1") -> KeyRecord:
    return KeyRecord(
        id=id, name=id, key_hash="0" * 64, hint="sk-mg-x", team_id=None, models=(), expires_at=None, revoked_at=None,
        quarantined_at=None, quarantine_reason=None, budgets=(), rpm=None, tpm=None, concurrency=None, max_tokens=None,
        ip_allow=(), ip_limit=None, ip_window=None, metadata={}, created_at=T0, updated_at=T0,
    )  # fmt: skip


class FakeStore:
    def __init__(self, *endpoints: EndpointRecord) -> None:
        self.endpoints = list(endpoints)
        self.reads = 0

    async def list_all(self) -> list[EndpointRecord]:
        self.reads += 1
        return list(self.endpoints)


# the cache


async def test_the_cache_loads_and_a_refresh_drops_deleted_endpoints() -> None:
    a, b = endpoint("ep_a"), endpoint("ep_b")
    store = FakeStore(a, b)
    cache = EndpointCache(store, 60)  # type: ignore[arg-type]
    assert cache.find("ep_a") is None
    await cache.load()
    assert (cache.find("ep_a"), cache.find("ep_b"), cache.find("ep_c")) == (a, b, None)
    store.endpoints = [endpoint("ep_b", models=("m",))]
    await cache.refresh()
    assert cache.find("ep_a") is None and cache.find("ep_b") == endpoint("ep_b", models=("m",))
    cache.put(a)
    assert cache.find("ep_a") == a


async def test_the_cache_polls_and_survives_a_failing_store() -> None:
    store = FakeStore(endpoint("ep_a"))
    cache = EndpointCache(store, 0.01)  # type: ignore[arg-type]
    cache.start()
    await asyncio.sleep(0.05)
    assert store.reads >= 2 and cache.find("ep_a") is not None

    async def broken() -> list[EndpointRecord]:
        raise OSError("database down")

    store.list_all = broken  # type: ignore[method-assign]
    await asyncio.sleep(0.03)
    assert cache.find("ep_a") is not None  # kept
    await cache.close()
    await cache.close()  # twice is fine


# admission's rules


def test_unknown_and_disabled_endpoints_are_not_found() -> None:
    master = Principal("master", "master")
    with pytest.raises(NotFound, match="no endpoint 'ep_x': check the base URL") as caught:
        admit_endpoint(None, "ep_x", master)
    assert (caught.value.status, caught.value.code) == (404, "endpoint_not_found")
    with pytest.raises(NotFound):
        admit_endpoint(endpoint(disabled_at=T0), "ep_a", master)


def test_the_endpoints_keys() -> None:
    listed = endpoint(keys=("key_1",))
    assert admit_endpoint(listed, "ep_a", Principal("key_1", "virtual_key", key("key_1"))) is listed
    assert admit_endpoint(listed, "ep_a", Principal("master", "master")) is listed  # the operator's key passes
    assert admit_endpoint(endpoint(), "ep_a", Principal("key_2", "virtual_key", key("key_2"))).id == "ep_a"
    with pytest.raises(PermissionDenied, match="API key 'key_2' may not use endpoint 'a'") as caught:
        admit_endpoint(listed, "ep_a", Principal("key_2", "virtual_key", key("key_2")))
    assert (caught.value.status, caught.value.code, caught.value.policy) == (403, "endpoint_key_not_allowed", True)


def test_the_endpoints_models() -> None:
    check_model(endpoint(), "anything")
    check_model(endpoint(models=("claude-*", "gpt-4o")), "claude-haiku-4-5")
    check_model(endpoint(models=("claude-*", "gpt-4o")), "gpt-4o")
    with pytest.raises(PermissionDenied, match="endpoint 'a' may not use model 'gpt-5-mini'") as caught:
        check_model(endpoint(models=("claude-*", "gpt-4o")), "gpt-5-mini")
    assert (caught.value.code, caught.value.policy) == ("model_not_allowed", True)


# through the chain, in process


def chat(model: str = "gpt-4o") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


GEMINI_BODY = {"contents": [{"parts": [{"text": "hi"}]}]}


async def test_every_door_through_an_endpoint(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        secret = await make_key(gw, "every-door")
        app = await gw.tenancy.endpoint_store.create("every-door")
        await gw.tenancy.endpoints.refresh()
        base = f"/v1/{app.id}"
        bearer = {"authorization": f"Bearer {secret}"}
        r = await ac.post(f"{base}/anthropic/v1/messages", json=messages(), headers=anthropic_headers(secret))
        assert r.status_code == 200 and r.json()["type"] == "message"
        r = await ac.post(
            f"{base}/anthropic/v1/messages/count_tokens",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers=anthropic_headers(secret),
        )
        assert r.status_code == 200 and isinstance(r.json()["input_tokens"], int)
        for prefix in ("/openai", "/openai/v1"):
            r = await ac.post(f"{base}{prefix}/chat/completions", json=chat(), headers=bearer)
            assert r.status_code == 200 and r.json()["object"] == "chat.completion"
            r = await ac.post(f"{base}{prefix}/responses", json={"model": "gpt-5-mini", "input": "hi"}, headers=bearer)
            assert r.status_code == 200 and r.json()["object"] == "response"
        r = await ac.post(
            f"{base}/gemini/v1beta/models/gemini-2.5-flash:generateContent?key={secret}", json=GEMINI_BODY
        )
        assert r.status_code == 200 and "candidates" in r.json()
        r = await ac.post(f"{base}/gemini/v1beta/models/gemini-2.5-flash:countTokens?key={secret}", json=GEMINI_BODY)
        assert r.status_code == 200 and "totalTokens" in r.json()
        await gw.tenancy.writer.flush()
        rows = await gw.tenancy.ledger.summary(group_by="endpoint_id")
        mine = [(g.group, g.name, g.requests) for g in rows if g.group == app.id]
        assert mine == [(app.id, "every-door", 6)]  # counts are not billed


async def refusals(ac: Any, base: str, secret: str) -> list[tuple[int, Any]]:
    """The answers of each door's generation and listing at ``base`` (models the endpoint refuses)."""
    bearer = {"authorization": f"Bearer {secret}"}
    answers = [
        await ac.post(f"{base}/anthropic/v1/messages", json=messages(), headers=anthropic_headers(secret)),
        await ac.post(f"{base}/openai/chat/completions", json=chat("gpt-5-mini"), headers=bearer),
        await ac.post(f"{base}/openai/v1/responses", json={"model": "gpt-5-mini", "input": "hi"}, headers=bearer),
        await ac.post(f"{base}/gemini/v1beta/models/gemini-2.5-pro:generateContent?key={secret}", json=GEMINI_BODY),
        await ac.get(f"{base}/anthropic/v1/models", headers=anthropic_headers(secret)),
        await ac.get(f"{base}/openai/models", headers=bearer),
        await ac.get(f"{base}/gemini/v1beta/models", headers={"x-goog-api-key": secret}),
    ]
    out = []
    for r in answers:
        body = r.json()
        if "request_id" in body:  # Anthropic's envelope carries the request's id
            assert body.pop("request_id") == r.headers["request-id"]
        out.append((r.status_code, body))
    return out


def everywhere(message: str, code: str, status: int) -> list[tuple[int, Any]]:
    """A refusal in the envelope of each door called by :func:`refusals`."""
    if status == 404:
        anthropic = {"type": "error", "error": {"type": "not_found_error", "message": message}}
        openai = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
        gemini: dict[str, Any] = {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}
    else:
        anthropic = {"type": "error", "error": {"type": "permission_error", "message": message, "code": code}}
        openai = {"error": {"message": message, "type": "permission_error", "param": None, "code": code}}
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "modelgate"}
        gemini = {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED", "details": [info]}}
    return [(status, body) for body in (anthropic, openai, openai, gemini, anthropic, openai, gemini)]


async def test_refusals_in_each_doors_envelope(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        alice, bob = await make_key(gw, "alice"), await make_key(gw, "bob")
        bob_id = (await gw.tenancy.tenants.get_key("bob")).id
        allowed = ["claude-haiku-4-5", "gpt-4o", "gemini-2.5-flash"]
        app = await gw.tenancy.endpoint_store.create("app", keys=[bob_id], models=allowed)
        off = await gw.tenancy.endpoint_store.create("off")
        await gw.tenancy.endpoint_store.disable(off.id)
        await gw.tenancy.endpoints.refresh()
        missing = "no endpoint 'ep_nothere': check the base URL"
        assert await refusals(ac, "/v1/ep_nothere", bob) == everywhere(missing, "endpoint_not_found", 404)
        disabled = f"no endpoint '{off.id}': check the base URL"
        assert await refusals(ac, f"/v1/{off.id}", bob) == everywhere(disabled, "endpoint_not_found", 404)
        not_listed = "API key 'alice' may not use endpoint 'app'"
        assert await refusals(ac, f"/v1/{app.id}", alice) == everywhere(not_listed, "endpoint_key_not_allowed", 403)
        answers = await refusals(ac, f"/v1/{app.id}", bob)
        expected = [
            everywhere(f"endpoint 'app' may not use model {model!r}", "model_not_allowed", 403)[i]
            for i, model in enumerate((MODEL, "gpt-5-mini", "gpt-5-mini", "gemini-2.5-pro"))
        ]
        assert answers[:4] == expected
        listings = answers[4:]
        assert [status for status, _ in listings] == [200, 200, 200]
        assert [m["id"] for m in listings[0][1]["data"]] == allowed
        assert [m["id"] for m in listings[1][1]["data"]] == allowed
        assert [m["name"] for m in listings[2][1]["models"]] == [f"models/{m}" for m in allowed]
        one = await ac.get(f"/v1/{app.id}/openai/models/gpt-5-mini", headers={"authorization": f"Bearer {bob}"})
        assert one.status_code == 404 and one.json()["error"]["param"] == "model"  # as if it did not exist
        ok = await ac.post(
            f"/v1/{app.id}/anthropic/v1/messages",
            json=messages(model="claude-haiku-4-5"),
            headers=anthropic_headers(bob),
        )
        assert ok.status_code == 200
        # the master key passes any endpoint's key list, not its model list
        master = anthropic_headers(MASTER_KEY)
        r = await ac.post(
            f"/v1/{app.id}/anthropic/v1/messages", json=messages(model="claude-haiku-4-5"), headers=master
        )
        assert r.status_code == 200
        r = await ac.post(f"/v1/{app.id}/anthropic/v1/messages", json=messages(), headers=master)
        assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"


async def test_a_bad_key_is_refused_before_the_endpoint_is_looked_up(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        r = await ac.post("/v1/ep_nothere/anthropic/v1/messages", json=messages(), headers=anthropic_headers("bad"))
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


async def test_unknown_paths_under_an_endpoint_answer_in_the_providers_envelope(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        r = await ac.post("/v1/ep_x/gemini/v1beta/tunedModels")
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
        r = await ac.post("/v1/ep_x/openai/embeddings")
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        r = await ac.post("/v1/ep_x/anthropic/v1/complete")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


async def test_admin_writes_reach_the_cache_at_once_and_the_endpoint_opts_into_bodies(fake, backend) -> None:
    async with tenant_gateway(fake, backend) as gw, client(gw) as ac:
        admin = {"authorization": f"Bearer {MASTER_KEY}"}
        made = (await ac.post("/admin/endpoints", json={"name": "logged", "log_bodies": True}, headers=admin)).json()
        assert made["urls"]["anthropic"] == f"http://gw/v1/{made['id']}/anthropic"
        found = gw.tenancy.endpoints.find(made["id"])
        assert found is not None and found.log_bodies
        seen: list[tuple[str | None, bool]] = []
        settle = gw.settler.settle

        def spy(ctx: Any, *args: Any) -> None:
            seen.append((ctx.endpoint_id, ctx.log_bodies))
            settle(ctx, *args)

        gw.settler.settle = spy  # type: ignore[method-assign]
        secret = await make_key(gw, "logged")
        url = f"/v1/{made['id']}/anthropic/v1/messages"
        assert (await ac.post(url, json=messages(), headers=anthropic_headers(secret))).status_code == 200
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(secret))).status_code == 200
        assert seen == [(made["id"], True), (None, False)]
        assert (await ac.delete(f"/admin/endpoints/{made['id']}", headers=admin)).status_code == 200
        assert (await ac.post(url, json=messages(), headers=anthropic_headers(secret))).status_code == 404
