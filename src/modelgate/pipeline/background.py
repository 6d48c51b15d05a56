"""Background calls a client makes on its own, which the gateway may spare the upstream.

A door recognises them by its protocol's rule (``FrontDoor.background``; for Claude Code,
``protocols.anthropic.background``). A warm-up is answered here, in the door's own shape —
the JSON message or the event stream its codec writes for any translated answer — so the
client's SDK reads it like any answer, and no upstream is called and nothing is spent
(``router.warmup: local``, unless the caller's key says ``intercept_warmup: false``). A
session-title call goes to ``router.title_model`` when one is set (:func:`plan_title`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import orjson
from starlette.responses import Response

from modelgate import ir
from modelgate.pipeline.context import Call, RequestContext
from modelgate.pipeline.plan import Plan, make_plan
from modelgate.pipeline.respond import JSON, SSE_HEADERS
from modelgate.policy.auth import Principal

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor
    from modelgate.routing.catalog import ModelCatalog
    from modelgate.routing.router import Router

log = logging.getLogger("modelgate.request")

#: The whole text of a local warm-up answer (the client drops it: a warm-up only primes caches).
WARMUP_REPLY = "OK"
#: Marks an answer the gateway wrote itself, with what it answered.
LOCAL_HEADER = "x-modelgate-local"


def intercepts_warmup(caller: Principal | None) -> bool:
    """Whether the caller's warm-ups are answered here: always for the master key, else as
    its key says (``intercept_warmup``)."""
    key = caller.key if caller is not None else None
    return key is None or key.intercept_warmup


def warmup_response(ctx: RequestContext, door: FrontDoor, call: Call) -> Response:
    """A short ``end_turn`` answer with no usage, from the model the client named, as a
    stream when it asked for one; recorded in ``ctx`` as a finished answer that cost nothing."""
    request_id = ctx.request_id
    usage = ir.Usage()
    message_id = "msg_" + os.urandom(12).hex()
    headers = {door.request_id_header: request_id, LOCAL_HEADER: "warmup"}
    if call.stream:
        encoder = door.stream_encoder(call, request_id)
        events: list[ir.StreamEvent] = [
            ir.MessageStart(message_id, call.model, usage),
            ir.BlockStart(0, ir.TextBlock("")),
            ir.BlockDelta(0, "text", WARMUP_REPLY),
            ir.BlockStop(0),
            ir.MessageDelta("end_turn", usage),
            ir.MessageStop(),
        ]
        body = b"".join(encoder.encode(event) for event in events) + encoder.end()
        response = Response(body, headers={**headers, **SSE_HEADERS}, media_type=door.stream_media_type(call))
    else:
        answer = ir.Response(message_id, call.model, [ir.TextBlock(WARMUP_REPLY)], "end_turn", usage)
        response = Response(orjson.dumps(door.encode_response(answer, call)), headers=headers, media_type=JSON)
    ctx.usage = usage
    ctx.stop_reason = "end_turn"
    ctx.ended = True
    ctx.status = response.status_code
    ctx.mark_first_byte()
    log.info("warm-up answered locally (request %s, model %s)", request_id, call.model)
    return response


def plan_title(catalog: ModelCatalog, door: FrontDoor, call: Call, router: Router) -> Plan:
    """The plan of a session-title call: moved to ``router.title_model`` when one is set (its
    body then names that model, fitted to the route that serves it), else as it came."""
    title_model = router.title_model
    if title_model is None or title_model == call.model:
        return make_plan(catalog, door, call, router.thinking_budget)
    call.model = title_model
    plan = make_plan(catalog, door, call, router.thinking_budget)
    door.retarget(call, plan.candidates[0])
    return plan
