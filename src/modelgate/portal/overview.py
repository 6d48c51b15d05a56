"""The operator's overview: requests, spend, error rate and latency over time, top keys and models.

Everything comes from the ledger: one bucketed read for the charts (:meth:`LedgerStore.timeline`,
latency percentiles from its histogram) and the usage summary for the top lists (keys, models,
endpoints). Time to first token is the request log's (streams only; :func:`~modelgate.portal.logs.ttft_context`,
the same histogram). An endpoint's page shows the same charts for its own traffic (:func:`traffic`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.service import Admin
from modelgate.portal.auth import Session
from modelgate.portal.charts import Slots, bar_chart, line_chart, share_bars
from modelgate.portal.logs import ttft_context
from modelgate.portal.web import Templates, count, ms, percent, usd
from modelgate.store import UsageGroup
from modelgate.store.analytics import total

#: The ranges offered: their span and the width of a chart's bucket.
RANGES: Final = {
    "24h": (timedelta(hours=24), 3600),
    "7d": (timedelta(days=7), 3600 * 6),
    "30d": (timedelta(days=30), 86_400),
}
TOP: Final = 8


class OverviewPage:
    def __init__(self, templates: Templates, admin: Admin) -> None:
        self.templates = templates
        self.admin = admin

    async def page(self, request: Request, session: Session) -> Response:
        context = await traffic(self.admin, request.query_params.get("range", "24h"))
        keys = await self.admin.usage(since=context["since"], group_by="key")
        models = await self.admin.usage(since=context["since"], group_by="model")
        endpoints = await self.admin.usage(since=context["since"], group_by="endpoint_id")
        return self.templates.render(
            request,
            "overview.html",
            session,
            **context,
            top_keys=top(keys, by_key=True),
            top_models=top(models, by_key=False),
            top_endpoints=top(endpoints, by_key=True, nameless="(plain base URL)"),
        )


def chosen_range(value: str | None) -> str:
    return value if value in RANGES else "24h"


async def traffic(admin: Admin, chosen: str | None, *, endpoint_id: str | None = None) -> dict[str, Any]:
    """The charts and totals over a range (``24h``, ``7d``, ``30d``; another is 24 hours), for
    everyone or one endpoint: what ``_traffic.html`` shows."""
    chosen = chosen_range(chosen)
    span, width = RANGES[chosen]
    now = admin.now()
    since = now - span
    buckets = await admin.ledger.timeline(
        since=since, until=now + timedelta(seconds=1), bucket_seconds=width, endpoint_id=endpoint_id
    )
    slots = Slots.covering(since, now, width)
    placed = [(index, bucket.traffic) for bucket in buckets if (index := slots.index(bucket.start)) is not None]
    latency = {
        "p50": {i: p for i, t in placed if (p := t.latency.percentile(0.5)) is not None},
        "p95": {i: p for i, t in placed if (p := t.latency.percentile(0.95)) is not None},
    }
    charts = {
        "requests": bar_chart(slots, {i: t.requests for i, t in placed}, count, "Requests"),
        "spend": bar_chart(slots, {i: t.cost_usd for i, t in placed}, usd, "Spend"),
        "errors": line_chart(slots, {"errors": {i: t.error_rate for i, t in placed}}, percent, "Error rate"),
        "latency": line_chart(slots, latency, ms, "Latency"),
    }
    totals = total([traffic for _, traffic in placed])
    ttft = await ttft_context(admin, slots, since=since, until=now + timedelta(seconds=1), endpoint_id=endpoint_id)
    return {
        "ttft": ttft,
        "ranges": list(RANGES),
        "chosen": chosen,
        "since": since,
        "now": now,
        "charts": charts,
        "totals": totals,
        "p50": totals.latency.percentile(0.5),
        "p95": totals.latency.percentile(0.95),
    }


def top(
    groups: list[UsageGroup], *, by_key: bool, nameless: str = "master key"
) -> list[tuple[str | None, str, float, Markup, int]]:
    """The costliest groups: (id to link to or None, name, spend, share bar, requests). ``by_key``:
    groups of ids with names (keys, endpoints), the rows of none called ``nameless``."""
    groups = groups[:TOP]
    if by_key:
        names = [g.name or (nameless if g.group is None else g.group) for g in groups]
    else:
        names = [g.group or "?" for g in groups]
    bars = share_bars([(name, g.cost_usd) for name, g in zip(names, groups, strict=True)])
    return [
        (g.group if by_key else None, name, g.cost_usd, bar, g.requests)
        for g, (name, _, bar) in zip(groups, bars, strict=True)
    ]
