"""The admin API's operations, and the OpenAPI 3.1 document made from them.

:data:`OPERATIONS` is the one table of the API: ``api.py`` routes from it and
:func:`document` describes it, with the schemas pydantic makes of the very models
that validate the bodies and build the answers. So an operation cannot be served
without being documented, nor documented with a shape it does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from modelgate.admin.models import (
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointPatch,
    EndpointView,
    ErrorEnvelope,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyListQuery,
    KeyPatch,
    KeyUsage,
    KeyView,
    ProvidersReport,
    RequestDetail,
    RequestList,
    RequestQuery,
    SessionList,
    SessionQuery,
    SessionRequests,
    SessionRequestsQuery,
    TeamCreate,
    TeamDeleted,
    TeamList,
    TeamPatch,
    TeamView,
    UsageQuery,
    UsageReport,
)

PREFIX: Final = "/admin"
Method = Literal["GET", "POST", "PATCH", "DELETE"]

#: Each error status the API answers with: its description in the document.
ERRORS: Final[dict[int, str]] = {
    400: "The body is not a JSON object (invalid_request_error).",
    401: "No master key, or a wrong one (authentication_error).",
    403: "A virtual key: only the master key administers (permission_error).",
    404: "No key, team, endpoint, request or session with that id or name; or the request log is off "
    "(not_found_error).",
    409: "A name already taken, a team that still has keys, a revoked key rotated (conflict_error).",
    422: "A field missing, unknown or out of range (invalid_request_error).",
}
_AUTH: Final = (401, 403)
_REF: Final = (*_AUTH, 404)
_WRITE: Final = (400, *_AUTH, 404, 409, 422)


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path; ``id`` is also the name of the :class:`AdminAPI` handler."""

    id: str
    method: Method
    path: str  # under PREFIX
    summary: str
    status: int
    answer: type[BaseModel] | None  # None: a free-form JSON object
    errors: tuple[int, ...] = _AUTH
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    public: bool = False


OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation("create_key", "POST", "/keys", "Create a key; the answer holds its secret, shown only this once",
              201, KeyCreated, _WRITE, body=KeyCreate),
    Operation("list_keys", "GET", "/keys", "List keys, or a team's", 200, KeyList, (*_REF, 422), query=KeyListQuery),
    Operation("show_key", "GET", "/keys/{ref}", "Show a key (never its secret: only a hint)", 200, KeyView, _REF),
    Operation("update_key", "PATCH", "/keys/{ref}", "Change a key's name, team, budgets or limits",
              200, KeyView, _WRITE, body=KeyPatch),
    Operation("revoke_key", "POST", "/keys/{ref}/revoke", "Revoke a key for good", 200, KeyView, _REF),
    Operation("rotate_key", "POST", "/keys/{ref}/rotate", "A new secret for the same key; the old one stops working",
              200, KeyCreated, (*_REF, 409)),
    Operation("release_key", "POST", "/keys/{ref}/release", "Lift a key's quarantine", 200, KeyView, _REF),
    Operation("key_usage", "GET", "/keys/{ref}/usage", "A key's and its team's budget windows: used, limit, percent",
              200, KeyUsage, _REF),
    Operation("create_team", "POST", "/teams", "Create a team", 201, TeamView, (400, *_AUTH, 409, 422),
              body=TeamCreate),
    Operation("list_teams", "GET", "/teams", "List teams", 200, TeamList),
    Operation("show_team", "GET", "/teams/{ref}", "Show a team", 200, TeamView, _REF),
    Operation("update_team", "PATCH", "/teams/{ref}", "Change a team's name, budgets or limits",
              200, TeamView, _WRITE, body=TeamPatch),
    Operation("delete_team", "DELETE", "/teams/{ref}", "Delete a team no key belongs to", 200, TeamDeleted,
              (*_REF, 409)),
    Operation("create_endpoint", "POST", "/endpoints", "Create a per-application endpoint; the answer holds its base "
              "URLs", 201, EndpointView, _WRITE, body=EndpointCreate),
    Operation("list_endpoints", "GET", "/endpoints", "List endpoints", 200, EndpointList),
    Operation("show_endpoint", "GET", "/endpoints/{ref}", "Show an endpoint and its base URLs", 200, EndpointView,
              _REF),
    Operation("update_endpoint", "PATCH", "/endpoints/{ref}", "Change an endpoint's keys, models, name; disable it",
              200, EndpointView, _WRITE, body=EndpointPatch),
    Operation("delete_endpoint", "DELETE", "/endpoints/{ref}", "Delete an endpoint (its clients get 404)", 200,
              EndpointDeleted, _REF),
    Operation("usage", "GET", "/usage", "Requests, tokens and cost from the ledger, grouped", 200, UsageReport,
              (*_REF, 422), query=UsageQuery),
    Operation("list_requests", "GET", "/requests", "The request log, newest first, filtered, by pages", 200,
              RequestList, (*_REF, 422), query=RequestQuery),
    Operation("show_request", "GET", "/requests/{request_id}", "One request: attempts, timings, tokens, cost, bodies",
              200, RequestDetail, _REF),
    Operation("list_sessions", "GET", "/sessions", "Agent sessions, the latest active first", 200, SessionList,
              (*_REF, 422), query=SessionQuery),
    Operation("show_session", "GET", "/sessions/{session_id}", "One agent session's requests, in order", 200,
              SessionRequests, (*_REF, 422), query=SessionRequestsQuery),
    Operation("providers", "GET", "/providers", "Each upstream key pool and each deployment's health", 200,
              ProvidersReport),
    Operation("openapi", "GET", "/openapi.json", "This document (no key needed)", 200, None, (), public=True),
)  # fmt: skip


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`OPERATIONS` (a new dict at each call)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for op in OPERATIONS:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.answer is not None:
            models.append((op.answer, "serialization"))
    refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelgate admin API",
            "version": _version(),
            "description": "Virtual keys, teams, per-application endpoints, budgets, usage and the request log. "
            "Every operation but this document's takes the master key, as `Authorization: Bearer` or `x-api-key`.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "responses": {
                str(status): {
                    "description": text,
                    "content": {"application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}},
                }
                for status, text in ERRORS.items()
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "The master key."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The master key."},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }


def _operation(op: Operation, refs: Mapping[tuple[Any, JsonSchemaMode], Any]) -> dict[str, Any]:
    answer = {"type": "object"} if op.answer is None else refs[(op.answer, "serialization")]
    spec: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.path.split("/")[1].removesuffix(".json")],
        "responses": {
            str(op.status): {"description": op.summary, "content": {"application/json": {"schema": answer}}},
            **{str(status): {"$ref": f"#/components/responses/{status}"} for status in op.errors},
        },
    }
    parameters: list[dict[str, Any]] = []
    for name, description in _PATH_PARAMETERS.items():
        if "{" + name + "}" in op.path:
            parameter = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            parameters.append({**parameter, "description": description})
    if op.query is not None:
        for name, field in op.query.model_json_schema()["properties"].items():
            description = field.pop("description", None)
            schema = _query_schema(field)
            parameter = {"name": name, "in": "query", "required": False, "schema": schema}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    if parameters:
        spec["parameters"] = parameters
    if op.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.public:
        spec["security"] = []
    return spec


_PATH_PARAMETERS: Final = {
    "ref": "An id or a name.",
    "request_id": "The gateway's request id (req_…) or the upstream's, which a client sees on a passthrough answer.",
    "session_id": "The client's agent session id.",
}


def _query_schema(field: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: never null (a parameter is there or not), a time as any ISO 8601 text."""
    variants = [v for v in field.get("anyOf", [field]) if v.get("type") != "null"]
    schema = {k: v for k, v in variants[0].items() if k not in ("title", "default", "format")}
    if field.get("default") is not None:
        schema["default"] = field["default"]
    return schema


def _version() -> str:
    try:
        return version("modelgate")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "0"
