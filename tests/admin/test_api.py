"""The admin API in process, on both backends; every answer is checked against the OpenAPI document (conftest)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from modelgate.admin import Admin, AdminAPI
from modelgate.policy.keys import digest, new_secret
from modelgate.store import LedgerStore, RequestStore, TenantStore
from tests.admin.conftest import MASTER, DocumentChecker, client_for, ledger_row, request_record
from tests.store.conftest import T0, Clock


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    return error


# authentication


@pytest.mark.parametrize(
    ("headers", "status", "kind", "code"),
    [
        ({}, 401, "authentication_error", "missing_api_key"),
        ({"authorization": "Bearer wrong"}, 401, "authentication_error", "invalid_api_key"),
        ({"x-api-key": "wrong"}, 401, "authentication_error", "invalid_api_key"),
        ({"authorization": "Basic " + MASTER}, 401, "authentication_error", "missing_api_key"),
        ({"x-api-key": new_secret()}, 403, "permission_error", "master_key_required"),
        ({"authorization": f"Bearer {new_secret()}"}, 403, "permission_error", "master_key_required"),
    ],
)
async def test_only_the_master_key_administers(
    api: AdminAPI, checker: DocumentChecker, headers: dict[str, str], status: int, kind: str, code: str
) -> None:
    async with client_for(api, checker, **headers) as c:
        for method, path in (("GET", "/admin/keys"), ("POST", "/admin/teams"), ("DELETE", "/admin/teams/t")):
            error = error_of(await c.request(method, path, json={"name": "x"}), status)
            assert (error["type"], error["code"]) == (kind, code)
        if status == 401:
            assert (await c.get("/admin/keys")).headers["www-authenticate"] == "Bearer"
    async with client_for(api, None, **headers) as c:  # what is not there is hidden the same way
        assert (await c.get("/admin/nothing")).status_code == status


async def test_the_master_key_in_either_header(api: AdminAPI, checker: DocumentChecker) -> None:
    for headers in ({"x-api-key": MASTER}, {"authorization": f"bearer {MASTER}"}):
        async with client_for(api, checker, **headers) as c:
            assert (await c.get("/admin/keys")).json() == {"object": "list", "data": []}


async def test_a_virtual_key_that_exists_is_still_refused(api: AdminAPI, client: httpx.AsyncClient) -> None:
    secret = (await client.post("/admin/keys", json={"name": "k"})).json()["key"]
    async with client_for(api, None, authorization=f"Bearer {secret}") as c:
        assert error_of(await c.get("/admin/keys"), 403)["type"] == "permission_error"


async def test_unknown_paths_and_methods_answer_in_the_envelope(api: AdminAPI) -> None:
    async with client_for(api, None, authorization=f"Bearer {MASTER}") as c:
        assert error_of(await c.get("/admin/nothing/here"), 404)["code"] == "unknown_path"
        response = await c.put("/admin/keys")
        error = error_of(response, 405)
        assert error["code"] == "method_not_allowed" and response.headers["allow"] == "GET, POST"


async def test_the_document_needs_no_key(api: AdminAPI, checker: DocumentChecker) -> None:
    async with client_for(api, checker) as c:
        doc = (await c.get("/admin/openapi.json")).json()
    assert doc["openapi"].startswith("3.1") and "/admin/keys/{ref}/rotate" in doc["paths"]


# keys


async def test_create_shows_the_secret_once(client: httpx.AsyncClient, tenants: TenantStore) -> None:
    await client.post("/admin/teams", json={"name": "research"})
    response = await client.post(
        "/admin/keys",
        json={
            "name": "alice",
            "team": "research",
            "budgets": [{"usd": 5, "window": "7d"}, {"credits": 1000}],
            "rpm": 60,
            "models": ["claude-*"],
            "expires_at": "2027-01-01",
            "metadata": {"owner": "alice@example.com"},
        },
    )
    assert response.status_code == 201
    created = response.json()
    secret = created["key"]
    assert secret.startswith("sk-mg-") and created["hint"] == secret[:10] + "…"
    assert created["team"] == "research" and created["status"] == "active"
    assert created["budgets"] == [
        {"window": "7d", "usd": 5.0, "credits": None},
        {"window": "total", "usd": None, "credits": 1000.0},
    ]
    assert created["expires_at"] == "2027-01-01T00:00:00Z"
    stored = await tenants.get_key("alice")
    assert stored.key_hash == digest(secret)
    for path in ("/admin/keys", "/admin/keys/alice", f"/admin/keys/{created['id']}", "/admin/keys?team=research"):
        text = (await client.get(path)).text
        assert "alice" in text and secret not in text and digest(secret) not in text and "key_hash" not in text
    shown = (await client.get("/admin/keys/alice")).json()
    assert shown == {k: v for k, v in created.items() if k != "key"}


async def test_bodies_are_validated(client: httpx.AsyncClient) -> None:
    for body, message in (
        ({"name": "k", "rmp": 60}, "rmp: unknown field"),
        ({}, "name: Field required"),
        ({"name": "k", "budgets": [{"window": "1y", "usd": 1}]}, "budgets.0.window"),
        ({"name": "k", "budgets": [{"window": "7d"}]}, "a budget needs a limit in usd or in credits"),
        ({"name": "k", "rpm": 0}, "rpm: Input should be greater than or equal to 1"),
        ({"name": "k", "ip_allow": ["nope"]}, "'nope' is not an IP address"),
        ({"name": "k", "budgets": [{"window": "7d", "usd": 1}, {"window": "7d", "credits": 1}]}, "more than one"),
    ):
        error = error_of(await client.post("/admin/keys", json=body), 422)
        assert error["type"] == "invalid_request_error" and message in error["message"], error
    for content in (b"{", b"[1]", b""):
        error = error_of(await client.post("/admin/keys", content=content), 400)
        assert error["code"] == "invalid_json"
    assert (await client.get("/admin/keys")).json()["data"] == []


async def test_misses_and_conflicts(client: httpx.AsyncClient) -> None:
    await client.post("/admin/keys", json={"name": "k"})
    error = error_of(await client.post("/admin/keys", json={"name": "k"}), 409)
    assert (error["type"], error["code"]) == ("conflict_error", "conflict") and "'k' already exists" in error["message"]
    for method, path in (
        ("GET", "/admin/keys/nope"),
        ("PATCH", "/admin/keys/nope"),
        ("POST", "/admin/keys/nope/revoke"),
        ("POST", "/admin/keys/nope/rotate"),
        ("POST", "/admin/keys/nope/release"),
        ("GET", "/admin/keys/nope/usage"),
        ("GET", "/admin/keys?team=nope"),
        ("GET", "/admin/teams/nope"),
        ("PATCH", "/admin/teams/nope"),
        ("DELETE", "/admin/teams/nope"),
        ("GET", "/admin/usage?key=nope"),
    ):
        kwargs = {"json": {"rpm": 1}} if method == "PATCH" else {}
        error = error_of(await client.request(method, path, **kwargs), 404)  # type: ignore[arg-type]
        assert error["type"] == "not_found_error" and "'nope'" in error["message"]
    assert error_of(await client.post("/admin/keys", json={"name": "j", "team": "nope"}), 404)


async def test_patch_changes_what_is_given(client: httpx.AsyncClient) -> None:
    await client.post("/admin/teams", json={"name": "t"})
    key = (await client.post("/admin/keys", json={"name": "k", "team": "t", "rpm": 5, "tpm": 100})).json()
    patched = (await client.patch("/admin/keys/k", json={"rpm": None, "name": "k2", "models": ["gpt-*"]})).json()
    assert (patched["id"], patched["name"], patched["rpm"], patched["tpm"]) == (key["id"], "k2", None, 100)
    assert patched["models"] == ["gpt-*"] and patched["team"] == "t"
    assert (await client.patch(f"/admin/keys/{key['id']}", json={"team": None})).json()["team_id"] is None
    assert (await client.patch("/admin/keys/k2", json={})).json()["name"] == "k2"
    assert "name cannot be null" in error_of(await client.patch("/admin/keys/k2", json={"name": None}), 422)["message"]
    assert (
        "key_hash: unknown field"
        in error_of(await client.patch("/admin/keys/k2", json={"key_hash": "x"}), 422)["message"]
    )
    await client.post("/admin/keys", json={"name": "other"})
    assert error_of(await client.patch("/admin/keys/k2", json={"name": "other"}), 409)


async def test_revoke_rotate_release(client: httpx.AsyncClient, tenants: TenantStore, clock: Clock) -> None:
    first = (await client.post("/admin/keys", json={"name": "k", "rpm": 9})).json()
    rotated = (await client.post("/admin/keys/k/rotate")).json()
    assert rotated["key"] != first["key"] and (rotated["id"], rotated["rpm"]) == (first["id"], 9)
    assert await tenants.find_key_by_hash(digest(first["key"])) is None
    await tenants.update_key("k", quarantined_at=T0, quarantine_reason="too many IPs")
    assert (await client.get("/admin/keys/k")).json()["status"] == "quarantined"
    released = (await client.post("/admin/keys/k/release")).json()
    assert (released["status"], released["quarantined_at"], released["quarantine_reason"]) == ("active", None, None)
    clock.advance(30)
    revoked = (await client.post("/admin/keys/k/revoke")).json()
    assert revoked["status"] == "revoked" and revoked["revoked_at"] == "2026-03-10T12:00:30Z"
    assert "revoked" in error_of(await client.post("/admin/keys/k/rotate"), 409)["message"]


# teams


async def test_teams(client: httpx.AsyncClient) -> None:
    created = await client.post("/admin/teams", json={"name": "t", "budgets": [{"window": "month", "usd": 100}]})
    assert created.status_code == 201 and created.json()["budgets"][0]["window"] == "month"
    assert error_of(await client.post("/admin/teams", json={"name": "t"}), 409)
    assert error_of(await client.post("/admin/teams", json={"name": "u", "max_tokens": 5}), 422)
    patched = (await client.patch("/admin/teams/t", json={"rpm": 60, "budgets": []})).json()
    assert (patched["rpm"], patched["budgets"]) == (60, [])
    assert [t["name"] for t in (await client.get("/admin/teams")).json()["data"]] == ["t"]
    await client.post("/admin/keys", json={"name": "k", "team": "t"})
    assert "still has 1 key" in error_of(await client.delete("/admin/teams/t"), 409)["message"]
    await client.patch("/admin/keys/k", json={"team": None})
    deleted = (await client.delete(f"/admin/teams/{created.json()['id']}")).json()
    assert deleted == {"object": "team", "id": created.json()["id"], "name": "t", "deleted": True}
    assert (await client.get("/admin/teams")).json()["data"] == []


# usage


async def test_usage_report(client: httpx.AsyncClient, ledger: LedgerStore, admin: Admin) -> None:
    team = await admin.create_team("t")
    a, _ = await admin.create_key("a", team="t")
    await ledger.insert_many(
        [
            ledger_row(-3 * 86400, a.id, team.id, cost_usd=2.0, model="opus"),
            ledger_row(-60, a.id, team.id),
            ledger_row(-30, None, None, cost_usd=0.5, endpoint="chat"),
        ]
    )
    report = (await client.get("/admin/usage")).json()
    assert [(line["name"], line["requests"], line["cost_usd"]) for line in report["data"]] == [
        ("a", 2, 3.0),
        (None, 1, 0.5),
    ]
    assert (report["total"]["requests"], report["total"]["cost_usd"], report["total"]["tokens"]) == (3, 3.5, 330)
    params = {"team": "t", "group_by": "model", "since": "2026-03-09"}
    by_model = (await client.get("/admin/usage", params=params)).json()
    assert [line["group"] for line in by_model["data"]] == ["sonnet"] and by_model["since"] == "2026-03-09T00:00:00Z"
    by_endpoint = (await client.get("/admin/usage?group_by=endpoint")).json()
    assert {line["group"] for line in by_endpoint["data"]} == {"messages", "chat"}
    for query in ("group_by=colour", "since=yesterday", "colour=red"):
        assert error_of(await client.get(f"/admin/usage?{query}"), 422)["code"] == "validation_error"


async def test_key_usage_windows(client: httpx.AsyncClient, ledger: LedgerStore, admin: Admin) -> None:
    await client.post("/admin/teams", json={"name": "t", "budgets": [{"window": "7d", "usd": 10}], "rpm": 100})
    key = (
        await client.post(
            "/admin/keys",
            json={"name": "k", "team": "t", "budgets": [{"window": "5h", "usd": 4}, {"window": "total", "usd": 100}]},
        )
    ).json()
    team_id = key["team_id"]
    await ledger.insert_many([ledger_row(-3600, key["id"], team_id), ledger_row(-6 * 3600, key["id"], team_id)])
    usage = (await client.get("/admin/keys/k/usage")).json()
    assert usage["at"] == "2026-03-10T12:00:00Z" and usage["status"] == "active"
    assert [(w["window"], w["used_usd"], w["limit_usd"], w["used_percent"]) for w in usage["key"]["windows"]] == [
        ("5h", 1.0, 4.0, 25.0),
        ("total", 2.0, 100.0, 2.0),
    ]
    assert usage["key"]["windows"][0]["since"] == "2026-03-10T07:00:00Z"
    assert usage["key"]["windows"][0]["used_credits"] is None  # no credit rate, no credit budget
    assert usage["team"]["name"] == "t" and usage["team"]["limits"] == {"rpm": 100, "tpm": None, "concurrency": None}
    assert [(w["window"], w["used_usd"], w["used_percent"]) for w in usage["team"]["windows"]] == [("7d", 2.0, 20.0)]


async def test_key_usage_shows_credits_with_a_credit_rate(
    tenants: TenantStore, ledger: LedgerStore, clock: Clock, checker: DocumentChecker
) -> None:
    api = AdminAPI(Admin(tenants, ledger, credit_rate=10.0, clock=clock), MASTER)
    async with client_for(api, checker, authorization=f"Bearer {MASTER}") as c:
        key = (await c.post("/admin/keys", json={"name": "k", "budgets": [{"window": "month", "usd": 5}]})).json()
        await ledger.insert_many([ledger_row(-60, key["id"]), ledger_row(-(10 * 86400), key["id"])])
        [window] = (await c.get("/admin/keys/k/usage")).json()["key"]["windows"]
    assert (window["used_usd"], window["used_credits"], window["limit_credits"]) == (1.0, 10.0, None)
    assert window["since"] == "2026-03-01T00:00:00Z" and clock.now - timedelta(days=9) < T0


def test_the_api_needs_a_master_key(admin: Admin) -> None:
    with pytest.raises(ValueError, match="needs a master key"):
        AdminAPI(admin, "")


async def test_intercept_warmup_is_a_key_attribute(client: httpx.AsyncClient) -> None:
    created = (await client.post("/admin/keys", json={"name": "cc"})).json()
    assert created["intercept_warmup"] is True
    off = (await client.post("/admin/keys", json={"name": "cc2", "intercept_warmup": False})).json()
    assert off["intercept_warmup"] is False
    patched = (await client.patch("/admin/keys/cc", json={"intercept_warmup": False})).json()
    assert patched["intercept_warmup"] is False
    assert (await client.get("/admin/keys/cc")).json()["intercept_warmup"] is False
    refused = await client.patch("/admin/keys/cc", json={"intercept_warmup": None})
    assert "intercept_warmup cannot be null" in error_of(refused, 422)["message"]


async def test_log_bodies_is_a_key_attribute(client: httpx.AsyncClient) -> None:
    assert (await client.post("/admin/keys", json={"name": "b"})).json()["log_bodies"] is False
    assert (await client.post("/admin/keys", json={"name": "b2", "log_bodies": True})).json()["log_bodies"] is True
    assert (await client.patch("/admin/keys/b", json={"log_bodies": True})).json()["log_bodies"] is True
    assert (await client.get("/admin/keys/b")).json()["log_bodies"] is True
    refused = await client.patch("/admin/keys/b", json={"log_bodies": None})
    assert "log_bodies cannot be null" in error_of(refused, 422)["message"]


# the request log


async def test_the_request_log_lists_filters_and_pages(
    api: AdminAPI, checker: DocumentChecker, tenants: TenantStore, requests: RequestStore
) -> None:
    key = await tenants.create_key("alice", key_hash=digest(new_secret()), hint="sk-mg-abc")
    await requests.insert_many(
        [
            request_record(0, key.id, session_id="s1"),
            request_record(10, key.id, session_id="s1", status=529, error_type="overloaded", tool_calls=2),
            request_record(20, None),
            request_record(30, key.id, model="opus", upstream_request_id="req_011CUpstream"),
        ]
    )
    async with client_for(api, checker, authorization=f"Bearer {MASTER}") as c:
        page = (await c.get("/admin/requests", params={"key": "alice", "limit": "2"})).json()
        assert [r["at"] for r in page["data"]] == ["2026-03-10T12:00:30Z", "2026-03-10T12:00:10Z"]
        assert page["data"][1]["attempts"][0]["key_id"] == "anth#0"
        rest = (await c.get("/admin/requests", params={"key": "alice", "before": str(page["next_before"])})).json()
        assert ([r["at"] for r in rest["data"]], rest["next_before"]) == (["2026-03-10T12:00:00Z"], None)
        errors = (await c.get("/admin/requests", params={"errors": "true"})).json()["data"]
        assert [(r["status"], r["error_type"]) for r in errors] == [(529, "overloaded")]
        assert len((await c.get("/admin/requests", params={"model": "opus"})).json()["data"]) == 1
        one = (await c.get("/admin/requests/req_10_" + key.id)).json()
        assert (one["object"], one["tool_calls"], one["body"]) == ("request", 2, None)
        sessions = (await c.get("/admin/sessions", params={"key": key.id})).json()
        assert [(s["session_id"], s["requests"], s["errors"], s["duration_seconds"]) for s in sessions["data"]] == [
            ("s1", 2, 1, 10.0)
        ]
        turns = (await c.get("/admin/sessions/s1")).json()
        assert [r["request_id"] for r in turns["data"]] == ["req_0_" + key.id, "req_10_" + key.id]
        # The upstream's id, which the client saw on a passthrough answer, finds the record too.
        upstream = (await c.get("/admin/requests/req_011CUpstream")).json()
        assert (upstream["request_id"], upstream["upstream_request_id"]) == ("req_30_" + key.id, "req_011CUpstream")
        assert one["upstream_request_id"] is None
        for ref in ("req_011CUpstream", "req_30_" + key.id):
            found = (await c.get("/admin/requests", params={"request_id": ref})).json()
            assert ([r["request_id"] for r in found["data"]], found["next_before"]) == (["req_30_" + key.id], None)
        assert (await c.get("/admin/requests", params={"request_id": "req_nope"})).json()["data"] == []
        assert error_of(await c.get("/admin/requests/req_nope"), 404)["code"] == "not_found"
        assert error_of(await c.get("/admin/sessions/nope"), 404)["code"] == "not_found"
        assert error_of(await c.get("/admin/requests", params={"key": "bob"}), 404)["code"] == "not_found"
        refused = await c.get("/admin/requests", params={"status": "6xx", "limit": "0"})
        assert error_of(refused, 422)["code"] == "validation_error"


async def test_without_a_request_log_its_reads_are_404(tenants: TenantStore, ledger: LedgerStore) -> None:
    async with client_for(AdminAPI(Admin(tenants, ledger), MASTER), None, authorization=f"Bearer {MASTER}") as c:
        for path in ("/admin/requests", "/admin/requests/req_1", "/admin/sessions", "/admin/sessions/s"):
            assert "request log is off" in error_of(await c.get(path), 404)["message"]
