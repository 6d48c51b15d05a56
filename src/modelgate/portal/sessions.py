"""Agent sessions in the portal: the list, and one session's turns on a time line.

A session is what a coding agent (Claude Code, Codex, Gemini CLI…) did under one client
session id with one key: the store groups the request log by both. The list shows each
session's client (guessed from its user agent), span, turns, spend, tokens, tool calls,
errors and models; a session's page answers "what did this agent session do": its requests
in order, each placed on the session's time line, with links to their traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.service import Admin
from modelgate.portal.auth import Session
from modelgate.portal.logs import LOG_OFF, RANGES, BadFilter, client_kind, install_filters, outcome, span
from modelgate.portal.web import Templates
from modelgate.store import StoreNotFound
from modelgate.store.records import RequestRecord

PAGE: Final = 50


@dataclass(frozen=True, slots=True)
class Turn:
    """One request of a session, placed on the session's time line."""

    number: int
    offset_seconds: float
    record: RequestRecord
    bar: Markup


def turns(records: list[RequestRecord]) -> list[Turn]:
    """The requests in order, each a bar from its start to its end over the session's span."""
    if not records:
        return []
    first = records[0].at
    ends = [(r.at - first).total_seconds() * 1000 + r.latency_ms for r in records]
    total = max(max(ends), 1.0)
    out = []
    for number, record in enumerate(records, 1):
        start = (record.at - first).total_seconds() * 1000
        title = f"turn {number}: {record.model or '?'}, {record.status}, {record.latency_ms} ms"
        out.append(
            Turn(number, start / 1000, record, span(start, record.latency_ms, total, outcome(record.status), title))
        )
    return out


class SessionsPage:
    def __init__(self, templates: Templates, admin: Admin) -> None:
        self.templates = templates
        self.admin = admin
        install_filters(templates)

    async def page(self, request: Request, session: Session) -> Response:
        if self.admin.log is None:
            return self.templates.render(request, "log_off.html", session, message=LOG_OFF, title="Sessions")
        params = request.query_params
        key, endpoint = params.get("key", "").strip(), params.get("endpoint", "").strip()
        chosen = params.get("range", "24h")
        keys = {k.id: k.name for k in await self.admin.list_keys()}
        status_code, problem = 200, None
        try:
            if chosen not in RANGES and chosen != "all":
                raise BadFilter(f"range must be one of {', '.join(RANGES)} or all")
            since = self.admin.now() - RANGES[chosen] if chosen in RANGES else None
            before = _before(params.get("before", ""))
            found = await self.admin.sessions(
                key=key or None, endpoint=endpoint or None, since=since, before=before, limit=PAGE + 1
            )
        except (BadFilter, StoreNotFound) as exc:
            found, status_code, problem = [], 400, str(exc).strip("'\"")
        agents = await self.admin.log.user_agents([s.session_id for s in found[:PAGE]])
        rows = [(s, client_kind(agents.get((s.session_id, s.key_id)))) for s in found[:PAGE]]
        query = {"key": key, "endpoint": endpoint, "range": chosen}
        older = None
        if len(found) > PAGE:
            older = urlencode({**{k: v for k, v in query.items() if v}, "before": found[PAGE - 1].last_at.isoformat()})
        return self.templates.render(
            request,
            "sessions.html",
            session,
            status_code,
            error=problem,
            rows=rows,
            keys=keys,
            key=key,
            endpoint=endpoint,
            chosen=chosen,
            ranges=[*RANGES, "all"],
            older=older,
            paged="before" in params,
            first=urlencode({k: v for k, v in query.items() if v}),
        )

    async def one(self, request: Request, session: Session) -> Response:
        if self.admin.log is None:
            return self.templates.render(request, "log_off.html", session, message=LOG_OFF, title="Sessions")
        session_id = request.path_params["session_id"]
        key = request.query_params.get("key", "").strip() or None
        try:
            records = await self.admin.session(session_id, key=key)
        except StoreNotFound:
            return self.templates.render(
                request, "refused.html", session, 404, message=f"No session {session_id} in the request log."
            )
        keys = {k.id: k.name for k in await self.admin.list_keys()}
        agents = {r.user_agent for r in records if r.user_agent}
        models = sorted({m for r in records if (m := r.served_model or r.model)})
        key_ids = sorted({r.key_id or "" for r in records})
        return self.templates.render(
            request,
            "session.html",
            session,
            session_id=session_id,
            turns=turns(records),
            keys=keys,
            key_ids=key_ids,
            first=records[0].at,
            last=records[-1].at,
            duration=(records[-1].at - records[0].at).total_seconds() + records[-1].latency_ms / 1000,
            spend=sum(r.cost_usd for r in records),
            input_tokens=sum(r.input_tokens for r in records),
            output_tokens=sum(r.output_tokens for r in records),
            tool_calls=sum(r.tool_calls for r in records),
            errors=sum(1 for r in records if r.failed),
            models=models,
            clients=sorted({c for a in agents if (c := client_kind(a))}),
            agents=sorted(agents),
        )


def _before(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadFilter("before must be a time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
