"""What the repositories return and take: frozen values, no database types.

Records are plain values so the key cache can hold them across threads and
requests without a session, and so policy code can be tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple, TypedDict

BudgetWindow = Literal["5h", "7d", "month", "total"]
BUDGET_WINDOWS: Final[tuple[BudgetWindow, ...]] = ("5h", "7d", "month", "total")


def storable(text: str) -> str:
    """``text`` as every database takes it: PostgreSQL refuses NUL in text, and one such value
    from a client (a model name, a session id, a body) would fail the writer's whole batch."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def require_aware(value: datetime, what: str) -> datetime:
    """Refuse naive datetimes at the door: a guessed time zone would shift every window."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got a naive one")
    return value


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend limit over one window, in USD, in credits, or both."""

    window: BudgetWindow
    usd: float | None = None
    credits: float | None = None

    def __post_init__(self) -> None:
        if self.window not in BUDGET_WINDOWS:
            raise ValueError(f"budget window must be one of {', '.join(BUDGET_WINDOWS)}, got {self.window!r}")
        if self.usd is None and self.credits is None:
            raise ValueError("a budget needs a limit in usd or in credits")
        for amount in (self.usd, self.credits):
            if amount is not None and amount < 0:
                raise ValueError(f"a budget limit cannot be negative, got {amount}")

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "usd": self.usd, "credits": self.credits}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Budget:
        usd, credits = obj.get("usd"), obj.get("credits")
        return cls(
            window=obj["window"],
            usd=None if usd is None else float(usd),
            credits=None if credits is None else float(credits),
        )


@dataclass(frozen=True, slots=True)
class TeamRecord:
    id: str
    name: str
    budgets: tuple[Budget, ...]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A virtual key as stored: its secret only as a sha256 hex digest and a short hint."""

    id: str
    name: str
    key_hash: str
    hint: str
    team_id: str | None
    models: tuple[str, ...]  # names and patterns; empty allows every model
    expires_at: datetime | None
    revoked_at: datetime | None
    quarantined_at: datetime | None
    quarantine_reason: str | None
    budgets: tuple[Budget, ...]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    max_tokens: int | None
    ip_allow: tuple[str, ...]  # IPs and CIDRs; empty allows every address
    ip_limit: int | None  # most distinct client IPs within ip_window
    ip_window: str | None  # "1h", "24h", …
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime
    #: Claude Code's warm-up calls answered by the gateway (``router.warmup: local``); False
    #: sends this key's upstream like any call.
    intercept_warmup: bool = True
    #: Keep this key's request and answer bodies in the request log (capped, redacted).
    log_bodies: bool = False


class TeamChanges(TypedDict, total=False):
    """Fields an update may set; a field left out keeps its value, ``None`` clears it."""

    name: str
    budgets: Sequence[Budget]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    metadata: Mapping[str, Any]


class KeyChanges(TypedDict, total=False):
    """Fields an update may set; a field left out keeps its value, ``None`` clears it.

    ``key_hash`` and ``hint`` change together (a rotation).
    """

    name: str
    key_hash: str
    hint: str
    team_id: str | None
    models: Sequence[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    quarantined_at: datetime | None
    quarantine_reason: str | None
    budgets: Sequence[Budget]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    max_tokens: int | None
    ip_allow: Sequence[str]
    ip_limit: int | None
    ip_window: str | None
    intercept_warmup: bool
    log_bodies: bool
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """A per-application endpoint: the base URLs ``/v1/<id>/<provider>`` and what they accept."""

    id: str
    name: str
    description: str
    keys: tuple[str, ...]  # key ids it accepts; empty accepts every key
    models: tuple[str, ...]  # names and patterns; empty allows every model
    log_bodies: bool  # keep the bodies of the requests through it in the request log
    disabled_at: datetime | None
    metadata: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


class EndpointChanges(TypedDict, total=False):
    """Fields an update may set; a field left out keeps its value, ``None`` clears it."""

    name: str
    description: str
    keys: Sequence[str]
    models: Sequence[str]
    log_bodies: bool
    disabled_at: datetime | None
    metadata: Mapping[str, Any]


@dataclass(slots=True, kw_only=True)  # not frozen: one is made per request, and a frozen init costs a call per field
class LedgerRow:
    """One request as billed. ``key_id`` is None for the master key."""

    request_id: str
    at: datetime
    key_id: str | None
    team_id: str | None
    door: str
    endpoint: str
    model: str
    served_model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    credits: float = 0.0
    status: int = 200
    latency_ms: int = 0
    #: The per-application endpoint (``/v1/<id>/<provider>``) the request came through.
    endpoint_id: str | None = None


class Spend(NamedTuple):
    """Totals since a time; ``tokens`` is input + output, the measure of token limits."""

    cost_usd: float
    credits: float
    requests: int
    tokens: int


class SpendBucket(NamedTuple):
    """Spend within ``[start, start + bucket_seconds)``, ``start`` in Unix seconds."""

    start: int
    cost_usd: float
    credits: float


#: ``endpoint`` is the API endpoint called (``messages``…); ``endpoint_id`` the per-application endpoint.
UsageGroupBy = Literal["key", "team", "model", "served_model", "provider", "endpoint", "door", "endpoint_id"]


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """One line of a usage report. ``group`` is None for the master key's (or a team-less) line."""

    group: str | None
    name: str | None  # the key's, team's or endpoint's name when grouped by one, if it still exists
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float
    credits: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True, kw_only=True)  # one per request, like LedgerRow: not frozen, for the same reason
class RequestRecord:
    """One request as the request log keeps it: who, what, how it ended, and every upstream call.

    ``attempts`` holds one dict per upstream call: ``provider``, ``model``, ``key_id`` (the
    upstream key's id, never the key), ``passthrough``, ``status``, ``latency_ms``,
    ``error_type``, ``error_message`` and ``upstream_request_id``. ``id`` is the row's id once
    read back (the cursor of a listing), and ``body`` the stored bodies when a read asked for them.
    """

    request_id: str
    at: datetime
    key_id: str | None
    team_id: str | None
    door: str
    endpoint: str
    endpoint_id: str | None = None
    session_id: str | None = None
    model: str | None = None
    served_model: str | None = None
    provider: str | None = None
    stream: bool = False
    status: int = 0
    error_type: str | None = None
    error_message: str | None = None
    stop_reason: str | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: int = 0
    user_agent: str | None = None
    client_ip: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: The last attempt's upstream request id (the one that served, or the last that failed):
    #: what the client saw in ``request-id`` on a passthrough answer, indexed for lookups.
    upstream_request_id: str | None = None
    id: int | None = None
    body: BodyRecord | None = None

    @property
    def failed(self) -> bool:
        return self.status >= 400 or self.error_type is not None


@dataclass(slots=True, kw_only=True)
class BodyRecord:
    """A request's bodies, for a key or endpoint that opted in: capped and redacted before stored."""

    request_id: str
    at: datetime
    request: str
    response: str | None = None
    #: One of the two was cut at ``records.body_max_bytes``.
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """An agent session: the requests of one key that carried one client session id."""

    session_id: str
    key_id: str | None
    first_at: datetime
    last_at: datetime
    requests: int  # turns
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tool_calls: int
    errors: int
    models: tuple[str, ...]

    @property
    def duration_seconds(self) -> float:
        return (self.last_at - self.first_at).total_seconds()

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens
