"""The Anthropic Messages front door: ``/v1/messages``, ``count_tokens``, ``/v1/models``.

When the routed provider also speaks Anthropic, the request takes the
passthrough path: the client's bytes go upstream untouched (unknown fields,
betas and thinking signatures survive) unless the model id must be rewritten,
and the upstream's bytes come back untouched. Otherwise the request goes
through the IR and the provider's own codec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamHTTPError
from modelgate.frontdoors.base import (
    CLIENT_CLOSED,
    Call,
    FrontDoor,
    StreamEncoder,
    Target,
    passthrough_body,
    with_query,
)
from modelgate.frontdoors.pipeline import ClientDisconnected, new_request_id, until_disconnect
from modelgate.policy.auth import bearer
from modelgate.protocols import anthropic as codec

if TYPE_CHECKING:
    from modelgate.routing.catalog import Route as ModelRoute


class AnthropicFrontDoor(FrontDoor):
    protocol = codec.PROTOCOL

    def routes(self, prefix: str = "") -> list[Route]:
        return [
            Route(prefix + "/v1/messages", self.messages, methods=["POST"]),
            Route(prefix + "/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ protocol hooks

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        return [c for c in (headers.get("x-api-key"), bearer(headers.get("authorization"))) if c]

    def error_body(self, err: GatewayError, request_id: str) -> Any:
        return codec.error_body(err, request_id)

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        response = super().error_response(err, request_id)
        foreign = not (isinstance(err, UpstreamHTTPError) and err.protocol == codec.PROTOCOL)
        if err.kind == "overloaded" and foreign:
            response.status_code = 529  # Anthropic says "overloaded" only with 529
        return response

    def decode(self, call: Call) -> ir.Request:
        return codec.decode_request(call.body)

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp)

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return _Encoder()

    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        return self._target(request, call, route, route.provider.messages_url)

    def _target(self, request: Request, call: Call, route: ModelRoute, url: str) -> Target:
        body = passthrough_body(call, route.upstream_model)
        return Target(with_query(url, request), body, route.provider.headers(request.headers))

    # ------------------------------------------------------------------ endpoints

    async def _call(self, request: Request, *, count_only: bool = False) -> Call:
        await self.authenticate(request)
        raw, body = await self.read_json(request)
        codec.check_request(body, require_max_tokens=not count_only)
        return Call(raw, body, body["model"], bool(body.get("stream")))

    async def messages(self, request: Request) -> Response:
        try:
            call = await self._call(request)
        except GatewayError as e:
            return self.error_response(e, new_request_id())
        return await self.serve(request, call)

    async def count_tokens(self, request: Request) -> Response:
        """Forwarded to an Anthropic upstream; a documented local estimate for the others."""
        request_id = new_request_id()
        try:
            call = await self._call(request, count_only=True)
            route = self.gw.catalog.resolve(call.model)
            provider = route.provider
            if provider.passes_through(self.protocol, route.upstream_model):
                target = self._target(request, call, route, provider.count_tokens_url)
                return await self.forward(request, route, target, request_id)
            req = codec.decode_request({**call.body, "max_tokens": 1})
            req.model = route.upstream_model
            tokens = await until_disconnect(request, provider.count_tokens(req))
            return self.json_response({"input_tokens": tokens}, request_id)
        except GatewayError as e:
            return self.error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)


class _Encoder:
    """Anthropic's stream events map one to one onto the IR's: no state needed."""

    __slots__ = ()

    def encode(self, event: ir.StreamEvent) -> bytes:
        return codec.encode_event(event)

    def error(self, err: GatewayError) -> bytes:
        return codec.encode_event(ir.StreamError(err))

    def end(self) -> bytes:
        return b""
