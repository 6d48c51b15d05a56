"""The request log in the portal: a filtered list, newest first, and one request's trace.

The list answers "what went through the gateway" and, filtered to errors, "what failed"; the
trace answers "why did this request fail": its error first, then every upstream attempt on
one time line (first try, retry of the same deployment, fallback to another), its timings,
tokens, cost, client, session and, when the key or endpoint opted in, its bodies (stored
already redacted; escaped here like everything else). A request is found by the gateway's
id or by the upstream's: on a passthrough answer the client saw the upstream's, and that is
the one a user reports. Filters live in the query string: a GET changes nothing, so needs no
CSRF token. Reads go through :class:`~modelgate.admin.Admin` and use the store's keyset
pagination (``before`` = the last row's id).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, cast
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from modelgate.admin.service import Admin
from modelgate.portal.auth import Session
from modelgate.portal.charts import Slots, line_chart
from modelgate.portal.web import Templates, ms
from modelgate.store import StoreNotFound
from modelgate.store.analytics import LatencyHistogram
from modelgate.store.records import RequestRecord

#: Rows per page of the list.
PAGE: Final = 50
#: The time ranges offered, besides everything the log still holds ("all").
RANGES: Final = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "5xx")
StatusClass = Literal["2xx", "3xx", "4xx", "5xx"]
#: The text filters, in the form's order: (query parameter, label).
TEXT_FILTERS: Final = (
    ("key", "Key"),
    ("team", "Team"),
    ("endpoint", "Endpoint"),
    ("session", "Session"),
    ("request_id", "Request id"),  # the gateway's or the upstream's (what a client saw on a passthrough answer)
    ("model", "Model"),
)
LOG_OFF: Final = "The request log is off (records.enabled: false): no request is recorded."


class BadFilter(ValueError):
    """A filter the list cannot apply (shown above the form)."""


@dataclass(slots=True)
class LogFilters:
    """The list's filters as the query string carries them."""

    text: dict[str, str] = field(default_factory=dict)
    status: StatusClass | None = None
    errors: bool = False
    range: str = "24h"
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None

    @staticmethod
    def parse_text(params: Mapping[str, str]) -> dict[str, str]:
        return {name: v.strip() for name, _ in TEXT_FILTERS if (v := params.get(name, "")).strip()}

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> LogFilters:
        found = cls(text=cls.parse_text(params))
        status = params.get("status", "")
        if status and status not in STATUS_CLASSES:
            raise BadFilter(f"status must be one of {', '.join(STATUS_CLASSES)}")
        found.status = cast(StatusClass, status) if status else None
        found.errors = params.get("errors", "") in ("1", "on", "true")
        found.range = params.get("range", "24h")
        if found.range not in RANGES and found.range != "all":
            raise BadFilter(f"range must be one of {', '.join(RANGES)} or all")
        found.since, found.until = _time(params, "since"), _time(params, "until")
        before = params.get("before", "")
        if before:
            if not before.isdigit():
                raise BadFilter("before must be a record's id")
            found.before = int(before)
        return found

    def window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The times asked: ``since``/``until`` when given, else the range up to now."""
        since = self.since
        if since is None and self.range in RANGES:
            since = now - RANGES[self.range]
        return since, self.until

    def query(self, **changes: str | None) -> str:
        """The query string of these filters (no page cursor), with ``changes`` applied."""
        values: dict[str, str | None] = dict(self.text)
        values.update(status=self.status, errors="1" if self.errors else None, range=self.range)
        values.update(since=_stamp(self.since), until=_stamp(self.until))
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    """A ``datetime-local`` field (UTC, as the form says) or an ISO time with its offset."""
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name} must be a time such as 2026-12-04T09:30 (UTC)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _stamp(value: datetime | None) -> str | None:
    """A time as a ``datetime-local`` field shows it (UTC; the seconds only when there are some)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S" if value.second else "%Y-%m-%dT%H:%M")


# the pieces of a trace


def span(start: float, length: float, total: float, kind: str, title: str) -> Markup:
    """A bar on a time line from ``start`` for ``length`` (ms) out of ``total``: an SVG with
    attributes only, as the Content-Security-Policy allows no inline style."""
    total = max(total, 1.0)
    x = min(100.0, max(0.0, 100 * start / total))
    width = max(0.6, min(100.0 - x, 100 * length / total))
    return Markup(
        '<svg class="span" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="{t}">'
        '<title>{t}</title><rect class="span-track" width="100" height="10"/>'
        '<rect class="span-bar span-{k}" x="{x:.2f}" y="1" width="{w:.2f}" height="8" rx="1"/></svg>'
    ).format(t=title, k=kind, x=x, w=width)


def outcome(status: int | None, error: str | None = None) -> str:
    """The colour class of a status: ok, warn (4xx) or bad (5xx, a transport failure, an error)."""
    if status is None or status == 0 or status >= 500:
        return "bad"
    if status >= 400:
        return "warn"
    return "bad" if error else "ok"


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One upstream call as the trace shows it."""

    number: int
    role: str  # first try, next key, retry, fallback
    provider: str
    model: str
    key_id: str
    status: int | None
    latency_ms: int
    error: str | None
    upstream_request_id: str | None
    passthrough: bool
    bar: Markup


def attempt_role(previous: Mapping[str, Any] | None, attempt: Mapping[str, Any]) -> str:
    """What an attempt was to the one before it, in the router's words: the same deployment with
    another upstream key (``next key``), the same model again or at another of its deployments
    (``retry``), or another model (``fallback``). Records written before attempts named their
    model's route compare deployments only."""
    if previous is None:
        return "first try"
    route, before = attempt.get("route"), previous.get("route")
    deployment = attempt.get("provider"), attempt.get("model")
    same_deployment = deployment == (previous.get("provider"), previous.get("model"))
    if same_deployment and attempt.get("key_id") != previous.get("key_id"):
        return "next key"
    if (route is not None and route == before) or (route is None and same_deployment):
        return "retry"
    return "fallback"


def attempt_views(record: RequestRecord) -> list[AttemptView]:
    """The attempts one after the other on the request's time line (the gateway does not record
    when each began: a retry's backoff shows as the gap up to the request's whole latency)."""
    total = float(max(record.latency_ms, sum(int(a.get("latency_ms") or 0) for a in record.attempts), 1))
    views: list[AttemptView] = []
    start, previous = 0.0, None
    for number, attempt in enumerate(record.attempts, 1):
        provider, model = str(attempt.get("provider") or "?"), str(attempt.get("model") or "?")
        latency = int(attempt.get("latency_ms") or 0)
        status = attempt.get("status")
        status = int(status) if isinstance(status, int) else None
        kind, message = attempt.get("error_type"), attempt.get("error_message")
        error = ": ".join(str(p) for p in (kind, message) if p) or None
        role = attempt_role(previous, attempt)
        previous = attempt
        title = f"{provider} {model}: {status if status is not None else 'no answer'}, {latency} ms"
        views.append(
            AttemptView(
                number=number,
                role=role,
                provider=provider,
                model=model,
                key_id=str(attempt.get("key_id") or "—"),
                status=status,
                latency_ms=latency,
                error=error,
                upstream_request_id=attempt.get("upstream_request_id"),
                passthrough=bool(attempt.get("passthrough")),
                bar=span(start, latency, total, outcome(status, error), title),
            )
        )
        start += latency
    return views


def pretty(text: str | None) -> str | None:
    """A stored body, indented when it is JSON (a stream's events are left as they came)."""
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def short(text: str | None, limit: int = 80) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# time to first token, for the overview's charts


@dataclass(frozen=True, slots=True)
class Ttft:
    """Time to first token over a chart's range: the chart (None without a stream) and p50/p95;
    ``off`` when the request log is off (nothing recorded)."""

    chart: Markup | None = None
    p50: float | None = None
    p95: float | None = None
    off: bool = False


async def ttft_context(
    admin: Admin, slots: Slots, *, since: datetime, until: datetime, endpoint_id: str | None = None
) -> Ttft:
    """The TTFT chart (p50 and p95 per slot) and the range's p50/p95, from the request log's
    histogram (streams only); for everyone or one endpoint. No chart (None) when the log is off."""
    if admin.log is None:
        return Ttft(off=True)
    series: dict[str, dict[int, float]] = {"p50": {}, "p95": {}}
    whole = LatencyHistogram()
    buckets = await admin.log.ttft_timeline(
        since=since, until=until, bucket_seconds=slots.seconds, endpoint_id=endpoint_id
    )
    for start, histogram in buckets:
        index = slots.index(start)
        if index is None:
            continue
        for i, n in enumerate(histogram.counts):
            whole.add(i, n)
        for name, q in (("p50", 0.5), ("p95", 0.95)):
            if (p := histogram.percentile(q)) is not None:
                series[name][index] = p
    if whole.total == 0:
        return Ttft()
    return Ttft(line_chart(slots, series, ms, "Time to first token"), whole.percentile(0.5), whole.percentile(0.95))


# the pages


def clock(value: datetime | None) -> str:
    """A record's time to the second (a trace is read at that grain)."""
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def moment(value: datetime | None) -> str:
    """A list's time: to the second, the year left out."""
    return "—" if value is None else value.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def install_filters(templates: Templates) -> None:
    """The request log's filters, on the portal's template environment."""
    templates.env.filters.update(clock=clock, moment=moment, stamp=lambda v: _stamp(v) or "")


class LogsPage:
    def __init__(self, templates: Templates, admin: Admin) -> None:
        self.templates = templates
        self.admin = admin
        install_filters(templates)

    async def page(self, request: Request, session: Session) -> Response:
        if self.admin.log is None:
            return self.templates.render(request, "log_off.html", session, message=LOG_OFF, title="Logs")
        keys = {k.id: k.name for k in await self.admin.list_keys()}
        teams = await self.admin.team_names()
        status_code, problem = 200, None
        try:
            filters = LogFilters.parse(request.query_params)
            since, until = filters.window(self.admin.now())
            text = filters.text
            rows = await self.admin.requests(
                key=text.get("key"),
                team=text.get("team"),
                endpoint=text.get("endpoint"),
                session=text.get("session"),
                request_id=text.get("request_id"),
                model=text.get("model"),
                status=filters.status,
                errors=filters.errors,
                since=since,
                until=until,
                before=filters.before,
                limit=PAGE + 1,
            )
        except (BadFilter, StoreNotFound) as exc:
            filters = LogFilters(text=LogFilters.parse_text(request.query_params))
            rows, status_code, problem = [], 400, _message(exc)
        older = rows[PAGE - 1].id if len(rows) > PAGE else None
        return self.templates.render(
            request,
            "logs.html",
            session,
            status_code,
            error=problem,
            rows=rows[:PAGE],
            filters=filters,
            text_filters=TEXT_FILTERS,
            ranges=[*RANGES, "all"],
            classes=STATUS_CLASSES,
            keys=keys,
            teams=teams,
            older=older,
            short=short,
        )

    async def trace(self, request: Request, session: Session) -> Response:
        if self.admin.log is None:
            return self.templates.render(request, "log_off.html", session, message=LOG_OFF, title="Logs")
        request_id = request.path_params["request_id"]
        try:
            record = await self.admin.request(request_id)
        except StoreNotFound:
            return self.templates.render(
                request, "refused.html", session, 404, message=f"No request {request_id} in the request log."
            )
        key_name = None
        if record.key_id is not None:
            with suppress(StoreNotFound):  # a key deleted since: its id is shown
                key_name = (await self.admin.show_key(record.key_id)).name
        teams = await self.admin.team_names()
        return self.templates.render(
            request,
            "trace.html",
            session,
            r=record,
            attempts=attempt_views(record),
            key_name=key_name,
            team_name=teams.get(record.team_id or "", None),
            client=client_kind(record.user_agent),
            request_body=pretty(record.body.request) if record.body else None,
            response_body=pretty(record.body.response) if record.body else None,
        )


def _message(exc: Exception) -> str:
    text = str(exc)
    return text[1:-1] if isinstance(exc, StoreNotFound) and text.startswith(("'", '"')) else text


#: User-agent prefixes of the clients the gateway's recipes cover, and what to call each.
CLIENTS: Final[Sequence[tuple[str, str]]] = (
    ("claude-cli", "Claude Code"),
    ("claude-code", "Claude Code"),
    ("codex", "Codex CLI"),
    ("geminicli", "Gemini CLI"),
    ("gemini-cli", "Gemini CLI"),
    ("opencode", "OpenCode"),
    ("anthropic/", "Anthropic SDK"),
    ("asyncanthropic/", "Anthropic SDK"),
    ("openai/", "OpenAI SDK"),
    ("asyncopenai/", "OpenAI SDK"),
    ("google-genai", "google-genai"),
    ("curl/", "curl"),
    ("python-httpx/", "httpx"),
    ("mozilla/", "a browser"),
)


def client_kind(user_agent: str | None) -> str | None:
    """The client's name guessed from its user agent (None when it is none of the known ones)."""
    if not user_agent:
        return None
    lowered = user_agent.lower()
    for marker, name in CLIENTS:
        if marker in lowered:
            return name
    return None


__all__ = ["LogFilters", "LogsPage", "attempt_views", "client_kind", "span"]
