"""Per-application endpoints: the list, creation and edits, and each endpoint's own page.

Every change goes through :class:`EndpointAdmin` (the admin API's and the CLI's service), then
the gateway's refresh of its caches, so an endpoint made, disabled or deleted here serves or
stops at once on this instance. An endpoint's page shows its traffic over a range (the
overview's charts, filtered to it), its top keys and models, the base URL each client takes
(with a copy button) and the package's client recipes filled in with its URL: the same blocks as
``docs/clients.md``, the key left a placeholder.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.endpoints import EndpointAdmin, base_urls, endpoint_status
from modelgate.admin.service import Admin
from modelgate.portal import forms
from modelgate.portal.auth import Session
from modelgate.portal.overview import RANGES, chosen_range, top, traffic
from modelgate.portal.web import Templates, read_form, redirect
from modelgate.recipes import for_endpoint
from modelgate.store import EndpointRecord, KeyRecord, StoreConflict, StoreNotFound

Page = Callable[[Request, Session], Awaitable[Response]]
NOTICES: Final = {
    "created": "Endpoint created: give its clients the base URLs below.",
    "saved": "Saved.",
    "disabled": "The endpoint is disabled: its clients get 404 until it is enabled again.",
    "enabled": "The endpoint is enabled: it serves its clients again.",
    "deleted": "Endpoint deleted. Its requests stay in the ledger under its id.",
}
#: What each client's base URL is for, in the order :func:`base_urls` gives them.
CLIENT_LABELS: Final = {
    "anthropic": "Anthropic SDK, Claude Code",
    "openai": "OpenAI SDK, Codex, OpenCode",
    "gemini": "google-genai, Gemini CLI",
}


class EndpointPages:
    def __init__(
        self,
        templates: Templates,
        admin: Admin,
        endpoints: EndpointAdmin | None,
        written: Callable[[], Awaitable[None]],
        base_url: Callable[[Request], str],
    ) -> None:
        """``base_url``: the gateway's public base URL as a request sees it (``server.public_url``,
        else the scheme and host the browser used)."""
        self.templates = templates
        self.admin = admin
        self.endpoints = endpoints
        self.written = written
        self.base_url = base_url

    def pages(self) -> list[tuple[str, str, Page]]:
        return [
            ("/endpoints", "GET", self.list_endpoints),
            ("/endpoints", "POST", self.create),
            ("/endpoints/{ref}", "GET", self.show),
            ("/endpoints/{ref}", "POST", self.update),
            ("/endpoints/{ref}/disable", "POST", self.disable),
            ("/endpoints/{ref}/enable", "POST", self.enable),
            ("/endpoints/{ref}/delete", "POST", self.delete),
        ]

    def _service(self) -> EndpointAdmin:
        if self.endpoints is None:
            raise StoreNotFound("this gateway serves no endpoints")
        return self.endpoints

    async def list_endpoints(self, request: Request, session: Session, **context: Any) -> Response:
        try:
            service = self._service()
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        chosen = chosen_range(request.query_params.get("range"))
        since = self.admin.now() - RANGES[chosen][0]
        usage = {g.group: g for g in await self.admin.ledger.summary(since=since, group_by="endpoint_id")}
        names = await service.key_names()
        rows = [
            {
                "endpoint": e,
                "status": endpoint_status(e),
                "key_names": [names.get(k, k) for k in e.keys],
                "usage": usage.get(e.id),
            }
            for e in await service.list_all()
        ]
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        status = context.pop("code", 200)
        context.setdefault("values", {})
        return self.templates.render(
            request, "endpoints.html", session, status, rows=rows, ranges=list(RANGES), chosen=chosen,
            keys=await self._choices(), **context,
        )  # fmt: skip

    async def _choices(self, endpoint: EndpointRecord | None = None) -> list[KeyRecord]:
        """The keys the form offers: every key not revoked, and those the endpoint already lists."""
        listed = set(endpoint.keys) if endpoint is not None else set()
        return [key for key in await self.admin.list_keys() if key.revoked_at is None or key.id in listed]

    async def create(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        try:
            endpoint = await self._service().create(**forms.endpoint_fields(form))
        except (ValueError, StoreConflict, StoreNotFound) as exc:
            values = {**dict(form), "keys": form.getlist("keys")}
            return await self.list_endpoints(request, session, error=str(exc), code=_status(exc), values=values)
        await self.written()
        return redirect(f"/endpoints/{endpoint.id}", done="created")

    async def show(self, request: Request, session: Session, **context: Any) -> Response:
        try:
            service = self._service()
            endpoint = await service.show(_ref(request))
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        charts = await traffic(self.admin, request.query_params.get("range"), endpoint_id=endpoint.id)
        keys = await self.admin.ledger.summary(since=charts["since"], endpoint_id=endpoint.id, group_by="key")
        models = await self.admin.ledger.summary(since=charts["since"], endpoint_id=endpoint.id, group_by="model")
        base = self.base_url(request)
        names = await service.key_names()
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        return self.templates.render(
            request,
            "endpoint.html",
            session,
            context.pop("code", 200),
            endpoint=endpoint,
            status=endpoint_status(endpoint),
            key_names=[names.get(k, k) for k in endpoint.keys],
            urls=[(client, CLIENT_LABELS[client], url) for client, url in base_urls(base, endpoint.id).items()],
            clients=for_endpoint(base, endpoint.id),
            top_keys=top(keys, by_key=True),
            top_models=top(models, by_key=False),
            recent=await self.admin.ledger.recent(endpoint_id=endpoint.id, limit=10),
            keys=await self._choices(endpoint),
            values=_values(endpoint),
            **charts,
            **context,
        )

    async def update(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        try:
            endpoint = await self._service().update(_ref(request), **forms.endpoint_fields(form))
        except (ValueError, StoreConflict, StoreNotFound) as exc:
            return await self.show(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return redirect(f"/endpoints/{endpoint.id}", done="saved")

    async def disable(self, request: Request, session: Session) -> Response:
        return await self._switch(request, session, disabled=True)

    async def enable(self, request: Request, session: Session) -> Response:
        return await self._switch(request, session, disabled=False)

    async def _switch(self, request: Request, session: Session, *, disabled: bool) -> Response:
        try:
            endpoint = await self._service().update(_ref(request), disabled=disabled)
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        await self.written()
        return redirect(f"/endpoints/{endpoint.id}", done="disabled" if disabled else "enabled")

    async def delete(self, request: Request, session: Session) -> Response:
        try:
            await self._service().delete(_ref(request))
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        await self.written()
        return redirect("/endpoints", done="deleted")


def _values(endpoint: EndpointRecord) -> dict[str, Any]:
    """An endpoint's values as its edit form shows them."""
    return {
        "name": endpoint.name,
        "description": endpoint.description,
        "keys": list(endpoint.keys),
        "models": ", ".join(endpoint.models),
        "log_bodies": endpoint.log_bodies,
    }


def _ref(request: Request) -> str:
    return str(request.path_params["ref"])


def _status(exc: Exception) -> int:
    if isinstance(exc, StoreNotFound):
        return 404
    return 409 if isinstance(exc, StoreConflict) else 422
