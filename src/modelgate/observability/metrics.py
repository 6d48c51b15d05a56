"""Prometheus metrics: what every request did, counted once when it settles.

:class:`Metrics` owns its own registry (never prometheus-client's global one, so two
gateways in one process — the tests — never share a count). :meth:`Metrics.observe` is
called by the settler once per request with the whole request context; it is on the
request path, so each label set's child is looked up once and kept in a dict, and with one
process the values are plain attributes that a scrape reads (:class:`_Family`).

Labels are bounded: the door, the endpoint, the config's model names (a name the catalog
does not know is ``other``), providers, error kinds, limit codes. Never a key id or a
request id.

With several worker processes (``--workers``), ``modelgate serve`` points
``$PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start: each worker
then writes its values to files there, and a scrape, whichever worker answers it, reads
them all (:class:`prometheus_client.multiprocess.MultiProcessCollector`).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.utils import floatToGoString

from modelgate.errors import LimitExceeded

if TYPE_CHECKING:
    from modelgate.pipeline.context import RequestContext
    from modelgate.providers.keys import KeyPool
    from modelgate.routing.health import DeploymentHealth

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The model label of a request whose model the catalog does not know (or none at all).
OTHER = "other"
#: LLM calls run from milliseconds (token counting) to minutes (long generations).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FIRST_BYTE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"


class _Family:
    """A metric of one process, counted in plain attributes and read at scrape time: a few
    times cheaper per update than prometheus-client's own (locks, checks, exemplars), which
    the settler would pay several times per request. Used when there is one process."""

    def __init__(self, kind: str, name: str, doc: str, labelnames: tuple[str, ...], buckets: tuple[float, ...]) -> None:
        self.kind, self.name, self.doc, self.labelnames = kind, name, doc, labelnames
        self.bounds = (*buckets, float("inf")) if kind == "histogram" else ()
        self.children: dict[tuple[str, ...], _Family] = {}
        self.value = 0.0
        self.counts = [0] * len(self.bounds)

    def labels(self, *values: str) -> _Family:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = _Family(self.kind, self.name, "", (), self.bounds[:-1])
        return child

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.value += amount

    def family(self) -> Metric:
        labelnames = list(self.labelnames)
        if self.kind == "histogram":
            h = HistogramMetricFamily(self.name, self.doc, labels=labelnames)
            for values, child in self.children.items():
                total, buckets = 0, []
                for bound, n in zip(self.bounds, child.counts, strict=True):
                    total += n
                    buckets.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
                h.add_metric(list(values), buckets, child.value)
            return h
        if self.kind == "counter":
            family: Metric = CounterMetricFamily(self.name, self.doc, labels=labelnames)
        else:
            family = GaugeMetricFamily(self.name, self.doc, labels=labelnames)
        if not labelnames:
            family.add_metric([], self.value)  # type: ignore[attr-defined]
        for values, child in self.children.items():
            family.add_metric(list(values), child.value)  # type: ignore[attr-defined]
        return family


class _Cached:
    """A prometheus-client metric whose children are looked up once (its ``labels()`` is slow)."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metric, name)  # inc, dec, set of a metric without labels


class _Families:
    """The registry's collector of the :class:`_Family` metrics."""

    def __init__(self, before: Callable[[], None]) -> None:
        self.families: list[_Family] = []
        self.before = before

    def collect(self) -> Iterator[Metric]:
        self.before()
        for f in self.families:
            yield f.family()


class Metrics:
    """The gateway's collectors, in a registry of their own."""

    def __init__(self, models: Iterable[str] = (), pending: Callable[[], int] | None = None) -> None:
        #: The config's model names: the only model label values besides ``other``.
        self.models = frozenset(models)
        self.pending = pending
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = registry = CollectorRegistry(auto_describe=True)
        #: One process: the metrics below are :class:`_Family`, read by this collector.
        self._families = _Families(self._refresh)
        self.requests = self._counter(
            "modelgate_requests",
            "Requests answered, by front door, endpoint, served model, provider and status class.",
            ("door", "endpoint", "model", "provider", "status_class"),
            registry=registry,
        )
        self.errors = self._counter(
            "modelgate_errors", "Requests that failed, by error kind.", ("door", "kind"), registry=registry
        )
        self.duration = self._histogram(
            "modelgate_request_duration_seconds",
            "Seconds from arrival to settlement.",
            ("door", "stream"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.first_byte = self._histogram(
            "modelgate_time_to_first_byte_seconds",
            "Seconds from arrival to the answer's first byte.",
            ("door", "stream"),
            buckets=FIRST_BYTE_BUCKETS,
            registry=registry,
        )
        self.tokens = self._counter(
            "modelgate_tokens", "Tokens used, by served model and kind.", ("model", "kind"), registry=registry
        )
        self.cost = self._counter("modelgate_cost_usd", "What the answers cost, in USD.", ("model",), registry=registry)
        self.refusals = self._counter(
            "modelgate_limit_refusals", "Requests refused by a limit or budget.", ("limit",), registry=registry
        )
        self.attempts = self._counter(
            "modelgate_upstream_attempts",
            "Upstream calls, by provider and outcome.",
            ("provider", "outcome"),
            registry=registry,
        )
        self.retries = self._counter(
            "modelgate_retries", "Upstream calls after a request's first.", ("provider",), registry=registry
        )
        self.fallbacks = self._counter(
            "modelgate_fallbacks", "Requests served by another model than the one planned first.", registry=registry
        )
        self.cooldowns = self._counter(
            "modelgate_key_cooldowns",
            "Upstream keys put to rest, by reason.",
            ("provider", "reason"),
            registry=registry,
        )
        self.breakers = self._counter(
            "modelgate_breaker_transitions",
            "Deployments' circuit breakers opened or closed here, by provider and new state.",
            ("provider", "state"),
            registry=registry,
        )
        self.open_streams = self._gauge(
            "modelgate_open_streams", "Streamed answers still open.", registry=registry, multiprocess_mode="livesum"
        )
        self.ledger_depth = self._gauge(
            "modelgate_ledger_queue_depth",
            "Rows (ledger rows, request records, bodies) waiting for the batched store writer.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        if not self.multiprocess:
            registry.register(self._families)

    def _counter(self, name: str, doc: str, labelnames: tuple[str, ...] = (), *, registry: CollectorRegistry) -> Any:
        if self.multiprocess:
            return _Cached(Counter(name, doc, labelnames, registry=registry))
        return self._family("counter", name, doc, labelnames)

    def _histogram(
        self,
        name: str,
        doc: str,
        labelnames: tuple[str, ...],
        *,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> Any:
        if self.multiprocess:
            return _Cached(Histogram(name, doc, labelnames, buckets=buckets, registry=registry))
        return self._family("histogram", name, doc, labelnames, buckets)

    def _gauge(self, name: str, doc: str, *, registry: CollectorRegistry, multiprocess_mode: str) -> Any:
        if self.multiprocess:
            return Gauge(name, doc, registry=registry, multiprocess_mode=multiprocess_mode)  # type: ignore[arg-type]
        return self._family("gauge", name, doc, ())

    def _family(
        self, kind: str, name: str, doc: str, labelnames: tuple[str, ...], buckets: tuple[float, ...] = ()
    ) -> _Family:
        family = _Family(kind, name, doc, labelnames, buckets)
        self._families.families.append(family)
        return family

    def _refresh(self) -> None:
        if self.pending is not None:
            self.ledger_depth.set(self.pending())

    def model_label(self, ctx: RequestContext) -> str:
        route = ctx.route
        if route is not None:
            return route.model.name  # the config's name, even for a pattern's many names
        call = ctx.call
        return call.model if call is not None and call.model in self.models else OTHER

    def observe(self, ctx: RequestContext) -> None:
        """Count one settled request."""
        door = ctx.door
        model = self.model_label(ctx)
        attempt = ctx.attempt
        provider = attempt.provider if attempt is not None else "none"
        self.requests.labels(door, ctx.endpoint, model, provider, _status_class(ctx.status)).inc()
        call = ctx.call
        stream = "true" if call is not None and call.stream else "false"
        if ctx.duration is not None:
            self.duration.labels(door, stream).observe(ctx.duration)
        if ctx.first_byte is not None:
            self.first_byte.labels(door, stream).observe(ctx.first_byte)
        error = ctx.error
        if error is not None:
            self.errors.labels(door, str(error.kind)).inc()
            if isinstance(error, LimitExceeded):
                self.refusals.labels(error.code or "limit").inc()
        usage = ctx.usage
        if usage is not None:
            tokens = self.tokens
            if usage.input_tokens:
                tokens.labels(model, "input").inc(usage.input_tokens)
            if usage.output_tokens:
                tokens.labels(model, "output").inc(usage.output_tokens)
            if usage.cache_read_tokens:
                tokens.labels(model, "cache_read").inc(usage.cache_read_tokens)
            if usage.cache_write_tokens:
                tokens.labels(model, "cache_write").inc(usage.cache_write_tokens)
            if usage.reasoning_tokens:
                tokens.labels(model, "reasoning").inc(usage.reasoning_tokens)
        if ctx.cost:
            self.cost.labels(model).inc(ctx.cost)
        for i, a in enumerate(ctx.attempts):
            status = a.status
            outcome = "ok" if status is not None and status < 400 else (str(a.error.kind) if a.error else "error")
            self.attempts.labels(a.provider, outcome).inc()
            if i:
                self.retries.labels(a.provider).inc()
        plan, route = ctx.plan, ctx.route
        if plan is not None and route is not None and route.model.name != plan.candidates[0].model.name:
            self.fallbacks.inc()
        if ctx.streamed:
            self.open_streams.dec()
        if self.multiprocess and self.pending is not None:  # one process reads it at scrape time
            self.ledger_depth.set(self.pending())

    def stream_opened(self) -> None:
        self.open_streams.inc()

    # The routing listener (``routing.shared.RoutingEvents``): told of what pools and breakers decide.

    def key_rested(self, pool: KeyPool, key_id: str, reason: str, seconds: float) -> None:
        self.cooldowns.labels(pool.provider, reason).inc()

    def breaker_opened(self, health: DeploymentHealth, seconds: float) -> None:
        self.breakers.labels(health.provider, "open").inc()

    def breaker_closed(self, health: DeploymentHealth) -> None:
        self.breakers.labels(health.provider, "closed").inc()

    def close(self) -> None:
        """At the process's end: its live gauges (open streams, ledger depth) stop counting."""
        if self.multiprocess:
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        """The text a scrape reads: this process's registry, or every worker's values."""
        if self.multiprocess:
            self._refresh()
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
