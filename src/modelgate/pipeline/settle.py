"""Settle: the last stage, run once for every request, however it ended.

The chain calls it in a ``finally`` for a whole answer, and the event stream calls it when
the stream closes (finished, broken, or abandoned by the client). It reads the request
context: the usage (from the tap on the passthrough path, from the IR otherwise), the
outcome, the timings. It bills the call (the lease on the counters settled at the real
cost, off the request path; a ledger row queued for the batched writer), records its spans
when tracing is on (``observability/tracing.py``) and writes the request's log line.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelgate.errors import UpstreamUnavailable
from modelgate.observability.request_log import RequestLog
from modelgate.pipeline.context import CLIENT_CLOSED, Operation, RequestContext
from modelgate.store.records import LedgerRow

if TYPE_CHECKING:
    from modelgate.observability.metrics import Metrics
    from modelgate.observability.tracing import Tracing
    from modelgate.policy.tenancy import Tenancy


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
        if self.tenancy is not None:
            self.bill(ctx, self.tenancy)
        if self.metrics is not None:
            self.metrics.observe(ctx)
        if self.tracing is not None:
            self.tracing.record(ctx)
        self.request_log.write(ctx)

    @staticmethod
    def bill(ctx: RequestContext, tenancy: Tenancy) -> None:
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
                at=datetime.now(UTC),
                key_id=key.id if key is not None else None,
                team_id=key.team_id if key is not None else None,
                door=ctx.door,
                endpoint=ctx.endpoint,
                model=call.model,
                served_model=attempt.upstream_model if attempt is not None else None,
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
