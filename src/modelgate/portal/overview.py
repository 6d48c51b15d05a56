"""The operator's overview: requests, spend, error rate, latency and time to first token over
time, top keys, models and endpoints.

The ledger gives one bucketed read for the charts (:meth:`LedgerStore.timeline`, latency
percentiles from its histogram) and the usage summaries for the top lists. Time to first token
is the request log's (streams only; :meth:`RequestStore.ttft_timeline`, the same histogram),
and its chart says so when the log is off.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

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
        chosen = request.query_params.get("range", "24h")
        if chosen not in RANGES:
            chosen = "24h"
        span, width = RANGES[chosen]
        now = self.admin.now()
        since = now - span
        buckets = await self.admin.ledger.timeline(since=since, until=now + timedelta(seconds=1), bucket_seconds=width)
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
        ttft = await ttft_context(self.admin, slots, since=since, until=now + timedelta(seconds=1))
        totals = total([traffic for _, traffic in placed])
        keys = await self.admin.usage(since=since, group_by="key")
        models = await self.admin.usage(since=since, group_by="model")
        endpoints = await self.admin.usage(since=since, group_by="endpoint_id")
        return self.templates.render(
            request,
            "overview.html",
            session,
            ranges=list(RANGES),
            chosen=chosen,
            since=since,
            now=now,
            charts=charts,
            totals=totals,
            p50=totals.latency.percentile(0.5),
            p95=totals.latency.percentile(0.95),
            top_keys=_top(keys, by_key=True),
            top_models=_top(models, by_key=False),
            top_endpoints=_top_endpoints(endpoints),
            ttft=ttft,
        )


def _top(groups: list[UsageGroup], *, by_key: bool) -> list[tuple[str | None, str, float, Markup, int]]:
    """The costliest groups: (key id or None, name, spend, share bar, requests)."""
    groups = groups[:TOP]
    if by_key:
        names = [g.name or ("master key" if g.group is None else g.group) for g in groups]
    else:
        names = [g.group or "?" for g in groups]
    bars = share_bars([(name, g.cost_usd) for name, g in zip(names, groups, strict=True)])
    return [
        (g.group if by_key else None, name, g.cost_usd, bar, g.requests)
        for g, (name, _, bar) in zip(groups, bars, strict=True)
    ]


def _top_endpoints(groups: list[UsageGroup]) -> list[tuple[str, str, float, Markup, int]]:
    """The costliest per-application endpoints: (id, name, spend, share bar, requests); the
    traffic of the plain base URL (no endpoint) is left out."""
    groups = [g for g in groups if g.group is not None][:TOP]
    names = [g.name or str(g.group) for g in groups]
    bars = share_bars([(name, g.cost_usd) for name, g in zip(names, groups, strict=True)])
    return [(str(g.group), name, g.cost_usd, bar, g.requests) for g, (name, _, bar) in zip(groups, bars, strict=True)]
