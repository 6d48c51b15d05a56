"""Configuration: the schema, YAML loading, ``${ENV}`` interpolation and validation.

A wrong config must fail at start with the file, the field path and what is
wrong, so validation errors are flattened into :class:`ConfigError` lines such
as ``modelgate.yaml: providers.0.type: Input should be 'anthropic', …``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ProviderType = Literal["anthropic", "openai", "gemini", "openai-compatible"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
}

#: Models served out of the box when a provider comes from the environment.
WELL_KNOWN_MODELS: dict[str, list[str]] = {
    "anthropic": [
        "claude-opus-4-5",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5",
        "claude-haiku-4-5",
        "claude-opus-4-1",
        "claude-sonnet-4-0",
        "claude-3-5-haiku-latest",
    ],
    "gemini": ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"],
    "openai": [
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4o",
        "gpt-4o-mini",
        "o3",
        "o4-mini",
    ],
}
#: Name patterns routed to an environment provider, so new model ids work without a release.
WELL_KNOWN_PATTERNS: dict[str, list[str]] = {
    "anthropic": ["claude-*"],
    "openai": ["gpt-*", "o1*", "o3*", "o4*", "chatgpt-*"],
    "gemini": ["gemini-*"],
}


class ConfigError(Exception):
    """A config that cannot be used; ``str()`` gives one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Strict):
    name: str = Field(min_length=1)
    type: ProviderType
    base_url: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    #: Seconds to wait for a TCP connection to the upstream.
    connect_timeout: float = Field(default=10.0, gt=0)
    #: Seconds of silence from the upstream (between bytes) before giving up: a whole
    #: answer's, and a stream's when ``idle_timeout`` is not set.
    read_timeout: float = Field(default=600.0, gt=0)
    #: Seconds a streamed answer may take to send its status line before the attempt fails
    #: with a timeout (and is retried or falls back): an upstream that accepts and then sends
    #: nothing is found in seconds, not after ``read_timeout``. (A whole answer comes with its
    #: status line, so it has ``read_timeout`` — unless ``force_stream`` sends it as a stream.)
    first_byte_timeout: float = Field(default=60.0, gt=0)
    #: Seconds of silence allowed in a stream once its status line has come: before its
    #: first event and between two chunks (None: ``read_timeout``). A stream that stalls
    #: longer is cut (a timeout: retried when nothing has reached the client yet).
    idle_timeout: float | None = Field(default=None, gt=0)
    #: Seconds one upstream call may last in all, from sending the request to the last byte
    #: of the answer (None: no limit; a long generation may take many minutes).
    total_timeout: float | None = Field(default=None, gt=0)
    #: Send a non-streamed generation upstream as a stream and collect it into the whole
    #: answer, so that ``first_byte_timeout`` and ``idle_timeout`` find a hung upstream
    #: while a long generation still completes. None: the provider kind's default (on for
    #: ``anthropic``, off for the others).
    force_stream: bool | None = None
    #: Extra headers sent on every upstream request (e.g. an org id).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Let clients bring their own key for this provider (BYOK): sent in the header
    #: ``x-modelgate-key-<name>``, used for that request only, never stored or logged.
    byok: bool = False

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, v: list[str]) -> list[str]:
        if any(not k.strip() for k in v):
            raise ValueError("an API key is empty (is its environment variable set?)")
        return v

    @property
    def url(self) -> str:
        """The base URL, written the way the provider's own SDK takes it."""
        if self.base_url:
            return self.base_url
        if self.type not in DEFAULT_BASE_URLS:
            raise ValueError(f"provider {self.name!r} of type {self.type} needs a base_url")
        return DEFAULT_BASE_URLS[self.type]


class PricingConfig(_Strict):
    """USD per million tokens."""

    input: float = Field(default=0.0, ge=0)
    output: float = Field(default=0.0, ge=0)
    cache_read: float = Field(default=0.0, ge=0)
    cache_write: float = Field(default=0.0, ge=0)
    #: Reasoning tokens, where a provider bills them apart from output (default: the output price).
    reasoning: float | None = Field(default=None, ge=0)


class TenancyConfig(_Strict):
    """Virtual keys, budgets and limits: how they are kept and enforced."""

    #: Seconds between two polls of the store for changed keys and teams: a new, revoked or
    #: changed key takes effect on every instance within this delay.
    key_refresh_seconds: float = Field(default=2.0, gt=0)
    #: Credits per USD, for budgets kept in credits (an internal billing unit).
    credit_rate: float | None = Field(default=None, gt=0)
    #: Proxies (IPs or CIDRs) whose ``X-Forwarded-For`` names the client; otherwise the
    #: client IP is the socket's.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Distinct client IPs seen for one key within its IP window at which the key is
    #: quarantined until an admin releases it (None: never).
    quarantine_ips: int | None = Field(default=None, gt=0)
    #: How often, and in batches of how many rows, the ledger is written.
    ledger_flush_seconds: float = Field(default=1.0, gt=0)
    ledger_batch: int = Field(default=500, gt=0)


class RecordsConfig(_Strict):
    """The request log: one record per request in the store (docs/operations.md, "Request log")."""

    #: Keep a record of every authenticated request (off: only the ledger and the log line).
    enabled: bool = True
    #: Days a record is kept; None keeps them forever.
    retention_days: float | None = Field(default=30, gt=0)
    #: Days stored bodies (keys and endpoints with ``log_bodies``) are kept; None: as long as
    #: the records.
    bodies_retention_days: float | None = Field(default=7, gt=0)
    #: Bytes kept of each body (the request, the answer); the rest is cut.
    body_max_bytes: int = Field(default=64 * 1024, gt=0)
    #: Seconds between two prunings of what is older than the retention.
    prune_interval_seconds: float = Field(default=3600, gt=0)


class DeploymentConfig(_Strict):
    """One upstream that serves a model: a provider and the model id it knows."""

    provider: str
    #: The model id sent upstream; defaults to the requested name.
    upstream_model: str | None = None
    #: Share of the traffic among the deployments of the same priority.
    weight: float = Field(default=1.0, gt=0)
    #: Deployments are tried lowest first; weights split the traffic among equals.
    priority: int = 0


class ModelConfig(_Strict):
    #: The name clients ask for; a trailing ``*`` makes it a prefix pattern.
    name: str = Field(min_length=1)
    #: The one provider that serves the model (or ``deployments`` for several).
    provider: str | None = None
    #: The model id sent upstream; defaults to the requested name.
    upstream_model: str | None = None
    display_name: str | None = None
    #: For ``openai`` providers: the API that serves the model (``chat`` by default,
    #: ``responses`` for models only the Responses API serves).
    api: Literal["chat", "responses"] | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    #: Overrides the built-in price of the model's family (``accounting/pricing.py``).
    pricing: PricingConfig | None = None
    #: Limits on the model for all callers together: requests and tokens (input + output) per minute.
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    #: The largest ``max_tokens`` a request may ask of this model (400 ``max_tokens_too_large`` above).
    max_tokens_cap: int | None = Field(default=None, gt=0)
    # -- routing: several upstreams for one name, and where to go when they all fail
    deployments: tuple[DeploymentConfig, ...] = ()
    #: Other model names tried in order when every deployment failed with an error of a
    #: class in ``router.fallback_on``.
    fallbacks: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_way_to_serve(self) -> ModelConfig:
        if self.deployments and (self.provider is not None or self.upstream_model is not None):
            raise ValueError("give either provider (and upstream_model) or deployments, not both")
        if not self.deployments and self.provider is None:
            raise ValueError("provider: Field required (or deployments)")
        return self

    @property
    def targets(self) -> tuple[DeploymentConfig, ...]:
        """The deployments that serve the model: the list, or the one of ``provider``."""
        if self.deployments:
            return self.deployments
        assert self.provider is not None
        return (DeploymentConfig(provider=self.provider, upstream_model=self.upstream_model),)

    @property
    def primary(self) -> DeploymentConfig:
        """The deployment catalogs describe the model by (the first, lowest priority)."""
        return min(self.targets, key=lambda d: d.priority)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    data_dir: str = "./data"
    #: Largest request body accepted, in bytes (Anthropic's own limit is 32 MB).
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    #: Seconds of upstream silence after which a translated stream sends its client a ping.
    stream_ping_interval: float = Field(default=10.0, gt=0)
    #: Level of the one log line each request writes when it settles (``off``: none).
    request_log_level: Literal["debug", "info", "warning", "off"] = "info"
    #: ``text`` lines, or one JSON object per line with the request id on each
    #: (``observability/logs.py``).
    log_format: Literal["text", "json"] = "text"
    #: The store of keys, teams and the ledger: a SQLite file in ``data_dir`` by default,
    #: ``postgresql://…`` for several instances (``$MODELGATE_DATABASE_URL``).
    database_url: str | None = None
    #: Redis for limits shared by several processes or instances (``$MODELGATE_REDIS_URL``);
    #: counters are kept in process otherwise.
    redis_url: str | None = None
    #: The URL clients reach the gateway at (behind a proxy, say): the base of the
    #: per-application endpoints' URLs the admin API and CLI show. Unset: the admin
    #: request's own URL (the CLI: ``http://host:port``).
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+(/\S*)?$")
    #: Serve Prometheus metrics on ``GET /metrics``.
    metrics: bool = True
    #: Ask the scraper for the master key (Prometheus scrapers usually have none).
    metrics_auth: bool = False


class TracingConfig(_Strict):
    """OpenTelemetry traces (``observability/tracing.py``; needs ``pip install 'modelgate[otel]'``):
    a span per request and per upstream attempt, sent to a collector over OTLP/HTTP."""

    enabled: bool = False
    #: The collector's OTLP/HTTP URL: ``http://collector:4318`` (``/v1/traces`` is added to a URL
    #: with no path) or the whole traces URL. Unset: ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else
    #: ``$OTEL_EXPORTER_OTLP_ENDPOINT``, else ``http://localhost:4318``.
    endpoint: str | None = None
    #: Headers sent to the collector (an API key). Unset: ``$OTEL_EXPORTER_OTLP_HEADERS``.
    headers: dict[str, str] = Field(default_factory=dict)
    #: The ``service.name`` of the spans. Unset: ``$OTEL_SERVICE_NAME``, else ``modelgate``.
    service_name: str | None = None
    #: Share of the requests traced when the client sent no ``traceparent`` (one that did is
    #: traced as its ``sampled`` flag says).
    sample_ratio: float = Field(default=1.0, ge=0, le=1)

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v


#: The classes of failure a router tells apart (``routing.router.failure_class``).
FailureClass = Literal["rate_limit", "overloaded", "unavailable", "timeout", "context_window", "authentication"]


class HealthConfig(_Strict):
    """The circuit breaker of each deployment (``routing/health.py``)."""

    #: Failures in a row (unavailable, timeouts, 429, 5xx, 529) that set a deployment aside.
    failures: int = Field(default=5, ge=1)
    #: Seconds it stays aside before a request tries it again.
    cooloff: float = Field(default=30.0, gt=0)


class AutoConfig(_Strict):
    """``model: "auto"``: the models it may pick, and how it orders them."""

    #: ``priority``: as listed; ``cheapest``: by price (input + output, config or built-in);
    #: ``latency``: fastest first, as measured by the breakers (unmeasured last);
    #: ``weighted``: a random order, each model as likely first.
    policy: Literal["priority", "cheapest", "latency", "weighted"] = "priority"
    models: tuple[str, ...] = Field(min_length=1)


class RouterConfig(_Strict):
    """Retries, key rotation and fallbacks: what happens when an upstream fails before the
    answer has started (never after: see ``pipeline/chain.py``)."""

    #: Attempts at one model (its deployments and retries; a switch to another upstream
    #: key after a 429/401/403 does not count), and again at each fallback.
    attempts: int = Field(default=3, ge=1, le=20)
    #: Seconds before a retry at the same upstream; doubled each time up to ``backoff_max``,
    #: with ``jitter`` (a fraction) of random spread.
    backoff: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=8.0, ge=0)
    jitter: float = Field(default=0.25, ge=0, le=1)
    #: The longest ``retry-after`` waited for; a longer one ends the retries of that model
    #: (its fallbacks are tried, else the client gets the error and its ``retry-after``).
    retry_after_cap: float = Field(default=10.0, ge=0)
    #: Seconds from a request's arrival after which no new attempt starts (and a retry's wait
    #: for its first byte is cut to what remains).
    deadline: float = Field(default=85.0, gt=0)
    #: Seconds an upstream key answered 429 without ``retry-after`` rests.
    key_cooldown: float = Field(default=30.0, gt=0)
    #: Seconds an upstream key answered 401/403 is taken out.
    key_quarantine: float = Field(default=3600.0, gt=0)
    #: The failures that send a request on to the model's ``fallbacks``.
    fallback_on: tuple[FailureClass, ...] = ("rate_limit", "overloaded", "unavailable", "timeout")
    health: HealthConfig = Field(default_factory=HealthConfig)
    #: What ``model: "auto"`` may pick (unset: ``auto`` is an unknown model, unless one is named so).
    auto: AutoConfig | None = None
    #: ``{name}-thinking`` beside every model whose upstream model can think: the same model,
    #: with thinking on (adaptive where the model has it, else this budget).
    thinking_variants: bool = True
    thinking_budget: int = Field(default=8192, ge=1024)
    # Claude Code's background calls (``protocols.anthropic.background``; docs/routing.md).
    #: ``local``: its ``Warmup`` calls are answered by the gateway, at no cost (a key's
    #: ``intercept_warmup: false`` sends its own upstream); ``upstream``: like any call.
    warmup: Literal["local", "upstream"] = "local"
    #: The model that serves its session-title calls instead of the one they name (unset:
    #: they are served as they came).
    title_model: str | None = None


class Config(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    master_key: str | None = None
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    tenancy: TenancyConfig = Field(default_factory=TenancyConfig)
    records: RecordsConfig = Field(default_factory=RecordsConfig)
    router: RouterConfig = Field(default_factory=RouterConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        names = [p.name for p in self.providers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"providers: duplicate provider name {sorted(dup)[0]!r}")
        for i, p in enumerate(self.providers):
            if p.base_url is None and p.type not in DEFAULT_BASE_URLS:
                raise ValueError(f"providers.{i}.base_url: required for type {p.type}")
        for i, m in enumerate(self.models):
            if m.provider is not None and m.provider not in names:
                raise ValueError(f"models.{i}.provider: no provider named {m.provider!r} (have: {', '.join(names)})")
        return self

    @model_validator(mode="after")
    def _check_routing(self) -> Config:
        names = {p.name for p in self.providers}
        have = ", ".join(sorted(names))

        def served(name: str) -> bool:
            return any(name == o.name or (o.name.endswith("*") and name.startswith(o.name[:-1])) for o in self.models)

        for i, m in enumerate(self.models):
            for j, d in enumerate(m.deployments):
                if d.provider not in names:
                    where = f"models.{i}.deployments.{j}.provider"
                    raise ValueError(f"{where}: no provider named {d.provider!r} (have: {have})")
            for j, name in enumerate(m.fallbacks):
                if name == m.name:
                    raise ValueError(f"models.{i}.fallbacks.{j}: a model cannot fall back to itself")
                if not served(name):
                    raise ValueError(f"models.{i}.fallbacks.{j}: no model named {name!r}")
        auto = self.router.auto
        for j, name in enumerate(auto.models if auto is not None else ()):
            if not served(name):
                raise ValueError(f"router.auto.models.{j}: no model named {name!r}")
        title_model = self.router.title_model
        if title_model is not None and not served(title_model):
            raise ValueError(f"router.title_model: no model named {title_model!r}")
        return self


# --------------------------------------------------------------------------- loading

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, path: str, env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(node, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{path}: environment variable {name} is not set")
            return ""

        return _ENV_REF.sub(sub, node)
    if isinstance(node, list):
        return [_interpolate(v, f"{path}.{i}", env, problems) for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, problems) for k, v in node.items()}
    return node


def _format_validation(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def parse_config(data: Any, source: str, env: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed YAML/JSON tree; raise :class:`ConfigError` with field paths."""
    env = dict(os.environ) if env is None else env
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping"])
    problems: list[str] = []
    data = _interpolate(data, "", env, problems)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, _format_validation(e)) from None
    if config.master_key is None and env.get("MODELGATE_MASTER_KEY"):
        config = config.model_copy(update={"master_key": env["MODELGATE_MASTER_KEY"]})
    server: dict[str, Any] = {}
    for field, var in (("database_url", "MODELGATE_DATABASE_URL"), ("redis_url", "MODELGATE_REDIS_URL")):
        if getattr(config.server, field) is None and env.get(var):
            server[field] = env[var]
    if server:
        config = config.model_copy(update={"server": config.server.model_copy(update=server)})
    return config


def load_config(path: str | os.PathLike[str] | None, env: dict[str, str] | None = None) -> Config:
    """Load ``path``, or build the embedded default from the environment when ``path`` is None."""
    env = dict(os.environ) if env is None else env
    if path is None:
        return default_config(env)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(source, [f"cannot read file: {e.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}invalid YAML: {getattr(e, 'problem', e)}"]) from None
    return parse_config(data, source, env)


#: Environment providers: (type, key variables, base-URL variables), as each provider's own SDK reads them.
ENV_PROVIDERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("anthropic", ("ANTHROPIC_API_KEY",), ("ANTHROPIC_BASE_URL",)),
    ("openai", ("OPENAI_API_KEY",), ("OPENAI_BASE_URL",)),
    ("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), ("GOOGLE_GEMINI_BASE_URL", "GEMINI_BASE_URL")),
)


def default_config(env: dict[str, str]) -> Config:
    """No config file: serve the well-known models of the providers whose keys are set.

    A provider's base URL comes from the variable its SDK reads (``ANTHROPIC_BASE_URL`` …),
    unless it points at this gateway itself — the usual case when a shell is set up for
    Claude Code or Gemini CLI to use the gateway — which would make requests loop.
    """
    data: dict[str, Any] = {"providers": [], "models": []}
    for key, var in (("host", "MODELGATE_HOST"), ("port", "MODELGATE_PORT"), ("data_dir", "MODELGATE_DATA_DIR")):
        if env.get(var):
            data.setdefault("server", {})[key] = env[var]
    own_port = str(data.get("server", {}).get("port", ServerConfig().port))
    for kind, key_vars, url_vars in ENV_PROVIDERS:
        api_key = next((env[v] for v in key_vars if env.get(v)), None)
        if not api_key:
            continue
        provider: dict[str, Any] = {"name": kind, "type": kind, "api_keys": [api_key]}
        url = next((env[v] for v in url_vars if env.get(v)), None)
        if url and not _points_at_self(url, own_port):
            provider["base_url"] = url
        data["providers"].append(provider)
        data["models"] += [{"name": m, "provider": kind} for m in WELL_KNOWN_MODELS[kind]]
        data["models"] += [{"name": p, "provider": kind} for p in WELL_KNOWN_PATTERNS[kind]]
    return parse_config(data, "<environment>", env)


def _points_at_self(url: str, port: str) -> bool:
    match = re.match(r"^https?://(localhost|127\.0\.0\.1|\[::1\]|0\.0\.0\.0)(?::(\d+))?", url)
    return match is not None and (match.group(2) or "80") == port
