"""Admit: who is calling, and is the call well formed?

The first stage of the chain, and the only place a request is authenticated and its body
read: the door's own checks on the path, the caller's credentials (in the door's places,
refused in the door's words), the body (never more than ``max_body_bytes`` of it), then the
door's parsing and protocol checks, a virtual key's model list and IP rules, and the
rules of the per-application endpoint the request came through (``policy.endpoints``); then, once
the plan names the serving model (``reserve``), the caps, limits and budgets of tenancy,
before anything reaches an upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request

from modelgate.errors import AuthenticationFailed, PermissionDenied, RequestTooLarge
from modelgate.observability.sessions import ClientFacts, session_from_body
from modelgate.pipeline.context import Call, Operation, RequestContext
from modelgate.pipeline.plan import Plan
from modelgate.pipeline.streaming import ClientDisconnected
from modelgate.policy.auth import Authenticator, Principal
from modelgate.policy.endpoints import admit_endpoint, check_model
from modelgate.policy.ips import client_ip
from modelgate.policy.keys import allowed_model
from modelgate.policy.limits import DEFAULT_OUTPUT, Limiter, Owner
from modelgate.protocols import WireProtocol

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor
    from modelgate.policy.tenancy import Tenancy
    from modelgate.store import EndpointRecord


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue  # the server's end-of-body marker: skipping it spares a copy of one-chunk bodies
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected() from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Admission:
    """The admit stage: authentication and reading, the same for every door; then, once the
    plan says which model serves, the caps, limits and budgets of tenancy."""

    def __init__(self, authenticator: Authenticator, max_body_bytes: int, tenancy: Tenancy | None = None) -> None:
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes
        self.tenancy = tenancy
        #: The request log is on: admit notes the client (user agent, address, agent session).
        self.records = tenancy is not None and tenancy.requests is not None
        #: BYOK: the header that may carry a client's own key, for each provider that allows it.
        self.byok: dict[str, str] = {}
        #: Keep the client's ``traceparent`` for the request's span (tracing is on).
        self.trace_context = False

    async def authenticate(self, request: Request, door: FrontDoor) -> Principal:
        """The caller, from the credentials in the door's places; refusals in the door's words."""
        credentials = door.credentials(request)
        try:
            return await self.authenticator.authenticate(credentials)
        except AuthenticationFailed as e:
            raise door.authentication_error(e, credentials) from None

    async def admit(self, ctx: RequestContext, request: Request, door: FrontDoor, operation: Operation) -> Call:
        if self.trace_context:  # first: a refused request is traced under its client's trace too
            headers = request.headers
            if (parent := headers.get("traceparent")) is not None:
                ctx.trace_context = carrier = {"traceparent": parent}
                if (state := headers.get("tracestate")) is not None:
                    carrier["tracestate"] = state
        door.check_path(request)
        ctx.caller = caller = await self.authenticate(request, door)
        endpoint_id = request.path_params.get("endpoint_id")  # a ``/v1/<id>/<provider>`` base URL
        endpoint = None if endpoint_id is None else self.endpoint(ctx, endpoint_id, caller)
        facts = self._note_client(ctx, request) if self.records else None
        raw = await read_body(request, self.max_body_bytes)
        ctx.call = call = door.parse(request, raw, operation)
        if endpoint is not None:
            check_model(endpoint, call.model)
        key = caller.key
        if facts is not None and ctx.session_id is None and door.protocol is WireProtocol.ANTHROPIC:
            ctx.session_id = session_from_body(call.body)  # Claude Code's metadata.user_id
        if key is not None:
            if key.log_bodies:
                ctx.log_bodies = True
            if key.models and not allowed_model(call.model, key.models):
                raise PermissionDenied(
                    f"API key {key.name!r} may not use model {call.model!r}", code="model_not_allowed", policy=True
                )
            tenancy = self.tenancy
            if tenancy is not None and tenancy.ips.applies(key):
                ip = ctx.client_ip
                if facts is None:
                    client = request.client
                    peer = client.host if client is not None else None
                    forwarded = request.headers.get("x-forwarded-for")
                    ip = ctx.client_ip = client_ip(peer, forwarded, tenancy.trusted_proxies)
                await tenancy.ips.check(key, ip)
        if self.byok:
            headers = request.headers
            found = {provider: value for header, provider in self.byok.items() if (value := headers.get(header))}
            if found:
                ctx.byok = found
        return call

    def endpoint(self, ctx: RequestContext | None, endpoint_id: str, caller: Principal) -> EndpointRecord:
        """The endpoint a request came through, from the cache, if it takes ``caller``; its id
        and its opt-in to stored bodies go on ``ctx``."""
        tenancy = self.tenancy
        found = tenancy.endpoints.find(endpoint_id) if tenancy is not None else None
        endpoint = admit_endpoint(found, endpoint_id, caller)
        if ctx is not None:
            ctx.endpoint_id = endpoint.id
            if endpoint.log_bodies:
                ctx.log_bodies = True
        return endpoint

    def _note_client(self, ctx: RequestContext, request: Request) -> ClientFacts:
        """The request log's facts about the client, read once: its user agent, its address (as
        the IP rules see it, through trusted proxies), and the agent session its headers name."""
        ctx.recording = True
        facts = ClientFacts(request.scope["headers"])
        ctx.user_agent = facts.user_agent
        if ctx.session_id is None:
            ctx.session_id = facts.session_id
        client = request.client
        peer = client.host if client is not None else None
        tenancy = self.tenancy
        trusted: tuple[str, ...] = ()
        if tenancy is not None:
            trusted = tenancy.trusted_proxies
            ctx.body_cap = tenancy.records.body_max_bytes
        ctx.client_ip = client_ip(peer, facts.forwarded_for, trusted)
        return facts

    async def reserve(self, ctx: RequestContext, door: FrontDoor, call: Call, plan: Plan) -> None:
        """The caps of the key and the serving model, then every limit and budget that applies
        (``policy.limits``): refused here, before anything reaches an upstream."""
        route = plan.candidates[0]
        model = route.model
        max_tokens = door.max_tokens(call)
        Limiter.check_cap(ctx.caller, model.max_tokens_cap, max_tokens)
        tenancy = self.tenancy
        if tenancy is None or call.operation is Operation.COUNT_TOKENS:
            return
        ctx.price = price = tenancy.prices.price(model, route.upstream_model)
        caller = ctx.caller
        if model.rpm is None and model.tpm is None and (caller is None or caller.key is None):
            return  # nothing to count: the master key on an unlimited model
        output = max_tokens or model.max_output_tokens or DEFAULT_OUTPUT
        owner = Owner("model", model.name, model.name)
        ctx.lease = await tenancy.limiter.reserve(
            ctx.request_id, caller, owner, (model.rpm, model.tpm), price, len(call.raw) // 4, output
        )
