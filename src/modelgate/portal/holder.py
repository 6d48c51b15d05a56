"""A key holder's own page: the key's and its team's bars per window, when each frees, its
request limits, its spend over the last week and its recent requests: from the request log
(status, latency, time to first token, the error), or the ledger's rows when the log is off.
Only the key's own: every read is filtered by the session's key id."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.service import Admin, key_status
from modelgate.portal.auth import Session
from modelgate.portal.bars import window_bars
from modelgate.portal.charts import Slots, bar_chart
from modelgate.portal.web import Templates, usd
from modelgate.store.analytics import total


class HolderPage:
    def __init__(self, templates: Templates, admin: Admin) -> None:
        self.templates = templates
        self.admin = admin

    async def page(self, request: Request, session: Session) -> Response:
        assert session.key_id is not None  # the guard lets only a holder's session in
        windows, bars = await window_bars(self.admin, session.key_id)
        key = windows.key
        now = windows.at
        since = now - timedelta(days=7)
        buckets = await self.admin.ledger.timeline(
            since=since, until=now + timedelta(seconds=1), bucket_seconds=86_400, key_id=key.id
        )
        slots = Slots.covering(since, now, 86_400)
        spend = {i: b.traffic.cost_usd for b in buckets if (i := slots.index(b.start)) is not None}
        return self.templates.render(
            request,
            "me.html",
            session,
            key=key,
            team=windows.team,
            status=key_status(key, now),
            bars=bars,
            week=total([b.traffic for b in buckets]),
            chart=bar_chart(slots, spend, usd, "Spend per day"),
            recent=await self.admin.ledger.recent(key_id=key.id, limit=20) if self.admin.log is None else [],
            logged=await self.admin.log.list(key_id=key.id, limit=20) if self.admin.log is not None else None,
        )
