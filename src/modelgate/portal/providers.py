"""Providers: each deployment's breaker and measured latency (the router's live view) beside its
last 24 hours in the ledger (requests, error rate, p50/p95), and each upstream key's cool-down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.models import ProvidersReport
from modelgate.admin.service import Admin
from modelgate.portal.auth import Session
from modelgate.portal.web import Templates
from modelgate.store.analytics import Traffic

WINDOW: Final = timedelta(hours=24)


class ProvidersPage:
    def __init__(self, templates: Templates, admin: Admin, upstreams: Callable[[], ProvidersReport] | None) -> None:
        self.templates = templates
        self.admin = admin
        self.upstreams = upstreams

    async def page(self, request: Request, session: Session) -> Response:
        report = self.upstreams() if self.upstreams is not None else ProvidersReport(providers=[], deployments=[])
        traffic = {
            (d.provider, d.served_model): d.traffic
            for d in await self.admin.ledger.deployments(since=self.admin.now() - WINDOW)
        }
        deployments = [(d, traffic.get((d.provider, d.upstream_model), Traffic())) for d in report.deployments]
        return self.templates.render(
            request,
            "providers.html",
            session,
            deployments=deployments,
            providers=report.providers,
            routing=report.routing_state,
        )
