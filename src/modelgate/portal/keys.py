"""Keys and teams: lists, creation (the secret shown once), edits, revocation, rotation, release.

Every change goes through :class:`Admin`, then the gateway's key cache refresh, as in the
admin API. A new or rotated secret is rendered straight into the answer to the POST, with
``no-store``, and never redirected to, so it cannot be fetched again from a URL or a cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.service import Admin, key_status
from modelgate.portal import forms
from modelgate.portal.auth import Session
from modelgate.portal.bars import LABELS, team_bars, window_bars
from modelgate.portal.web import Templates, read_form, redirect
from modelgate.store import BUDGET_WINDOWS, KeyRecord, StoreConflict, StoreNotFound, TeamRecord

Page = Callable[[Request, Session], Awaitable[Response]]
#: What ``?done=`` after a redirect tells the operator.
NOTICES: Final = {
    "saved": "Saved.",
    "revoked": "The key is revoked: the gateway refuses it from now on.",
    "released": "The key is out of quarantine.",
    "created": "Team created.",
    "deleted": "Team deleted.",
}


class KeyPages:
    def __init__(self, templates: Templates, admin: Admin, written: Callable[[], Awaitable[None]]) -> None:
        self.templates = templates
        self.admin = admin
        self.written = written

    def pages(self) -> list[tuple[str, str, Page]]:
        return [
            ("/keys", "GET", self.list_keys),
            ("/keys", "POST", self.create_key),
            ("/keys/{ref}", "GET", self.show_key),
            ("/keys/{ref}", "POST", self.update_key),
            ("/keys/{ref}/revoke", "POST", self.revoke_key),
            ("/keys/{ref}/rotate", "POST", self.rotate_key),
            ("/keys/{ref}/release", "POST", self.release_key),
            ("/teams", "GET", self.list_teams),
            ("/teams", "POST", self.create_team),
            ("/teams/{ref}", "GET", self.show_team),
            ("/teams/{ref}", "POST", self.update_team),
            ("/teams/{ref}/delete", "POST", self.delete_team),
        ]

    # keys

    async def list_keys(self, request: Request, session: Session, **context: Any) -> Response:
        keys = await self.admin.list_keys()
        teams = await self.admin.list_teams()
        names = {team.id: team.name for team in teams}
        now = self.admin.now()
        rows = []
        for key in keys:
            _, bars = await window_bars(self.admin, key.id, frees=False)
            team = names.get(key.team_id or "")
            rows.append({"key": key, "team": team, "status": key_status(key, now), "bars": bars})
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        status = context.pop("code", 200)
        form = {**self._form(), **context}
        return self.templates.render(request, "keys.html", session, status, rows=rows, teams=teams, **form)

    async def create_key(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        try:
            key, secret = await self.admin.create_key(**forms.key_fields(form))
        except (ValueError, StoreConflict, StoreNotFound) as exc:
            return await self.list_keys(request, session, error=str(exc), code=_status(exc), values=dict(form))
        await self.written()
        return self.templates.render(request, "secret.html", session, 201, key=key, secret=secret, rotated=False)

    async def show_key(self, request: Request, session: Session, **context: Any) -> Response:
        try:
            windows, bars = await window_bars(self.admin, _ref(request))
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        key = windows.key
        recent = await self.admin.ledger.recent(key_id=key.id, limit=15)
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        return self.templates.render(
            request,
            "key.html",
            session,
            context.pop("code", 200),
            key=key,
            team=windows.team,
            status=key_status(key, windows.at),
            bars=bars,
            recent=recent,
            teams=await self.admin.list_teams(),
            **self._form(key),
            **context,
        )

    async def update_key(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        ref = _ref(request)
        try:
            key = await self.admin.update_key(ref, **forms.key_fields(form))
        except (ValueError, StoreConflict, StoreNotFound) as exc:
            return await self.show_key(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return redirect(f"/keys/{key.id}", done="saved")

    async def revoke_key(self, request: Request, session: Session) -> Response:
        return await self._act(request, session, self.admin.revoke_key, "revoked")

    async def release_key(self, request: Request, session: Session) -> Response:
        return await self._act(request, session, self.admin.release_key, "released")

    async def rotate_key(self, request: Request, session: Session) -> Response:
        try:
            key, secret = await self.admin.rotate_key(_ref(request))
        except (StoreConflict, StoreNotFound) as exc:
            return await self.show_key(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return self.templates.render(request, "secret.html", session, 200, key=key, secret=secret, rotated=True)

    async def _act(
        self, request: Request, session: Session, action: Callable[[str], Awaitable[KeyRecord]], done: str
    ) -> Response:
        try:
            key = await action(_ref(request))
        except (StoreConflict, StoreNotFound) as exc:
            return await self.show_key(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return redirect(f"/keys/{key.id}", done=done)

    # teams

    async def list_teams(self, request: Request, session: Session, **context: Any) -> Response:
        teams = await self.admin.list_teams()
        keys = await self.admin.list_keys()
        members = {team.id: sum(1 for key in keys if key.team_id == team.id) for team in teams}
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        status = context.pop("code", 200)
        form = {**self._form(), **context}
        return self.templates.render(request, "teams.html", session, status, teams=teams, members=members, **form)

    async def create_team(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        try:
            await self.admin.create_team(**forms.team_fields(form))
        except (ValueError, StoreConflict) as exc:
            return await self.list_teams(request, session, error=str(exc), code=_status(exc), values=dict(form))
        await self.written()
        return redirect("/teams", done="created")

    async def show_team(self, request: Request, session: Session, **context: Any) -> Response:
        try:
            team = await self.admin.show_team(_ref(request))
        except StoreNotFound as exc:
            return self.templates.render(request, "refused.html", session, 404, message=str(exc))
        keys = await self.admin.list_keys(team=team.id)
        context.setdefault("notice", NOTICES.get(request.query_params.get("done", "")))
        now = self.admin.now()
        return self.templates.render(
            request, "team.html", session, context.pop("code", 200), team=team, bars=await team_bars(self.admin, team),
            keys=[(key, key_status(key, now)) for key in keys], **self._form(team), **context,
        )  # fmt: skip

    async def update_team(self, request: Request, session: Session) -> Response:
        form = await read_form(request)
        try:
            team = await self.admin.update_team(_ref(request), **forms.team_fields(form))
        except (ValueError, StoreConflict, StoreNotFound) as exc:
            return await self.show_team(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return redirect(f"/teams/{team.id}", done="saved")

    async def delete_team(self, request: Request, session: Session) -> Response:
        try:
            await self.admin.delete_team(_ref(request))
        except (StoreConflict, StoreNotFound) as exc:
            return await self.show_team(request, session, error=str(exc), code=_status(exc))
        await self.written()
        return redirect("/teams", done="deleted")

    # the forms' current values

    @staticmethod
    def _form(record: KeyRecord | TeamRecord | None = None) -> dict[str, Any]:
        """The budget windows with their labels, and a record's values as the form shows them."""
        values: dict[str, Any] = {}
        if record is not None:
            values = {"name": record.name, "rpm": record.rpm, "tpm": record.tpm, "concurrency": record.concurrency}
            for budget in record.budgets:
                values[f"budget_{budget.window}_usd"] = budget.usd
                values[f"budget_{budget.window}_credits"] = budget.credits
            if isinstance(record, KeyRecord):
                values.update(
                    team=record.team_id,
                    max_tokens=record.max_tokens,
                    models=", ".join(record.models),
                    expires_at=record.expires_at.strftime("%Y-%m-%dT%H:%M") if record.expires_at else None,
                )
        return {"windows": [(w, LABELS[w]) for w in BUDGET_WINDOWS], "values": values}


def _ref(request: Request) -> str:
    return str(request.path_params["ref"])


def _status(exc: Exception) -> int:
    if isinstance(exc, StoreNotFound):
        return 404
    return 409 if isinstance(exc, StoreConflict) else 422
