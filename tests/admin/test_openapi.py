"""The OpenAPI document: valid as a document, served as built, and in agreement with every route and answer."""

from __future__ import annotations

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from modelgate.admin import Admin, AdminAPI
from modelgate.admin.endpoints import EndpointAdmin
from modelgate.admin.openapi import OPERATIONS, document
from modelgate.store import BodyRecord, RequestStore, TenantStore
from tests.admin.conftest import MASTER, DocumentChecker, client_for, request_record
from tests.store.conftest import T0


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert len({op["operationId"] for path in doc["paths"].values() for op in path.values()}) == len(OPERATIONS)


def test_every_route_is_documented_and_every_documented_operation_routed(api: AdminAPI) -> None:
    [mount] = api.routes()
    assert isinstance(mount, Mount) and mount.path == "/admin"
    routed = set()
    for route in mount.routes:
        assert isinstance(route, Route)
        routed |= {(route.path, op.method) for op in OPERATIONS if op.path == route.path}
    paths = document()["paths"].items()
    documented = {(path.removeprefix("/admin"), method.upper()) for path, item in paths for method in item}
    assert routed == documented == {(op.path, op.method) for op in OPERATIONS}


async def test_the_served_document_is_the_built_one(api: AdminAPI) -> None:
    async with client_for(api, None) as c:
        response = await c.get("/admin/openapi.json")
    assert response.headers["content-type"] == "application/json" and response.json() == document()


def test_the_checker_refuses_what_the_document_does_not_say(checker: DocumentChecker) -> None:
    error = {"error": {"type": "not_found_error", "message": "no key", "code": "not_found"}}
    checker.check("GET", "/admin/keys/k", 404, "application/json", error)
    with pytest.raises(AssertionError, match="status 409 is not documented"):
        checker.check("GET", "/admin/keys/k", 409, "application/json", error)
    with pytest.raises(AssertionError, match="not in the OpenAPI document"):
        checker.check("PUT", "/admin/keys", 200, "application/json", {})
    with pytest.raises(jsonschema.ValidationError, match="'code' is a required property"):
        checker.check("GET", "/admin/keys/k", 404, "application/json", {"error": {"type": "x", "message": "y"}})
    with pytest.raises(jsonschema.ValidationError, match="is not a 'date-time'"):
        checker.check("POST", "/admin/teams", 201, "application/json", {
            "object": "team", "id": "t", "name": "t", "budgets": [], "rpm": None, "tpm": None, "concurrency": None,
            "metadata": {}, "created_at": "yesterday", "updated_at": "2026-01-01T00:00:00Z",
        })  # fmt: skip


async def test_a_tour_of_every_operation_agrees_with_the_document(
    admin: Admin, tenants: TenantStore, endpoints: EndpointAdmin, requests: RequestStore
) -> None:
    """One call of each operation's success, checked against the document by a checker of its own."""
    checker = DocumentChecker(document())
    await requests.insert_many([request_record(0, None, session_id="s1", error_type="overloaded", status=529)])
    await requests.insert_bodies([BodyRecord(request_id="req_0_None", at=T0, request="{}", response=None)])
    api = AdminAPI(admin, MASTER, endpoints=endpoints)
    async with client_for(api, checker, authorization=f"Bearer {MASTER}") as c:
        await c.post("/admin/teams", json={"name": "t", "budgets": [{"window": "7d", "usd": 5}]})
        await c.get("/admin/teams")
        await c.get("/admin/teams/t")
        await c.patch("/admin/teams/t", json={"rpm": 60})
        await c.post("/admin/keys", json={"name": "k", "team": "t", "budgets": [{"usd": 1}], "ip_limit": 2})
        await c.get("/admin/keys")
        await c.get("/admin/keys/k")
        await c.patch("/admin/keys/k", json={"team": None, "expires_at": "2030-01-01T00:00:00+02:00"})
        await c.get("/admin/keys/k/usage")
        await tenants.update_key("k", quarantined_at=T0, quarantine_reason="abuse")
        await c.post("/admin/keys/k/release")
        await c.post("/admin/keys/k/rotate")
        await c.post("/admin/keys/k/revoke")
        await c.post("/admin/endpoints", json={"name": "app", "keys": ["k"], "models": ["claude-*"]})
        await c.get("/admin/endpoints")
        await c.get("/admin/endpoints/app")
        await c.patch("/admin/endpoints/app", json={"disabled": True, "keys": []})
        await c.get("/admin/usage", params={"group_by": "endpoint_id"})
        await c.delete("/admin/endpoints/app")
        await c.get("/admin/usage", params={"group_by": "team"})
        await c.delete("/admin/teams/t")
        await c.get("/admin/providers")
        await c.get("/admin/requests", params={"errors": "true", "limit": "1"})
        await c.get("/admin/requests/req_0_None")
        await c.get("/admin/sessions")
        await c.get("/admin/sessions/s1")
        await c.get("/admin/openapi.json")
    assert {(op.id, op.status) for op in OPERATIONS} == set(checker.checked)
