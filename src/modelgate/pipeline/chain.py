"""The one chain every model endpoint runs through.

Layered like httpx's ``send``, each method with one job, each wrapping the next::

    handle                  a context for the request; admit (caller, body, protocol checks)
    │                       → a background call answered here or sent to its model
    │                       (``pipeline.background``) → plan; errors in the door's envelope;
    │                       settle, always (here for a whole answer, at the stream's end for
    │                       a stream)
    └─ _serve               the plan's first route; respond with its answer
       ├─ _recover          after a failed attempt: the next key, a retry after a backoff,
       │                    the next deployment, the fallback models (``routing.router``)
       └─ _attempt          one upstream call, with the key chosen for it, recorded

An attempt ends when its answer has started, and only then does anything reach the client:
so a request is retried, moved to another key or upstream, or fallen back only before its
first byte, never after. A front door supplies only its protocol's hooks
(``frontdoors.base.FrontDoor``): where the credentials are, its envelope, its codec. Nothing
here knows a wire format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelgate.errors import GatewayError, InternalError, NotFound, UpstreamHTTPError
from modelgate.observability.logs import REQUEST_ID
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.attempt import Answer, attempt, is_passthrough, upstream_request_id
from modelgate.pipeline.background import intercepts_warmup, plan_title, warmup_response
from modelgate.pipeline.context import CLIENT_CLOSED, Attempt, Call, Operation, RequestContext, new_request_id
from modelgate.pipeline.plan import Plan, make_plan
from modelgate.pipeline.respond import respond
from modelgate.pipeline.settle import Settler
from modelgate.pipeline.streaming import ClientDisconnected, EventStream, until_disconnect
from modelgate.protocols.codec import Background
from modelgate.providers.keys import UpstreamKey
from modelgate.routing.catalog import ModelCatalog, ModelRoute
from modelgate.routing.router import Router

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor

log = logging.getLogger("modelgate.request")


class Chain:
    def __init__(self, admission: Admission, catalog: ModelCatalog, settler: Settler, router: Router) -> None:
        self.admission = admission
        self.catalog = catalog
        self.settler = settler
        self.router = router

    async def handle(self, request: Request, door: FrontDoor, operation: Operation, endpoint: str) -> Response:
        """Answer one model endpoint call, in ``door``'s protocol, whatever happens."""
        ctx = RequestContext(new_request_id(), door.protocol, endpoint)
        REQUEST_ID.set(ctx.request_id)  # every log line of this request's task names it
        response: Response | None = None
        try:
            call = await self.admission.admit(ctx, request, door, operation)
            router = self.router
            background = door.background(call) if router.background else None
            if background is Background.WARMUP and router.warmup_local and intercepts_warmup(ctx.caller):
                response = warmup_response(ctx, door, call)
            else:
                if background is Background.TITLE:
                    plan = plan_title(self.catalog, door, call, router)
                else:
                    plan = make_plan(self.catalog, door, call, router.thinking_budget)
                ctx.plan = plan
                await self.admission.reserve(ctx, door, call, plan)
                response = await self._serve(ctx, request, door, call, plan)
        except GatewayError as e:
            response = door.error_response(e, ctx.request_id)
            if ctx.route is not None and _attempted(ctx, e):  # the upstream's answer: say whose
                response.raw_headers.extend(ctx.route.served_raw)
            ctx.fail(e, response.status_code)
            if ctx.log_bodies and ctx.recording:  # the request log keeps the error as answered
                ctx.answer = [bytes(response.body)]
        except ClientDisconnected:
            ctx.client_gone = True
            ctx.status = CLIENT_CLOSED
            response = Response(status_code=CLIENT_CLOSED)
        except Exception:  # a bug: logged with its traceback; the client gets only the envelope
            log.exception("unexpected error (request %s)", ctx.request_id)
            error = InternalError(f"internal error (request {ctx.request_id})")
            response = door.error_response(error, ctx.request_id)
            ctx.fail(error, response.status_code)
        finally:
            if not isinstance(response, EventStream):
                self.settler.settle(ctx)
            elif (metrics := self.settler.metrics) is not None:
                ctx.streamed = True
                metrics.stream_opened()
        return response

    async def _serve(self, ctx: RequestContext, request: Request, door: FrontDoor, call: Call, plan: Plan) -> Response:
        """Respond with the answer of the plan's first route, or of whichever ``_recover``
        finds when that one fails."""
        route = plan.candidates[0]
        try:
            answer = await self._attempt(ctx, request, door, call, route)
        except GatewayError as e:
            route, answer = await self._recover(ctx, request, door, call, plan, route, e)
        health = route.health
        if health.failures or self.router.measures_latency:
            health.ok(ctx.attempts[-1].latency)
        response = respond(ctx, door, call, answer, route, lambda gone: self.settler.settle(ctx, gone))
        if ctx.status is None:
            ctx.status = response.status_code
        return response

    async def _recover(
        self,
        ctx: RequestContext,
        request: Request,
        door: FrontDoor,
        call: Call,
        plan: Plan,
        route: ModelRoute,
        error: GatewayError,
    ) -> tuple[ModelRoute, Answer]:
        """After ``route`` failed with ``error``: another key of the same upstream at once
        (the failed one rests, ``providers.keys``); else the next deployment, or the same one
        again after a backoff, while the model has attempts left (``router.attempts``);
        else, for a failure of a class in ``router.fallback_on``, the model's fallbacks in
        order, each with attempts of its own. Never past ``router.deadline``. Raises the
        last error when nothing is left to try."""
        router = self.router
        deadline = ctx.started + router.deadline
        routes = plan.candidates
        fallbacks = iter(plan.fallbacks)
        index = 0  # of ``route`` in ``routes``
        tries = 1  # attempts at this model that count
        while True:
            if route.provider.keys.rest(_failed_key(ctx, error), error):
                pass  # the same upstream with its next key, at once (not counted)
            elif error.retryable and tries < router.attempts:
                if _attempted(ctx, error):
                    route.health.failed()
                index = (index + 1) % len(routes)
                if index == 0:  # every deployment of the model has failed once more
                    delay = router.wait(tries, error, deadline - time.perf_counter())
                    if delay is None:  # not worth waiting for: on to the fallbacks
                        routes, tries = self._fall_back(fallbacks, error), 0
                    else:
                        await until_disconnect(request, asyncio.sleep(delay))
                route = routes[index]
                tries += 1
            else:
                if error.retryable and _attempted(ctx, error):
                    route.health.failed()
                routes, index, tries = self._fall_back(fallbacks, error), 0, 1
                route = routes[0]
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise error
            try:
                first_byte = min(route.provider.first_byte_timeout, remaining)
                return route, await self._attempt(ctx, request, door, call, route, first_byte)
            except GatewayError as e:
                error = e

    def _fall_back(self, fallbacks: Iterator[str], error: GatewayError) -> tuple[ModelRoute, ...]:
        """The routes of the next fallback model; ``error`` again when there is none, or when
        it is not a failure that falls back."""
        if not self.router.falls_back(error):
            raise error
        for name in fallbacks:
            try:
                return self.catalog.routes(name)
            except NotFound:  # checked when the config was loaded; a pattern may still miss
                continue
        raise error

    async def _attempt(
        self,
        ctx: RequestContext,
        request: Request,
        door: FrontDoor,
        call: Call,
        route: ModelRoute,
        first_byte: float | None = None,
    ) -> Answer:
        """One upstream call with the next key of the route's provider, recorded in ``ctx``."""
        byok = ctx.byok.get(route.provider.name) if ctx.byok else None
        key = UpstreamKey(f"{route.provider.name}#byok", byok) if byok else route.provider.keys.pick()
        passthrough = is_passthrough(door, route)
        ctx.route = route
        record = Attempt(route.provider.name, route.upstream_model, key.id if key else None, passthrough, route.name)
        ctx.attempts.append(record)
        try:
            answer = await attempt(request, door, call, route, key, passthrough, first_byte, ctx.request_id)
        except GatewayError as e:
            record.failed(e)
            if isinstance(e, UpstreamHTTPError):
                record.upstream_request_id = e.upstream_request_id
            raise
        record.answered(answer.status)
        record.upstream_request_id = upstream_request_id(answer)
        return answer


def _attempted(ctx: RequestContext, error: GatewayError) -> bool:
    """Whether ``error`` is the failure of an attempt (not one raised before any was made)."""
    return bool(ctx.attempts) and ctx.attempts[-1].error is error


def _failed_key(ctx: RequestContext, error: GatewayError) -> str | None:
    """The id of the key the attempt that failed with ``error`` went out with."""
    return ctx.attempts[-1].key_id if _attempted(ctx, error) else None
