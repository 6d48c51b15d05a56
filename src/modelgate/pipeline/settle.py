"""Settle: the last stage, run once for every request, however it ended.

The chain calls it in a ``finally`` for a whole answer, and the event stream calls it when
the stream closes (finished, broken, or abandoned by the client). It reads the request
context: the usage (from the tap on the passthrough path, from the IR otherwise), the
outcome, the timings. It bills the call (the lease on the counters settled at the real
cost, off the request path; a ledger row queued for the batched writer), queues its record
for the request log (and its bodies, for a key or endpoint that opted in), records its spans
when tracing is on (``observability/tracing.py``) and writes the request's log line.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from modelgate.errors import UpstreamUnavailable
from modelgate.observability.redact import redact
from modelgate.observability.request_log import RequestLog
from modelgate.pipeline.context import CLIENT_CLOSED, Attempt, Operation, RequestContext
from modelgate.store.records import BodyRecord, LedgerRow, RequestRecord, storable

if TYPE_CHECKING:
    from modelgate.observability.metrics import Metrics
    from modelgate.observability.tracing import Tracing
    from modelgate.policy.tenancy import Tenancy

#: Characters kept of an error message in a record.
ERROR_MAX: Final = 1000


class Settler:
    def __init__(
        self,
        request_log: RequestLog,
        tenancy: Tenancy | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.request_log = request_log
        self.tenancy = tenancy
        self.metrics = metrics
        self.tracing = tracing

    def settle(self, ctx: RequestContext, client_gone: bool = False) -> None:
        if ctx.settled:
            return
        ctx.settled = True
        ctx.duration = time.perf_counter() - ctx.started
        tap = ctx.tap
        if tap is not None:
            ctx.usage, ctx.ended, ctx.stop_reason, failed, error = tap.findings()
            if failed and ctx.error is None:  # the upstream ended its answer with an error of its own
                ctx.error = error or UpstreamUnavailable("the upstream ended its answer with an error")
        if client_gone:
            ctx.client_gone = True
            if not ctx.ended:
                ctx.status = CLIENT_CLOSED
        tenancy = self.tenancy
        if tenancy is not None:
            at = datetime.now(UTC)
            self.bill(ctx, tenancy, at)
            if ctx.recording:
                self.record(ctx, tenancy, at)
        if self.metrics is not None:
            self.metrics.observe(ctx)
        if self.tracing is not None:
            self.tracing.record(ctx)
        self.request_log.write(ctx)

    @staticmethod
    def bill(ctx: RequestContext, tenancy: Tenancy, at: datetime | None = None) -> None:
        """The call's real cost: its lease settled on the counters (off the request path) and its
        ledger row queued. Token counting and calls refused before parsing are not billed."""
        call, caller = ctx.call, ctx.caller
        if call is None or caller is None or call.operation is Operation.COUNT_TOKENS:
            return
        usage = ctx.usage
        price = ctx.price
        route = ctx.route
        plan = ctx.plan
        if route is not None and price is not None and plan is not None and route is not plan.candidates[0]:
            price = tenancy.prices.price(route.model, route.upstream_model)  # a fallback served
        if usage is not None and price is not None:
            ctx.cost = cost = price.cost(usage)
        else:
            cost = 0.0
        lease = ctx.lease
        if lease is not None:
            tokens = usage.input_tokens + usage.cache_write_tokens + usage.output_tokens if usage else 0
            tenancy.release(lease, cost, tokens)
        attempt = ctx.attempt
        key = caller.key
        tenancy.writer.add(
            LedgerRow(
                request_id=ctx.request_id,
                at=at or datetime.now(UTC),
                key_id=key.id if key is not None else None,
                team_id=key.team_id if key is not None else None,
                door=ctx.door,
                endpoint=ctx.endpoint,
                model=storable(call.model),
                served_model=storable(attempt.upstream_model) if attempt is not None else None,
                provider=attempt.provider if attempt is not None else None,
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                cache_read_tokens=usage.cache_read_tokens if usage else 0,
                cache_write_tokens=usage.cache_write_tokens if usage else 0,
                reasoning_tokens=usage.reasoning_tokens if usage else 0,
                cost_usd=cost,
                credits=tenancy.prices.credits(cost),
                status=ctx.status or 0,
                latency_ms=round((ctx.duration or 0.0) * 1000),
                endpoint_id=ctx.endpoint_id,
            )
        )

    @staticmethod
    def record(ctx: RequestContext, tenancy: Tenancy, at: datetime) -> None:
        """The request's record for the request log, queued on the batched writer (with its
        bodies, capped and redacted, when its key or endpoint opted in). Admit set
        ``ctx.recording`` once it knew the caller: refusals before that are not recorded (they
        would let anyone fill the store), only logged and counted."""
        caller = ctx.caller
        call = ctx.call
        key = caller.key if caller is not None else None
        usage = ctx.usage
        error = ctx.error
        attempt = ctx.attempt
        first_byte = ctx.first_byte
        record = RequestRecord(
            request_id=ctx.request_id,
            at=at,
            key_id=key.id if key is not None else None,
            team_id=key.team_id if key is not None else None,
            door=ctx.door,
            endpoint=ctx.endpoint,
            endpoint_id=ctx.endpoint_id,
            session_id=ctx.session_id,
            model=storable(call.model) if call is not None else None,
            served_model=storable(attempt.upstream_model) if attempt is not None else None,
            provider=attempt.provider if attempt is not None else None,
            stream=call.stream if call is not None else False,
            status=ctx.status or 0,
            error_type=error.kind.value if error is not None else None,
            error_message=storable(error.message[:ERROR_MAX]) if error is not None else None,
            stop_reason=storable(ctx.stop_reason) if ctx.stop_reason is not None else None,
            latency_ms=round((ctx.duration or 0.0) * 1000),
            ttft_ms=round(first_byte * 1000) if first_byte is not None else None,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            cache_read_tokens=usage.cache_read_tokens if usage else 0,
            cache_write_tokens=usage.cache_write_tokens if usage else 0,
            reasoning_tokens=usage.reasoning_tokens if usage else 0,
            cost_usd=ctx.cost,
            tool_calls=ctx.tool_calls,
            user_agent=ctx.user_agent,
            client_ip=ctx.client_ip,
            attempts=[_attempt(a) for a in ctx.attempts],
            upstream_request_id=attempt.upstream_request_id if attempt is not None else None,
        )
        writer = tenancy.writer
        writer.add_record(record)
        if ctx.log_bodies and call is not None:
            writer.add_body(bodies(ctx, call.raw, at, tenancy.records.body_max_bytes))


def _attempt(a: Attempt) -> dict[str, Any]:
    error = a.error
    return {
        "provider": a.provider,
        "model": a.upstream_model,
        "route": a.route,
        "key_id": a.key_id,
        "passthrough": a.passthrough,
        "status": a.status,
        "latency_ms": round(a.latency * 1000) if a.latency is not None else None,
        "error_type": error.kind.value if error is not None else None,
        "error_message": error.message[:ERROR_MAX] if error is not None else None,
        "upstream_request_id": a.upstream_request_id,
    }


def bodies(ctx: RequestContext, raw: bytes, at: datetime, cap: int) -> BodyRecord:
    """The request's bodies as stored: each cut at ``cap`` bytes, then redacted."""
    request, cut = _text(raw, cap)
    answer = b"".join(ctx.answer) if ctx.answer is not None else None
    response, cut_answer = _text(answer, cap) if answer is not None else (None, False)
    return BodyRecord(
        request_id=ctx.request_id,
        at=at,
        request=storable(redact(request)),
        response=storable(redact(response)) if response is not None else None,
        truncated=cut or cut_answer,
    )


def _text(data: bytes, cap: int) -> tuple[str, bool]:
    """``data`` as text, cut at ``cap`` bytes (a character split there is replaced)."""
    return data[:cap].decode("utf-8", "replace"), len(data) > cap
