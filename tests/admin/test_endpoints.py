"""Per-application endpoints in the admin API (and the service under it), on both backends; every
answer is checked against the OpenAPI document (conftest)."""

from __future__ import annotations

import httpx
import pytest

from modelgate.admin import Admin, AdminAPI
from modelgate.admin.endpoints import EndpointAdmin, base_urls
from modelgate.store import LedgerStore
from tests.admin.conftest import MASTER, DocumentChecker, client_for, ledger_row
from tests.store.conftest import T0, Clock


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    return error


def test_base_urls() -> None:
    assert base_urls("https://gw.example.com/", "ep_abc") == {
        "anthropic": "https://gw.example.com/v1/ep_abc/anthropic",
        "openai": "https://gw.example.com/v1/ep_abc/openai",
        "gemini": "https://gw.example.com/v1/ep_abc/gemini",
    }
    assert base_urls("http://h:8080/llm", "ep_x")["openai"] == "http://h:8080/llm/v1/ep_x/openai"


async def test_create_answers_with_the_base_urls_of_the_request(client: httpx.AsyncClient) -> None:
    key = (await client.post("/admin/keys", json={"name": "bot-key"})).json()
    response = await client.post(
        "/admin/endpoints",
        json={"name": "billing", "description": "the bot", "keys": ["bot-key"], "models": ["claude-*", "claude-*"]},
    )
    assert response.status_code == 201, response.text
    made = response.json()
    ep = made["id"]
    assert made == {
        "object": "endpoint",
        "id": ep,
        "name": "billing",
        "description": "the bot",
        "status": "active",
        "keys": [key["id"]],
        "key_names": ["bot-key"],
        "models": ["claude-*"],
        "log_bodies": False,
        "disabled_at": None,
        "urls": {
            "anthropic": f"http://gateway.test/v1/{ep}/anthropic",
            "openai": f"http://gateway.test/v1/{ep}/openai",
            "gemini": f"http://gateway.test/v1/{ep}/gemini",
        },
        "metadata": {},
        "created_at": "2026-03-10T12:00:00Z",
        "updated_at": "2026-03-10T12:00:00Z",
    }
    assert (await client.get(f"/admin/endpoints/{ep}")).json() == made
    assert (await client.get("/admin/endpoints/billing")).json() == made
    assert (await client.get("/admin/endpoints")).json() == {"object": "list", "data": [made]}


async def test_a_configured_public_url_is_the_base(
    admin: Admin, endpoints: EndpointAdmin, checker: DocumentChecker
) -> None:
    api = AdminAPI(admin, MASTER, endpoints=endpoints, public_url="https://llm.example.com/gw")
    async with client_for(api, checker, authorization=f"Bearer {MASTER}") as c:
        made = (await c.post("/admin/endpoints", json={"name": "app"})).json()
    assert made["urls"]["gemini"] == f"https://llm.example.com/gw/v1/{made['id']}/gemini"


async def test_update_disable_enable_and_delete(client: httpx.AsyncClient, clock: Clock) -> None:
    made = (await client.post("/admin/endpoints", json={"name": "app", "models": ["m"]})).json()
    clock.advance(60)
    changed = (await client.patch("/admin/endpoints/app", json={"disabled": True, "log_bodies": True})).json()
    assert (changed["status"], changed["disabled_at"], changed["log_bodies"]) == (
        "disabled",
        "2026-03-10T12:01:00Z",
        True,
    )
    assert changed["models"] == ["m"] and changed["name"] == "app"
    again = (await client.patch(f"/admin/endpoints/{made['id']}", json={"disabled": False, "models": []})).json()
    assert (again["status"], again["disabled_at"], again["models"]) == ("active", None, [])
    deleted = await client.delete("/admin/endpoints/app")
    assert deleted.json() == {"object": "endpoint", "id": made["id"], "name": "app", "deleted": True}
    assert error_of(await client.get(f"/admin/endpoints/{made['id']}"), 404)["code"] == "not_found"
    assert error_of(await client.delete("/admin/endpoints/app"), 404)["type"] == "not_found_error"


async def test_refusals(client: httpx.AsyncClient) -> None:
    await client.post("/admin/endpoints", json={"name": "taken"})
    assert error_of(await client.post("/admin/endpoints", json={"name": "taken"}), 409)["type"] == "conflict_error"
    missing = error_of(await client.post("/admin/endpoints", json={"name": "x", "keys": ["nobody"]}), 404)
    assert missing["message"] == "no key with id or name 'nobody'"
    unknown = error_of(await client.post("/admin/endpoints", json={"name": "x", "colour": "red"}), 422)
    assert unknown["message"] == "colour: unknown field"
    assert (
        error_of(await client.patch("/admin/endpoints/taken", json={"name": None}), 422)["code"] == "validation_error"
    )
    assert error_of(await client.post("/admin/endpoints", json={"name": "x", "models": [" "]}), 422)["message"] == (
        "models: an entry is empty"
    )
    assert error_of(await client.patch("/admin/endpoints/nobody", json={}), 404)["code"] == "not_found"


async def test_only_the_master_key(api: AdminAPI, checker: DocumentChecker) -> None:
    async with client_for(api, checker) as c:
        assert error_of(await c.get("/admin/endpoints"), 401)["code"] == "missing_api_key"


async def test_without_endpoints_the_routes_answer_404(admin: Admin) -> None:
    async with client_for(AdminAPI(admin, MASTER), None, authorization=f"Bearer {MASTER}") as c:
        assert error_of(await c.get("/admin/endpoints"), 404)["message"] == "this gateway serves no endpoints"


async def test_writes_refresh_the_caches(admin: Admin, endpoints: EndpointAdmin) -> None:
    calls: list[str] = []

    async def after_write() -> None:
        calls.append("refresh")

    api = AdminAPI(admin, MASTER, after_write=after_write, endpoints=endpoints)
    async with client_for(api, None, authorization=f"Bearer {MASTER}") as c:
        await c.post("/admin/endpoints", json={"name": "app"})
        await c.get("/admin/endpoints")
        await c.patch("/admin/endpoints/app", json={"disabled": True})
        await c.delete("/admin/endpoints/app")
    assert calls == ["refresh"] * 3


async def test_usage_grouped_by_endpoint(client: httpx.AsyncClient, ledger: LedgerStore) -> None:
    made = (await client.post("/admin/endpoints", json={"name": "app"})).json()
    await ledger.insert_many([ledger_row(-60, None, endpoint_id=made["id"], cost_usd=2.0), ledger_row(-30, None)])
    report = (await client.get("/admin/usage", params={"group_by": "endpoint_id"})).json()
    assert report["group_by"] == "endpoint_id"
    assert [(line["group"], line["name"], line["requests"]) for line in report["data"]] == [
        (made["id"], "app", 1),
        (None, None, 1),
    ]


@pytest.mark.parametrize("field", ["keys", "models"])
async def test_service_refuses_one_string(endpoints: EndpointAdmin, field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} takes a list of strings"):
        await endpoints.create("x", **{field: "claude-*"})  # type: ignore[arg-type]
    assert T0.tzinfo is not None
