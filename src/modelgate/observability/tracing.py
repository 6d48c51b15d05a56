"""OpenTelemetry traces: a span per request and one per upstream attempt, recorded at settlement.

Nothing is traced while the request runs. Settle already holds the whole story in the
request context — when it arrived, each attempt's start and latency, the first byte, the
usage, the outcome — so the spans are built after the fact, with explicit start and end
times. With tracing off, the hot path pays one ``is None`` check in settle and one flag in
admit (where the client's ``traceparent`` is kept only when tracing is on); with it on,
:meth:`Tracing.record` queues the settled context and reads two clocks.

The request span (kind SERVER) is a child of the client's W3C ``traceparent`` (and
``tracestate``) when it sent one, and follows its ``sampled`` flag; each attempt is a CLIENT
span under it. Attribute names follow the OpenTelemetry GenAI semantic conventions where
they have one (``gen_ai.*``, ``http.response.status_code``, ``error.type``), ``modelgate.*``
otherwise. Key ids only, never a key.

The spans are made on a thread of their own, off the request's path (the SDK's bookkeeping
costs about 0.2 ms a request), from a bounded queue, and go out in batches from the SDK's
thread (``BatchSpanProcessor``), over OTLP/HTTP. The SDK is an optional extra (``pip install
'modelgate[otel]'``); this module is imported only when ``tracing.enabled`` is set, and says
what to install when it is missing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelgate.pipeline.context import Operation

try:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as e:  # the extra is not installed: said when tracing is configured
    _MISSING: ImportError | None = e
else:
    _MISSING = None

if TYPE_CHECKING:
    from modelgate.config import Config, TracingConfig
    from modelgate.pipeline.context import Attempt, RequestContext

log = logging.getLogger("modelgate.tracing")

INSTALL_HINT = "pip install 'modelgate[otel]'"
#: Settled requests that may wait for their spans; more are dropped (and counted).
QUEUE_LIMIT = 10_000
#: What ``gen_ai.provider.name`` calls each kind of provider (the conventions' well-known values);
#: an ``openai-compatible`` provider goes by its own name.
_GENAI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "gemini": "gcp.gemini"}


class TracingUnavailable(ValueError):
    """Tracing is configured, but the OpenTelemetry SDK is not installed (a ``ValueError``, so
    ``modelgate serve`` reports it at start like any config it cannot use)."""


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of ``endpoint``: ``/v1/traces`` added to a URL with no path,
    as ``$OTEL_EXPORTER_OTLP_ENDPOINT`` is read; a URL with a path is taken whole."""
    if urlsplit(endpoint).path.strip("/"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _operation(ctx: RequestContext) -> str:
    """``gen_ai.operation.name``: ``generate_content`` for Gemini's generation, ``chat`` for the
    others; what the request did otherwise (``count_tokens``, ``compact``)."""
    call = ctx.call
    if call is None or call.operation is Operation.GENERATE:
        return "generate_content" if ctx.door == "gemini" else "chat"
    return call.operation.value


class Tracing:
    """The tracer of one gateway: its own provider (never the global one), its sampler, its
    exporter; owned by the :class:`~modelgate.app.Gateway` and shut down with it."""

    def __init__(self, config: Config, exporter: SpanExporter | None = None) -> None:
        if _MISSING is not None:
            raise TracingUnavailable(
                f"tracing is enabled in the config, but OpenTelemetry is not installed: {INSTALL_HINT}"
            ) from _MISSING
        settings: TracingConfig = config.tracing
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = traces_url(settings.endpoint) if settings.endpoint else None
            exporter = OTLPSpanExporter(endpoint=endpoint, headers=settings.headers or None)
        service = settings.service_name or os.environ.get("OTEL_SERVICE_NAME") or "modelgate"
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            resource=Resource.create({"service.name": service}),
            shutdown_on_exit=False,  # the gateway shuts it down (``close``), flushing what is left
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("modelgate")
        self.propagator = TraceContextTextMapPropagator()
        #: ``gen_ai.provider.name`` of each configured provider, by its name.
        self.genai_providers = {p.name: _GENAI_PROVIDERS.get(p.type, p.name) for p in config.providers}
        #: Settled requests waiting for their spans, and the thread that makes them.
        self.pending: queue.Queue[tuple[RequestContext, int, float] | None] = queue.Queue(QUEUE_LIMIT)
        #: Requests left untraced because the queue was full (the thread could not keep up).
        self.dropped = 0
        self._worker = threading.Thread(target=self._work, name="modelgate-tracing", daemon=True)
        self._worker.start()

    def record(self, ctx: RequestContext) -> None:
        """Queue a settled request for its spans (made on the tracing thread: the SDK spends
        some 0.2 ms on a request's three spans, which no client should wait for). The clocks
        are read now, to place the request's perf_counter times on the wall clock."""
        try:
            self.pending.put_nowait((ctx, time.time_ns(), time.perf_counter()))
        except queue.Full:
            self.dropped = dropped = self.dropped + 1
            if dropped == 1 or dropped % 1000 == 0:
                log.warning("tracing: %d requests left untraced (the tracing thread cannot keep up)", dropped)

    def _work(self) -> None:
        pending = self.pending
        while (item := pending.get()) is not None:
            try:
                self.spans(*item)
            except Exception:  # a bug: logged, and the next request is traced all the same
                log.exception("tracing: the spans of request %s were lost", item[0].request_id)
            finally:
                pending.task_done()
        pending.task_done()

    def spans(self, ctx: RequestContext, wall: int, now: float) -> None:
        """The spans of a settled request: the request's, and one per attempt under it;
        ``wall`` (epoch ns) and ``now`` (perf_counter) read at the same moment."""

        def ns(at: float) -> int:
            return wall - int((now - at) * 1e9)

        end = ns(ctx.started + ctx.duration) if ctx.duration is not None else wall
        carrier = ctx.trace_context
        parent = self.propagator.extract(carrier) if carrier else None
        operation = _operation(ctx)
        call = ctx.call
        name = f"{operation} {call.model}" if call is not None else f"{ctx.door} {ctx.endpoint}"
        span = self.tracer.start_span(
            name, parent, SpanKind.SERVER, self._request_attributes(ctx, operation), start_time=ns(ctx.started)
        )
        if ctx.first_byte is not None:
            span.add_event("first_byte", timestamp=ns(ctx.started + ctx.first_byte))
        if span.is_recording():
            inside = set_span_in_context(span, parent)
            attempts = ctx.attempts
            for i, attempt in enumerate(attempts):
                served = i == len(attempts) - 1 and attempt.error is None and ctx.error is None
                self._attempt_span(ctx, attempt, i + 1, served, operation, inside, ns, end)
        error = ctx.error
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error.message))
        span.end(end)

    def _attempt_span(
        self,
        ctx: RequestContext,
        attempt: Attempt,
        number: int,
        served: bool,
        operation: str,
        parent: Context,
        ns: Callable[[float], int],
        request_end: int,
    ) -> None:
        """One upstream call: from sending to its status line (or failure); the attempt that
        served lasts until the request's end, its status line an event."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": self.genai_providers.get(attempt.provider, attempt.provider),
            "gen_ai.request.model": attempt.upstream_model,
            "modelgate.provider": attempt.provider,
            "modelgate.attempt": number,
            "modelgate.passthrough": attempt.passthrough,
        }
        if attempt.key_id is not None:
            attributes["modelgate.upstream_key_id"] = attempt.key_id
        if attempt.status is not None:
            attributes["http.response.status_code"] = attempt.status
        if attempt.upstream_request_id is not None:
            attributes["modelgate.upstream_request_id"] = attempt.upstream_request_id
        error = attempt.error
        if error is not None:
            attributes["error.type"] = error.code or error.kind.value
        if served:
            attributes["gen_ai.response.model"] = attempt.upstream_model
            _usage_attributes(ctx, attributes)
        span = self.tracer.start_span(
            f"{operation} {attempt.upstream_model}",
            parent,
            SpanKind.CLIENT,
            attributes,
            start_time=ns(attempt.started),
        )
        headers_at = ns(attempt.started + attempt.latency) if attempt.latency is not None else None
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error.message))
        if served and headers_at is not None:
            span.add_event("response_headers", timestamp=headers_at)
            span.end(max(request_end, headers_at))
        else:
            span.end(headers_at if headers_at is not None else request_end)

    def _request_attributes(self, ctx: RequestContext, operation: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "modelgate.request_id": ctx.request_id,
            "modelgate.door": ctx.door,
            "modelgate.endpoint": ctx.endpoint,
        }
        call = ctx.call
        if call is not None:
            attributes["gen_ai.request.model"] = call.model
            attributes["gen_ai.request.stream"] = call.stream
        attempt = ctx.attempt
        if attempt is not None:
            genai = self.genai_providers.get(attempt.provider, attempt.provider)
            attributes["gen_ai.provider.name"] = genai
            attributes["gen_ai.system"] = genai  # the older name, still read by many backends
            attributes["modelgate.provider"] = attempt.provider
            attributes["modelgate.attempts"] = len(ctx.attempts)
            if ctx.error is None:
                attributes["gen_ai.response.model"] = attempt.upstream_model
        if ctx.status is not None:
            attributes["http.response.status_code"] = ctx.status
        error = ctx.error
        if error is not None:
            attributes["error.type"] = error.code or error.kind.value
        _usage_attributes(ctx, attributes)
        if ctx.first_byte is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = ctx.first_byte
        if ctx.cost:
            attributes["modelgate.cost_usd"] = ctx.cost
        caller = ctx.caller
        key = caller.key if caller is not None else None
        if key is not None:
            attributes["modelgate.key_id"] = key.id
            if key.team_id is not None:
                attributes["modelgate.team_id"] = key.team_id
        if ctx.endpoint_id is not None:
            attributes["modelgate.endpoint_id"] = ctx.endpoint_id
        if ctx.session_id is not None:
            attributes["gen_ai.conversation.id"] = ctx.session_id
            attributes["modelgate.session_id"] = ctx.session_id
        if ctx.client_ip is not None:
            attributes["client.address"] = ctx.client_ip
        if ctx.client_gone:
            attributes["modelgate.client_gone"] = True
        return attributes

    def flush(self, timeout_millis: int = 30_000) -> bool:
        """Make and export the spans of every request recorded so far (tests; ``close`` does it too)."""
        self.pending.join()
        return self.provider.force_flush(timeout_millis)

    def close(self) -> None:
        """The spans of the requests still queued made, everything exported, the thread ended."""
        self.pending.put(None)
        self._worker.join()
        self.provider.shutdown()


def _usage_attributes(ctx: RequestContext, attributes: dict[str, Any]) -> None:
    usage = ctx.usage
    if usage is not None:
        # Every input token, cached or not, as the conventions count them.
        input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        attributes["gen_ai.usage.input_tokens"] = input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cache_read_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
        if usage.cache_write_tokens:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
        if usage.reasoning_tokens:
            attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    if ctx.stop_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = (ctx.stop_reason,)
