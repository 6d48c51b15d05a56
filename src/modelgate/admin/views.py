"""Records as the admin API and ``--json`` show them: the one place that decides what a view holds.

A key's view is built field by field from what may be shown, so a secret or a hash
added to the record later cannot leak by accident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modelgate.admin.endpoints import base_urls, endpoint_status
from modelgate.admin.models import (
    AttemptView,
    BodyView,
    BudgetOut,
    EndpointURLs,
    EndpointView,
    HolderWindows,
    KeyCreated,
    KeyUsage,
    KeyView,
    RequestDetail,
    RequestLimits,
    RequestView,
    SessionView,
    TeamView,
    UsageLine,
    UsageReport,
    WindowView,
)
from modelgate.admin.service import KeyWindows, WindowUsage, key_status
from modelgate.store import (
    Budget,
    EndpointRecord,
    KeyRecord,
    RequestRecord,
    SessionSummary,
    TeamRecord,
    UsageGroup,
    UsageGroupBy,
)

#: Appended to a key's hint wherever it is shown, so nobody takes it for the whole key.
ELLIPSIS = "…"


def shown_hint(key: KeyRecord) -> str:
    return key.hint + ELLIPSIS


def budgets_view(budgets: Sequence[Budget]) -> list[BudgetOut]:
    return [BudgetOut(window=b.window, usd=b.usd, credits=b.credits) for b in budgets]


def team_view(team: TeamRecord) -> TeamView:
    return TeamView(
        id=team.id,
        name=team.name,
        budgets=budgets_view(team.budgets),
        rpm=team.rpm,
        tpm=team.tpm,
        concurrency=team.concurrency,
        metadata=dict(team.metadata),
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


def key_view(key: KeyRecord, team_names: Mapping[str, str], now: datetime) -> KeyView:
    return KeyView(
        id=key.id,
        name=key.name,
        hint=shown_hint(key),
        team_id=key.team_id,
        team=None if key.team_id is None else team_names.get(key.team_id),
        status=key_status(key, now),
        models=list(key.models),
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        quarantined_at=key.quarantined_at,
        quarantine_reason=key.quarantine_reason,
        budgets=budgets_view(key.budgets),
        rpm=key.rpm,
        tpm=key.tpm,
        concurrency=key.concurrency,
        max_tokens=key.max_tokens,
        ip_allow=list(key.ip_allow),
        ip_limit=key.ip_limit,
        ip_window=key.ip_window,
        intercept_warmup=key.intercept_warmup,
        log_bodies=key.log_bodies,
        metadata=dict(key.metadata),
        created_at=key.created_at,
        updated_at=key.updated_at,
    )


def key_created(key: KeyRecord, secret: str, team_names: Mapping[str, str], now: datetime) -> KeyCreated:
    return KeyCreated(**key_view(key, team_names, now).model_dump(), key=secret)


def endpoint_view(endpoint: EndpointRecord, key_names: Mapping[str, str], base: str) -> EndpointView:
    """An endpoint with the base URL of each client under the gateway's ``base`` URL."""
    return EndpointView(
        id=endpoint.id,
        name=endpoint.name,
        description=endpoint.description,
        status=endpoint_status(endpoint),
        keys=list(endpoint.keys),
        key_names=[key_names.get(key_id) for key_id in endpoint.keys],
        models=list(endpoint.models),
        log_bodies=endpoint.log_bodies,
        disabled_at=endpoint.disabled_at,
        urls=EndpointURLs(**base_urls(base, endpoint.id)),
        metadata=dict(endpoint.metadata),
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def usage_line(group: UsageGroup) -> UsageLine:
    return UsageLine(
        group=group.group,
        name=group.name,
        requests=group.requests,
        input_tokens=group.input_tokens,
        output_tokens=group.output_tokens,
        cache_read_tokens=group.cache_read_tokens,
        cache_write_tokens=group.cache_write_tokens,
        reasoning_tokens=group.reasoning_tokens,
        tokens=group.tokens,
        cost_usd=group.cost_usd,
        credits=group.credits,
    )


def usage_report(
    groups: Sequence[UsageGroup],
    *,
    group_by: UsageGroupBy,
    since: datetime | None,
    key: str | None,
    team: str | None,
) -> UsageReport:
    lines = [usage_line(group) for group in groups]
    total = UsageLine(
        group=None,
        name=None,
        requests=sum(line.requests for line in lines),
        input_tokens=sum(line.input_tokens for line in lines),
        output_tokens=sum(line.output_tokens for line in lines),
        cache_read_tokens=sum(line.cache_read_tokens for line in lines),
        cache_write_tokens=sum(line.cache_write_tokens for line in lines),
        reasoning_tokens=sum(line.reasoning_tokens for line in lines),
        tokens=sum(line.tokens for line in lines),
        cost_usd=sum(line.cost_usd for line in lines),
        credits=sum(line.credits for line in lines),
    )
    return UsageReport(group_by=group_by, since=since, key=key, team=team, data=lines, total=total)


def window_view(window: WindowUsage, credit_rate: float | None) -> WindowView:
    show_credits = credit_rate is not None or window.limit_credits is not None
    return WindowView(
        window=window.window,
        since=window.since,
        used_usd=round(window.used_usd, 6),
        limit_usd=window.limit_usd,
        used_credits=round(window.used_credits, 6) if show_credits else None,
        limit_credits=window.limit_credits,
        used_percent=window.used_percent,
        requests=window.requests,
        tokens=window.tokens,
    )


def key_usage(windows: KeyWindows, credit_rate: float | None) -> KeyUsage:
    key, team = windows.key, windows.team
    return KeyUsage(
        at=windows.at,
        status=key_status(key, windows.at),
        key=HolderWindows(
            id=key.id,
            name=key.name,
            windows=[window_view(w, credit_rate) for w in windows.key_windows],
            limits=RequestLimits(rpm=key.rpm, tpm=key.tpm, concurrency=key.concurrency),
        ),
        team=None
        if team is None
        else HolderWindows(
            id=team.id,
            name=team.name,
            windows=[window_view(w, credit_rate) for w in windows.team_windows],
            limits=RequestLimits(rpm=team.rpm, tpm=team.tpm, concurrency=team.concurrency),
        ),
    )


def request_view(record: RequestRecord) -> RequestView:
    return RequestView.model_validate(_request_fields(record))


def request_detail(record: RequestRecord) -> RequestDetail:
    body = record.body
    shown = None if body is None else BodyView(request=body.request, response=body.response, truncated=body.truncated)
    return RequestDetail.model_validate({**_request_fields(record), "body": shown})


def _request_fields(record: RequestRecord) -> dict[str, Any]:
    assert record.id is not None  # a record read back from the store
    return {
        "id": record.id,
        "request_id": record.request_id,
        "at": record.at,
        "key_id": record.key_id,
        "team_id": record.team_id,
        "endpoint_id": record.endpoint_id,
        "session_id": record.session_id,
        "door": record.door,
        "endpoint": record.endpoint,
        "model": record.model,
        "served_model": record.served_model,
        "provider": record.provider,
        "stream": record.stream,
        "status": record.status,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "stop_reason": record.stop_reason,
        "latency_ms": record.latency_ms,
        "ttft_ms": record.ttft_ms,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "reasoning_tokens": record.reasoning_tokens,
        "cost_usd": record.cost_usd,
        "tool_calls": record.tool_calls,
        "user_agent": record.user_agent,
        "client_ip": record.client_ip,
        "upstream_request_id": record.upstream_request_id,
        "attempts": [AttemptView.model_validate(a) for a in record.attempts],
    }


def session_view(session: SessionSummary) -> SessionView:
    return SessionView(
        session_id=session.session_id,
        key_id=session.key_id,
        first_at=session.first_at,
        last_at=session.last_at,
        duration_seconds=session.duration_seconds,
        requests=session.requests,
        cost_usd=session.cost_usd,
        input_tokens=session.input_tokens,
        output_tokens=session.output_tokens,
        cache_read_tokens=session.cache_read_tokens,
        cache_write_tokens=session.cache_write_tokens,
        tool_calls=session.tool_calls,
        errors=session.errors,
        models=list(session.models),
    )
