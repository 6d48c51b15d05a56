"""Settle: the last stage, run once for every request, however it ended.

The chain calls it in a ``finally`` for a whole answer, and the event stream calls it when
the stream closes (finished, broken, or abandoned by the client). It reads the request
context: the usage (from the tap on the passthrough path, from the IR otherwise), the
outcome, the timings. Today it writes the request's log line; the ledger row and the
budget and counter updates of tenancy go here, off the hot path.
"""

from __future__ import annotations

import time

from modelgate.errors import UpstreamUnavailable
from modelgate.observability.request_log import RequestLog
from modelgate.pipeline.context import CLIENT_CLOSED, RequestContext


class Settler:
    def __init__(self, request_log: RequestLog) -> None:
        self.request_log = request_log

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
        self.request_log.write(ctx)
