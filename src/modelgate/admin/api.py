"""The admin REST API under ``/admin``: keys, teams, endpoints, usage and the request log, for the master key only.

Routes come from ``openapi.OPERATIONS``, one Starlette route per path that picks the
operation by method, so an unknown method or path answers in the same error envelope
as everything else (after authentication: a caller without the master key learns
nothing of what exists). The store's errors become statuses here: ``StoreNotFound``
404, ``StoreConflict`` 409, a value the service refuses 422.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, cast

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from modelgate.admin import views
from modelgate.admin.endpoints import EndpointAdmin, EndpointUpdate
from modelgate.admin.models import (
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointPatch,
    ErrorBody,
    ErrorEnvelope,
    KeyCreate,
    KeyList,
    KeyListQuery,
    KeyPatch,
    ProvidersReport,
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
    UsageQuery,
)
from modelgate.admin.openapi import OPERATIONS, PREFIX, Operation, document
from modelgate.admin.service import Admin, KeyUpdate
from modelgate.errors import AuthenticationFailed
from modelgate.policy.auth import MasterKeyAuthenticator, bearer
from modelgate.policy.keys import is_virtual
from modelgate.store import StoreConflict, StoreNotFound, TeamChanges

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[BaseModel | Response]]
JSON: Final = "application/json"
#: Each path's route takes every method and answers 405 itself, in the envelope.
_EVERY_METHOD: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Refusal(Exception):
    """An answer other than success, in the admin API's envelope."""

    def __init__(self, status: int, type: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.message = status, type, code, message
        self.headers: dict[str, str] = {"www-authenticate": "Bearer"} if status == 401 else {}

    def response(self) -> Response:
        body = ErrorEnvelope(error=ErrorBody(type=self.type, message=self.message, code=self.code))
        return Response(body.model_dump_json(), self.status, headers=self.headers, media_type=JSON)


class AdminAPI:
    """The admin API over :class:`Admin`, for callers holding ``master_key``.

    :meth:`routes` answers one ``Mount("/admin")``: add it to the application's routes.
    """

    def __init__(
        self,
        admin: Admin,
        master_key: str,
        after_write: Callable[[], Awaitable[None]] | None = None,
        upstreams: Callable[[], ProvidersReport] | None = None,
        endpoints: EndpointAdmin | None = None,
        public_url: str | None = None,
    ) -> None:
        """``after_write`` runs after every successful change (the gateway refreshes its key
        and endpoint caches then, so a key made or revoked here takes effect on this instance
        at once); ``upstreams`` reports the router's state of the providers (none: an empty
        report); ``endpoints`` serves ``/admin/endpoints`` (none: those answer 404), whose
        base URLs start with ``public_url``, else with the URL the request came to."""
        if not master_key:
            raise ValueError("the admin API needs a master key: without one it would be open to anyone")
        self.admin = admin
        self._auth = MasterKeyAuthenticator(master_key)
        self._openapi = orjson.dumps(document())
        self._handlers: dict[str, Handler] = {op.id: getattr(self, op.id) for op in OPERATIONS}
        self._after_write = after_write
        self._upstreams = upstreams
        self._endpoints = endpoints
        self._public_url = public_url

    def routes(self) -> list[BaseRoute]:
        by_path: dict[str, dict[str, Operation]] = {}
        for op in OPERATIONS:
            by_path.setdefault(op.path, {})[op.method] = op
        router = Router(
            routes=[Route(path, self._endpoint(ops), methods=_EVERY_METHOD) for path, ops in by_path.items()],
            redirect_slashes=False,
            default=self._unknown_path,
        )
        return [Mount(PREFIX, app=router)]

    # the frame around every operation

    def _endpoint(self, ops: dict[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            op = ops.get(request.method)
            try:
                if op is None or not op.public:
                    await self._authenticate(request)
                if op is None:
                    allowed = ", ".join(sorted(ops))
                    message = f"{request.method} is not allowed here: {allowed}"
                    refusal = Refusal(405, "invalid_request_error", "method_not_allowed", message)
                    refusal.headers["allow"] = allowed
                    raise refusal
                answer = await self._handlers[op.id](request)
                if op.method != "GET" and self._after_write is not None:
                    await self._after_write()
            except Refusal as refusal:
                return refusal.response()
            except ValidationError as exc:
                return Refusal(422, "invalid_request_error", "validation_error", _explain(exc)).response()
            except StoreNotFound as exc:
                return Refusal(404, "not_found_error", "not_found", str(exc)).response()
            except StoreConflict as exc:
                return Refusal(409, "conflict_error", "conflict", str(exc)).response()
            except ValueError as exc:
                return Refusal(422, "invalid_request_error", "validation_error", str(exc)).response()
            if isinstance(answer, Response):
                return answer
            return Response(answer.model_dump_json(), op.status, media_type=JSON)

        return endpoint

    async def _unknown_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            await self._authenticate(request)
            raise Refusal(404, "not_found_error", "unknown_path", f"no admin operation at {request.url.path}")
        except Refusal as refusal:
            await refusal.response()(scope, receive, send)

    async def _authenticate(self, request: Request) -> None:
        """The master key, from ``x-api-key`` or ``Authorization: Bearer``; a virtual key is refused apart."""
        credentials = [c for c in (request.headers.get("x-api-key"), bearer(request.headers.get("authorization"))) if c]
        try:
            await self._auth.authenticate(credentials)
        except AuthenticationFailed:
            if not credentials:
                raise Refusal(
                    401,
                    "authentication_error",
                    "missing_api_key",
                    "the admin API needs the master key, as Authorization: Bearer or x-api-key",
                ) from None
            if any(is_virtual(c) for c in credentials):
                raise Refusal(
                    403,
                    "permission_error",
                    "master_key_required",
                    "a virtual key cannot administer: the admin API takes the master key only",
                ) from None
            raise Refusal(401, "authentication_error", "invalid_api_key", "invalid master key") from None

    # keys

    async def create_key(self, request: Request) -> BaseModel:
        body = await _body(request, KeyCreate)
        key, secret = await self.admin.create_key(
            body.name,
            team=body.team,
            budgets=[b.to_budget() for b in body.budgets],
            rpm=body.rpm,
            tpm=body.tpm,
            concurrency=body.concurrency,
            max_tokens=body.max_tokens,
            models=body.models,
            expires_at=body.expires_at,
            ip_allow=body.ip_allow,
            ip_limit=body.ip_limit,
            ip_window=body.ip_window,
            intercept_warmup=body.intercept_warmup,
            log_bodies=body.log_bodies,
            metadata=body.metadata,
        )
        return views.key_created(key, secret, await self.admin.team_names(), self.admin.now())

    async def list_keys(self, request: Request) -> BaseModel:
        query = _query(request, KeyListQuery)
        keys = await self.admin.list_keys(team=query.team)
        names, now = await self.admin.team_names(), self.admin.now()
        return KeyList(data=[views.key_view(key, names, now) for key in keys])

    async def show_key(self, request: Request) -> BaseModel:
        key = await self.admin.show_key(_ref(request))
        return views.key_view(key, await self.admin.team_names(), self.admin.now())

    async def update_key(self, request: Request) -> BaseModel:
        body = await _body(request, KeyPatch)
        changes = body.model_dump(include=body.model_fields_set, exclude={"budgets"})
        if "budgets" in body.model_fields_set:
            changes["budgets"] = [b.to_budget() for b in body.budgets or ()]
        key = await self.admin.update_key(_ref(request), **cast(KeyUpdate, changes))  # KeyPatch mirrors it
        return views.key_view(key, await self.admin.team_names(), self.admin.now())

    async def revoke_key(self, request: Request) -> BaseModel:
        key = await self.admin.revoke_key(_ref(request))
        return views.key_view(key, await self.admin.team_names(), self.admin.now())

    async def rotate_key(self, request: Request) -> BaseModel:
        key, secret = await self.admin.rotate_key(_ref(request))
        return views.key_created(key, secret, await self.admin.team_names(), self.admin.now())

    async def release_key(self, request: Request) -> BaseModel:
        key = await self.admin.release_key(_ref(request))
        return views.key_view(key, await self.admin.team_names(), self.admin.now())

    async def key_usage(self, request: Request) -> BaseModel:
        return views.key_usage(await self.admin.windows(_ref(request)), self.admin.credit_rate)

    # teams

    async def create_team(self, request: Request) -> BaseModel:
        body = await _body(request, TeamCreate)
        team = await self.admin.create_team(
            body.name,
            budgets=[b.to_budget() for b in body.budgets],
            rpm=body.rpm,
            tpm=body.tpm,
            concurrency=body.concurrency,
            metadata=body.metadata,
        )
        return views.team_view(team)

    async def list_teams(self, request: Request) -> BaseModel:
        return TeamList(data=[views.team_view(team) for team in await self.admin.list_teams()])

    async def show_team(self, request: Request) -> BaseModel:
        return views.team_view(await self.admin.show_team(_ref(request)))

    async def update_team(self, request: Request) -> BaseModel:
        body = await _body(request, TeamPatch)
        changes = body.model_dump(include=body.model_fields_set, exclude={"budgets"})
        if "budgets" in body.model_fields_set:
            changes["budgets"] = [b.to_budget() for b in body.budgets or ()]
        team = await self.admin.update_team(_ref(request), **cast(TeamChanges, changes))  # TeamPatch mirrors it
        return views.team_view(team)

    async def delete_team(self, request: Request) -> BaseModel:
        team = await self.admin.delete_team(_ref(request))
        return TeamDeleted(id=team.id, name=team.name)

    # per-application endpoints

    def _endpoint_admin(self) -> EndpointAdmin:
        if self._endpoints is None:
            raise Refusal(404, "not_found_error", "unknown_path", "this gateway serves no endpoints")
        return self._endpoints

    def _base(self, request: Request) -> str:
        """Where clients reach the gateway: the configured public URL, else this request's own."""
        return self._public_url or str(request.base_url)

    async def create_endpoint(self, request: Request) -> BaseModel:
        endpoints = self._endpoint_admin()
        body = await _body(request, EndpointCreate)
        endpoint = await endpoints.create(
            body.name,
            description=body.description,
            keys=body.keys,
            models=body.models,
            log_bodies=body.log_bodies,
            metadata=body.metadata,
        )
        return views.endpoint_view(endpoint, await endpoints.key_names(), self._base(request))

    async def list_endpoints(self, request: Request) -> BaseModel:
        endpoints = self._endpoint_admin()
        names, base = await endpoints.key_names(), self._base(request)
        return EndpointList(data=[views.endpoint_view(e, names, base) for e in await endpoints.list_all()])

    async def show_endpoint(self, request: Request) -> BaseModel:
        endpoints = self._endpoint_admin()
        endpoint = await endpoints.show(_ref(request))
        return views.endpoint_view(endpoint, await endpoints.key_names(), self._base(request))

    async def update_endpoint(self, request: Request) -> BaseModel:
        endpoints = self._endpoint_admin()
        body = await _body(request, EndpointPatch)
        changes = body.model_dump(include=body.model_fields_set)
        endpoint = await endpoints.update(_ref(request), **cast(EndpointUpdate, changes))  # EndpointPatch mirrors it
        return views.endpoint_view(endpoint, await endpoints.key_names(), self._base(request))

    async def delete_endpoint(self, request: Request) -> BaseModel:
        endpoint = await self._endpoint_admin().delete(_ref(request))
        return EndpointDeleted(id=endpoint.id, name=endpoint.name)

    # usage, and this API's description

    async def usage(self, request: Request) -> BaseModel:
        query = _query(request, UsageQuery)
        groups = await self.admin.usage(key=query.key, team=query.team, since=query.since, group_by=query.group_by)
        return views.usage_report(groups, group_by=query.group_by, since=query.since, key=query.key, team=query.team)

    # the request log

    async def list_requests(self, request: Request) -> BaseModel:
        q = _query(request, RequestQuery)
        records = await self.admin.requests(
            key=q.key,
            team=q.team,
            endpoint=q.endpoint,
            session=q.session,
            request_id=q.request_id,
            model=q.model,
            status=q.status,
            errors=q.errors,
            since=q.since,
            until=q.until,
            before=q.before,
            limit=q.limit,
        )
        last = records[-1].id if len(records) == q.limit else None
        return RequestList(data=[views.request_view(r) for r in records], next_before=last)

    async def show_request(self, request: Request) -> BaseModel:
        return views.request_detail(await self.admin.request(str(request.path_params["request_id"])))

    async def list_sessions(self, request: Request) -> BaseModel:
        q = _query(request, SessionQuery)
        found = await self.admin.sessions(key=q.key, endpoint=q.endpoint, since=q.since, before=q.before, limit=q.limit)
        last = found[-1].last_at if len(found) == q.limit else None
        return SessionList(data=[views.session_view(s) for s in found], next_before=last)

    async def show_session(self, request: Request) -> BaseModel:
        session_id = str(request.path_params["session_id"])
        records = await self.admin.session(session_id, key=_query(request, SessionRequestsQuery).key)
        return SessionRequests(session_id=session_id, data=[views.request_view(r) for r in records])

    async def providers(self, request: Request) -> BaseModel:
        if self._upstreams is None:
            return ProvidersReport(providers=[], deployments=[])
        return self._upstreams()

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type=JSON)


def _ref(request: Request) -> str:
    return str(request.path_params["ref"])


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, "invalid_request_error", "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refusal(400, "invalid_request_error", "invalid_json", "the body must be a JSON object")
    return model.model_validate(data)


def _query(request: Request, model: type[M]) -> M:
    return model.model_validate(dict(request.query_params))


def _explain(exc: ValidationError) -> str:
    """pydantic's errors in one line, each with the field it concerns: ``rpm: …; team: …``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
