"""The one chain every model endpoint runs through.

Layered like httpx's ``send``, each method with one job, each wrapping the next::

    handle                  a context for the request; admit (caller, body, protocol checks)
    │                       → plan; errors in the door's envelope; settle, always (here for
    │                       a whole answer, at the stream's end for a stream)
    └─ _serve               walk the plan: respond with the first answer
       └─ _attempt          one upstream call, with the key chosen for it, recorded
                            (the retry / key-rotation / fallback loops wrap this)

A front door supplies only its protocol's hooks (``frontdoors.base.FrontDoor``): where the
credentials are, its envelope, its codec. Nothing here knows a wire format.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from modelgate.errors import GatewayError, InternalError, UpstreamHTTPError
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.attempt import Answer, attempt, is_passthrough, upstream_request_id
from modelgate.pipeline.context import CLIENT_CLOSED, Attempt, Call, Operation, RequestContext, new_request_id
from modelgate.pipeline.plan import Plan, make_plan
from modelgate.pipeline.respond import respond
from modelgate.pipeline.settle import Settler
from modelgate.pipeline.streaming import ClientDisconnected, EventStream
from modelgate.providers.keys import UpstreamKey
from modelgate.routing.catalog import ModelCatalog, ModelRoute

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor

log = logging.getLogger("modelgate.request")


class Chain:
    def __init__(self, admission: Admission, catalog: ModelCatalog, settler: Settler) -> None:
        self.admission = admission
        self.catalog = catalog
        self.settler = settler

    async def handle(self, request: Request, door: FrontDoor, operation: Operation, endpoint: str) -> Response:
        """Answer one model endpoint call, in ``door``'s protocol, whatever happens."""
        ctx = RequestContext(new_request_id(), door.protocol, endpoint)
        response: Response | None = None
        try:
            call = await self.admission.admit(ctx, request, door, operation)
            ctx.plan = plan = make_plan(self.catalog, door, call)
            await self.admission.reserve(ctx, door, call, plan)
            response = await self._serve(ctx, request, door, call, plan)
        except GatewayError as e:
            response = door.error_response(e, ctx.request_id)
            ctx.fail(e, response.status_code)
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
        return response

    async def _serve(self, ctx: RequestContext, request: Request, door: FrontDoor, call: Call, plan: Plan) -> Response:
        """Try the plan's candidates in order while the failures are retryable; today a plan
        holds one."""
        error: GatewayError | None = None
        for route in plan.candidates:
            try:
                answer = await self._attempt(ctx, request, door, call, route)
            except GatewayError as e:
                if not e.retryable:  # another candidate would be refused the same way
                    raise
                error = e
                continue
            response = respond(ctx, door, call, answer, lambda gone: self.settler.settle(ctx, gone))
            if ctx.status is None:
                ctx.status = response.status_code
            return response
        assert error is not None, "a plan has at least one candidate"
        raise error

    async def _attempt(
        self, ctx: RequestContext, request: Request, door: FrontDoor, call: Call, route: ModelRoute
    ) -> Answer:
        """One upstream call with the next key of the route's provider, recorded in ``ctx``."""
        byok = ctx.byok.get(route.provider.name) if ctx.byok else None
        key = UpstreamKey(f"{route.provider.name}#byok", byok) if byok else route.provider.keys.pick()
        passthrough = is_passthrough(door, route)
        record = Attempt(route.provider.name, route.upstream_model, key.id if key else None, passthrough)
        ctx.attempts.append(record)
        try:
            answer = await attempt(request, door, call, route, key, passthrough)
        except GatewayError as e:
            record.failed(e)
            if isinstance(e, UpstreamHTTPError):
                record.upstream_request_id = e.upstream_request_id
            raise
        record.answered(answer.status)
        record.upstream_request_id = upstream_request_id(answer)
        return answer
