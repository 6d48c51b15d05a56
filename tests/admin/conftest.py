"""The admin service and API on both store backends, and every API answer checked against the OpenAPI document.

The databases come from the store tests' ``fresh_database`` (a SQLite file, or a
PostgreSQL schema of the module's own; a missing server fails, never skips). The
API runs in process over httpx's ASGI transport; the client's response hook checks
each answer's status and body against the document the API publishes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette

from modelgate.admin import Admin, AdminAPI
from modelgate.admin.endpoints import EndpointAdmin
from modelgate.admin.openapi import document
from modelgate.store import (
    Database,
    EndpointStore,
    LedgerRow,
    LedgerStore,
    RequestRecord,
    RequestStore,
    TenantStore,
    upgrade_database,
)
from modelgate.store.schema import metadata
from tests.store.conftest import BACKENDS, T0, Clock, fresh_database

MASTER = "mg-admin-test-master"
DOC_URI = "urn:modelgate:admin-openapi"


@pytest.fixture(scope="module", params=BACKENDS)
async def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    async with fresh_database(request.param, tmp_path_factory.mktemp("admin")) as db:
        await upgrade_database(db)
        yield db


@pytest.fixture
async def db(migrated: Database) -> Database:
    """The module's database with every table emptied."""
    async with migrated.write() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
    return migrated


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(db: Database) -> LedgerStore:
    return LedgerStore(db)


@pytest.fixture
def tenants(db: Database, clock: Clock) -> TenantStore:
    return TenantStore(db, clock=clock)


@pytest.fixture
def requests(db: Database) -> RequestStore:
    return RequestStore(db)


@pytest.fixture
def admin(tenants: TenantStore, ledger: LedgerStore, requests: RequestStore, clock: Clock) -> Admin:
    return Admin(tenants, ledger, clock=clock, requests=requests)


def ledger_row(seconds: float, key_id: str | None, team_id: str | None = None, **fields: Any) -> LedgerRow:
    """A billed request ``seconds`` after T0 (negative: before)."""
    values: dict[str, Any] = {
        "request_id": f"req_{seconds}_{key_id}",
        "door": "anthropic",
        "endpoint": "messages",
        "model": "sonnet",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": 1.0,
        "credits": 10.0,
    }
    values.update(fields)
    return LedgerRow(at=T0 + timedelta(seconds=seconds), key_id=key_id, team_id=team_id, **values)


def request_record(seconds: float, key_id: str | None, **fields: Any) -> RequestRecord:
    """A recorded request ``seconds`` after T0, with one attempt."""
    attempt = {
        "provider": "anth",
        "model": "claude-sonnet-4-6",
        "key_id": "anth#0",
        "passthrough": True,
        "status": 200,
        "latency_ms": 90,
        "error_type": None,
        "error_message": None,
        "upstream_request_id": None,
    }
    values: dict[str, Any] = {
        "request_id": f"req_{seconds}_{key_id}",
        "team_id": None,
        "door": "anthropic",
        "endpoint": "messages",
        "model": "sonnet",
        "status": 200,
        "attempts": [attempt],
    }
    values.update(fields)
    return RequestRecord(at=T0 + timedelta(seconds=seconds), key_id=key_id, **values)


# the document as a validator of answers


@dataclass
class DocumentChecker:
    """Checks an answer against the document: its path and method documented, its status listed, its body valid."""

    doc: dict[str, Any]

    def __post_init__(self) -> None:
        self.registry: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(self.doc))
        self.templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in self.doc["paths"]
        ]
        self.checked: list[tuple[str, int]] = []

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        template = next((t for pattern, t in self.templates if pattern.match(path)), None)
        assert template is not None, f"{path} is not in the OpenAPI document"
        operation = self.doc["paths"][template].get(method.lower())
        assert operation is not None, f"{method} {template} is not in the OpenAPI document"
        assert str(status) in operation["responses"], f"{method} {template}: status {status} is not documented"
        pointer = "/".join(["#", "paths", _escape(template), method.lower(), "responses", str(status)])
        answer = operation["responses"][str(status)]
        if "$ref" in answer:
            pointer = answer["$ref"]
            answer = self.registry.resolver(DOC_URI).lookup(DOC_URI + pointer).contents
        assert content_type.split(";")[0] in answer["content"], f"{method} {template} {status}: {content_type}"
        schema = {"$ref": f"{DOC_URI}{pointer}/content/application~1json/schema"}
        OAS31Validator(schema, registry=self.registry, format_checker=oas31_format_checker).validate(body)
        self.checked.append((operation["operationId"], status))


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


@pytest.fixture(scope="session")
def checker() -> DocumentChecker:
    return DocumentChecker(document())


@pytest.fixture
def endpoints(db: Database, tenants: TenantStore, clock: Clock) -> EndpointAdmin:
    return EndpointAdmin(EndpointStore(db, clock=clock), tenants)


@pytest.fixture
def api(admin: Admin, endpoints: EndpointAdmin) -> AdminAPI:
    return AdminAPI(admin, MASTER, endpoints=endpoints)


def client_for(api: AdminAPI, checker: DocumentChecker | None, **headers: str) -> httpx.AsyncClient:
    """A client of the API in process; with a checker, every answer must agree with the document."""
    hooks = []
    if checker is not None:

        async def check(response: httpx.Response) -> None:
            await response.aread()
            request, content_type = response.request, response.headers["content-type"]
            checker.check(request.method, request.url.path, response.status_code, content_type, response.json())

        hooks.append(check)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Starlette(routes=api.routes())),
        base_url="http://gateway.test",
        headers=headers,
        event_hooks={"response": hooks},
    )


@pytest.fixture
async def client(api: AdminAPI, checker: DocumentChecker) -> AsyncIterator[httpx.AsyncClient]:
    """The master key's client; its answers are checked against the document."""
    async with client_for(api, checker, authorization=f"Bearer {MASTER}") as c:
        yield c
