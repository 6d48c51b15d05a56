"""The admin API's bodies and answers as pydantic models: one source for validation and the OpenAPI document.

Request models refuse unknown fields, so a misspelt ``rmp`` is an error and not a
silently missing limit. Answer models are what the views (``views.py``) fill, so the
JSON sent and the schema published cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from modelgate.admin.service import KeyStatus
from modelgate.store import Budget, BudgetWindow
from modelgate.store.schema import NAME_MAX


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as in the CLI); an aware one is kept as the instant it names."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        return value.replace(tzinfo=UTC)
    return value


Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=r"\S")]
Limit = Annotated[int, Field(ge=1)]
When = Annotated[datetime, AfterValidator(_utc)]
GroupBy = Literal["key", "team", "model", "served_model", "provider", "endpoint", "door", "endpoint_id"]
IPWindow = Annotated[str, Field(pattern=r"^[1-9][0-9]*[smhd]$", max_length=16, examples=["24h"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetIn(_Strict):
    """A spend limit over one window, in USD, in credits, or both; the window defaults to lifetime."""

    window: BudgetWindow = "total"
    usd: float | None = Field(default=None, ge=0)
    credits: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _has_a_limit(self) -> BudgetIn:
        if self.usd is None and self.credits is None:
            raise ValueError("a budget needs a limit in usd or in credits")
        return self

    def to_budget(self) -> Budget:
        return Budget(self.window, usd=self.usd, credits=self.credits)


class _Limits(_Strict):
    budgets: list[BudgetIn] = Field(default_factory=list)
    rpm: Limit | None = Field(default=None, description="Requests per minute.")
    tpm: Limit | None = Field(default=None, description="Input + output tokens per minute.")
    concurrency: Limit | None = Field(default=None, description="Requests in flight at once.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class TeamCreate(_Limits):
    name: Name


class KeyCreate(_Limits):
    name: Name
    team: str | None = Field(default=None, description="The team's name or id.")
    max_tokens: Limit | None = Field(default=None, description="The largest max_tokens a request may ask.")
    models: list[str] = Field(default_factory=list, description="Model names and patterns (claude-*); empty: all.")
    expires_at: When | None = Field(default=None, description="ISO 8601; a time without a zone is UTC.")
    ip_allow: list[str] = Field(default_factory=list, description="IP addresses and CIDR ranges; empty: all.")
    ip_limit: Limit | None = Field(default=None, description="Most distinct client IPs within ip_window.")
    ip_window: IPWindow | None = Field(default=None, description="Defaults to 24h when ip_limit is set.")
    intercept_warmup: bool = Field(
        default=True, description="Claude Code's Warmup calls answered by the gateway (router.warmup: local)."
    )
    log_bodies: bool = Field(
        default=False, description="Keep this key's request and answer bodies in the request log (capped, redacted)."
    )


def _refuse_nulls(model: _Patch) -> None:
    for field in model.NOT_NULL:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise ValueError(f"{field} cannot be null")


def _schema_without_nulls(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The published schema of a PATCH body: fields that may be left out but not set to null."""
    for field in getattr(model, "NOT_NULL", ()):
        prop = schema["properties"][field]
        variants = [v for v in prop.pop("anyOf") if v.get("type") != "null"]
        prop.update(variants[0])
        prop.pop("default", None)


class _Patch(_Strict):
    """Fields to change; a field left out keeps its value, null clears a limit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_schema_without_nulls)
    NOT_NULL: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        _refuse_nulls(self)
        return self


class TeamPatch(_Patch):
    """Fields to change; a field left out keeps its value, null clears a limit."""

    NOT_NULL: ClassVar[tuple[str, ...]] = ("name", "budgets", "metadata")

    name: Name | None = None
    budgets: list[BudgetIn] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrency: Limit | None = None
    metadata: dict[str, Any] | None = None


class KeyPatch(_Patch):
    """Fields to change; a field left out keeps its value, null clears a limit (team: leaves its team)."""

    NOT_NULL: ClassVar[tuple[str, ...]] = (
        "name",
        "budgets",
        "models",
        "ip_allow",
        "intercept_warmup",
        "log_bodies",
        "metadata",
    )

    name: Name | None = None
    team: str | None = None
    budgets: list[BudgetIn] | None = None
    rpm: Limit | None = None
    tpm: Limit | None = None
    concurrency: Limit | None = None
    max_tokens: Limit | None = None
    models: list[str] | None = None
    expires_at: When | None = None
    ip_allow: list[str] | None = None
    ip_limit: Limit | None = None
    ip_window: IPWindow | None = None
    intercept_warmup: bool | None = None
    log_bodies: bool | None = None
    metadata: dict[str, Any] | None = None


class EndpointCreate(_Strict):
    name: Name
    description: str = Field(default="", max_length=2000)
    keys: list[str] = Field(default_factory=list, description="Keys it accepts (names or ids); empty: every key.")
    models: list[str] = Field(default_factory=list, description="Model names and patterns (claude-*); empty: all.")
    log_bodies: bool = Field(default=False, description="Keep the bodies of its requests in the request log.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class EndpointPatch(_Patch):
    """Fields to change; a field left out keeps its value. ``disabled`` turns the endpoint off or on."""

    NOT_NULL: ClassVar[tuple[str, ...]] = (
        "name",
        "description",
        "keys",
        "models",
        "log_bodies",
        "disabled",
        "metadata",
    )

    name: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    keys: list[str] | None = None
    models: list[str] | None = None
    log_bodies: bool | None = None
    disabled: bool | None = None
    metadata: dict[str, Any] | None = None


class KeyListQuery(_Strict):
    team: str | None = Field(default=None, description="Only this team's keys (name or id).")


class UsageQuery(_Strict):
    key: str | None = Field(default=None, description="Only this key (name or id).")
    team: str | None = Field(default=None, description="Only this team (name or id).")
    since: When | None = Field(default=None, description="ISO 8601 date or time; without a zone, UTC.")
    group_by: GroupBy = "key"


# answers


class BudgetOut(BaseModel):
    window: BudgetWindow
    usd: float | None
    credits: float | None


class TeamView(BaseModel):
    object: Literal["team"] = "team"
    id: str
    name: str
    budgets: list[BudgetOut]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class TeamList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TeamView]


class TeamDeleted(BaseModel):
    object: Literal["team"] = "team"
    id: str
    name: str
    deleted: Literal[True] = True


class KeyView(BaseModel):
    """A key as anyone may see it: never the secret nor its hash, only the hint (``sk-mg-ab12…``)."""

    object: Literal["key"] = "key"
    id: str
    name: str
    hint: str = Field(description="The key's first characters, to recognise it by.")
    team_id: str | None
    team: str | None = Field(description="The team's name.")
    status: KeyStatus
    models: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    quarantined_at: datetime | None
    quarantine_reason: str | None
    budgets: list[BudgetOut]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    max_tokens: int | None
    ip_allow: list[str]
    ip_limit: int | None
    ip_window: str | None
    intercept_warmup: bool
    log_bodies: bool
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class KeyCreated(KeyView):
    """A key with its secret: the answer to a creation or a rotation, the only time the secret is shown."""

    key: str = Field(description="The secret (sk-mg-…). Not stored; shown only this once.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyView]


class EndpointURLs(BaseModel):
    """The base URL to give each client (SDK or CLI), unchanged."""

    anthropic: str = Field(description="Anthropic SDK, Claude Code (ANTHROPIC_BASE_URL).")
    openai: str = Field(description="OpenAI SDK, Codex (base_url / OPENAI_BASE_URL).")
    gemini: str = Field(description="google-genai, Gemini CLI (GOOGLE_GEMINI_BASE_URL).")


class EndpointView(BaseModel):
    object: Literal["endpoint"] = "endpoint"
    id: str
    name: str
    description: str
    status: Literal["active", "disabled"]
    keys: list[str] = Field(description="Ids of the keys it accepts; empty: every key.")
    key_names: list[str | None] = Field(description="Their names, in the same order (null: a key since deleted).")
    models: list[str]
    log_bodies: bool
    disabled_at: datetime | None
    urls: EndpointURLs
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EndpointView]


class EndpointDeleted(BaseModel):
    object: Literal["endpoint"] = "endpoint"
    id: str
    name: str
    deleted: Literal[True] = True


class UsageLine(BaseModel):
    group: str | None = Field(description="The key's or team's id, the model, …; null for the master key's line.")
    name: str | None = Field(description="The key's, team's or endpoint's name, when grouped by one of them.")
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    tokens: int = Field(description="input + output.")
    cost_usd: float
    credits: float


class UsageReport(BaseModel):
    object: Literal["usage_report"] = "usage_report"
    group_by: GroupBy
    since: datetime | None
    key: str | None
    team: str | None
    data: list[UsageLine]
    total: UsageLine


class WindowView(BaseModel):
    window: BudgetWindow
    since: datetime = Field(description="Where the window starts now (lifetime: 1970-01-01).")
    used_usd: float
    limit_usd: float | None
    used_credits: float | None = Field(description="Null without a credit rate or a budget in credits.")
    limit_credits: float | None
    used_percent: float = Field(ge=0, le=100, description="The fullest of the budget's limits.")
    requests: int
    tokens: int


class RequestLimits(BaseModel):
    rpm: int | None
    tpm: int | None
    concurrency: int | None


class HolderWindows(BaseModel):
    id: str
    name: str
    windows: list[WindowView]
    limits: RequestLimits


class KeyUsage(BaseModel):
    object: Literal["key_usage"] = "key_usage"
    at: datetime
    status: KeyStatus
    key: HolderWindows
    team: HolderWindows | None


class UpstreamKeyState(BaseModel):
    id: str = Field(description="The key's id in its pool (`provider#index`); never the key.")
    state: Literal["ok", "rate_limited", "refused"]
    seconds_left: float | None = Field(default=None, description="Until it is used again, when at rest.")
    remote: bool = Field(default=False, description="Whether another instance put it to rest (shared state).")


class ProviderState(BaseModel):
    name: str
    keys: list[UpstreamKeyState]


class DeploymentState(BaseModel):
    model: str
    provider: str
    upstream_model: str
    state: Literal["closed", "open", "half-open"] = Field(description="The circuit breaker: open = set aside.")
    failures: int = Field(description="Failures in a row that said the upstream is unavailable.")
    seconds_left: float | None = Field(default=None, description="Until an open breaker lets one request try.")
    latency_ms: float | None = Field(default=None, description="The latest latency measured, when measured.")
    remote: bool = Field(default=False, description="Whether another instance opened it (shared state).")


class RoutingStateInfo(BaseModel):
    shared: bool = Field(description="Whether rests and breakers are shared with other instances (Redis).")
    backend: Literal["redis"] | None = Field(default=None, description="Where they are shared.")
    connected: bool | None = Field(default=None, description="Whether this instance follows the shared state now.")


class ProvidersReport(BaseModel):
    object: Literal["providers"] = "providers"
    providers: list[ProviderState]
    deployments: list[DeploymentState]
    routing_state: RoutingStateInfo = Field(default_factory=lambda: RoutingStateInfo(shared=False))


class ErrorBody(BaseModel):
    type: str = Field(examples=["not_found_error"])
    message: str
    code: str = Field(examples=["key_not_found"])


class ErrorEnvelope(BaseModel):
    error: ErrorBody


# the request log


StatusClass = Literal["2xx", "3xx", "4xx", "5xx"]
PageSize = Annotated[int, Field(ge=1, le=500)]


class RequestQuery(_Strict):
    key: str | None = Field(default=None, description="Only this key's requests (name or id).")
    team: str | None = Field(default=None, description="Only this team's (name or id).")
    endpoint: str | None = Field(default=None, description="Only those through this per-application endpoint (id).")
    session: str | None = Field(default=None, description="Only this agent session's.")
    request_id: str | None = Field(
        default=None, description="Only the request of this id: the gateway's (req_…) or the upstream's."
    )
    model: str | None = Field(default=None, description="Only this model, asked or served.")
    status: StatusClass | None = Field(default=None, description="Only this status class.")
    errors: bool = Field(default=False, description="Only failed requests (status 400 and up, or an error).")
    since: When | None = Field(default=None, description="ISO 8601 date or time; without a zone, UTC.")
    until: When | None = Field(default=None, description="Before this time (ISO 8601).")
    before: int | None = Field(default=None, ge=1, description="The next page: the previous page's next_before.")
    limit: PageSize = 50


class SessionQuery(_Strict):
    key: str | None = Field(default=None, description="Only this key's sessions (name or id).")
    endpoint: str | None = Field(default=None, description="Only those through this per-application endpoint (id).")
    since: When | None = Field(default=None, description="Count only the requests from this time on (ISO 8601).")
    before: When | None = Field(default=None, description="The next page: the previous page's next_before.")
    limit: PageSize = 50


class SessionRequestsQuery(_Strict):
    key: str | None = Field(default=None, description="Only this key's session of that id (name or id).")


class AttemptView(BaseModel):
    provider: str
    model: str
    key_id: str | None = Field(description="The upstream key's id (never the key).")
    passthrough: bool
    status: int | None
    latency_ms: int | None
    error_type: str | None
    error_message: str | None
    upstream_request_id: str | None


class RequestView(BaseModel):
    object: Literal["request"] = "request"
    id: int = Field(description="The record's position in the log (the cursor of a listing).")
    request_id: str
    at: datetime
    key_id: str | None = Field(description="Null for the master key.")
    team_id: str | None
    endpoint_id: str | None
    session_id: str | None
    door: str
    endpoint: str
    model: str | None
    served_model: str | None
    provider: str | None
    stream: bool
    status: int
    error_type: str | None
    error_message: str | None
    stop_reason: str | None
    latency_ms: int
    ttft_ms: int | None = Field(description="Arrival to the first byte of a streamed answer.")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float
    tool_calls: int
    user_agent: str | None
    client_ip: str | None
    attempts: list[AttemptView]
    upstream_request_id: str | None = Field(
        description="The last attempt's upstream request id: what the client saw in request-id on a passthrough answer."
    )


class BodyView(BaseModel):
    request: str
    response: str | None
    truncated: bool = Field(description="One of the two was cut at records.body_max_bytes.")


class RequestDetail(RequestView):
    body: BodyView | None = Field(description="Null unless the key or endpoint keeps bodies.")


class RequestList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RequestView]
    next_before: int | None = Field(description="Pass as before for the next page; null on the last.")


class SessionView(BaseModel):
    object: Literal["session"] = "session"
    session_id: str
    key_id: str | None
    first_at: datetime
    last_at: datetime
    duration_seconds: float
    requests: int = Field(description="Turns: the requests of the session.")
    cost_usd: float
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tool_calls: int
    errors: int
    models: list[str]


class SessionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SessionView]
    next_before: datetime | None = Field(description="Pass as before for the next page; null on the last.")


class SessionRequests(BaseModel):
    object: Literal["session_requests"] = "session_requests"
    session_id: str
    data: list[RequestView] = Field(description="The session's requests, in order.")
