"""The OpenAI Chat Completions front door: ``POST /v1/chat/completions`` (also under
``/api/openai/v1`` and ``/api/openai``, for clients configured with either base URL).

When the routed provider serves Chat Completions natively (OpenAI, OpenAI-compatible servers),
the client's bytes go to ``{base_url}/chat/completions`` untouched (``stream_options``, ``n``,
``logprobs`` and every other field survive) unless the model id must be rewritten, and the
upstream's bytes come back untouched (so ``model`` in the answer is the upstream's id). Otherwise
the request goes through the IR: see :mod:`modelgate.protocols.openai_chat` for the mapping.

Errors use OpenAI's envelope and the ``x-request-id`` header; keys arrive as
``Authorization: Bearer`` (``x-api-key`` is accepted too).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import AuthenticationFailed, GatewayError, NotFound
from modelgate.frontdoors.base import Call, FrontDoor, StreamEncoder, Target
from modelgate.frontdoors.pipeline import new_request_id, read_body
from modelgate.policy.auth import Principal, bearer
from modelgate.protocols import openai_chat as codec

if TYPE_CHECKING:
    from modelgate.routing.catalog import Route as ModelRoute

#: Base paths clients are configured with; each serves ``{base}/chat/completions``.
BASES = ("/v1", "/api/openai/v1", "/api/openai")


class OpenAIChatFrontDoor(FrontDoor):
    protocol = codec.PROTOCOL
    request_id_header = "x-request-id"

    def routes(self) -> list[Route]:
        return [Route(base + "/chat/completions", self.chat_completions, methods=["POST"]) for base in BASES]

    # ------------------------------------------------------------------ protocol hooks

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        return [c for c in (bearer(headers.get("authorization")), headers.get("x-api-key")) if c]

    async def authenticate(self, request: Request) -> Principal:
        """OpenAI's wording: clients and their users recognise it."""
        credentials = self.credentials(request)
        if not credentials:
            raise codec.missing_key()
        try:
            return await self.gw.authenticator.authenticate(credentials)
        except AuthenticationFailed:
            raise codec.wrong_key(credentials[0]) from None

    def error_body(self, err: GatewayError, request_id: str) -> Any:
        return codec.error_body(err)

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        response = super().error_response(err, request_id)
        response.status_code = codec.error_status(err)
        return response

    def decode(self, call: Call) -> ir.Request:
        req = codec.decode_request(call.body)
        route = self.gw.catalog.resolve(call.model)
        codec.fit_thinking(req, route.max_tokens(req.max_tokens))
        return req

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, int(time.time()))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder(call.model, int(time.time()), include_usage=codec.include_usage(call.body))

    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        raw = call.raw
        if route.upstream_model != call.model:
            raw = orjson.dumps({**call.body, "model": route.upstream_model})
        provider = route.provider
        return Target(provider.base_url + "/chat/completions", raw, provider.headers())  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ endpoint

    async def chat_completions(self, request: Request) -> Response:
        try:
            call = await self._call(request)
        except GatewayError as e:
            return self.error_response(e, new_request_id())
        return await self.serve(request, call)

    async def _call(self, request: Request) -> Call:
        await self.authenticate(request)
        raw = await read_body(request, self.gw.config.server.max_body_bytes)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise codec.invalid(
                f"We could not parse the JSON body of your request: {e.msg} (line {e.lineno}, column {e.colno}). "
                "The API expects a JSON payload."
            ) from None
        codec.check_request(body)
        model = body["model"]
        try:
            self.gw.catalog.resolve(model)
        except NotFound:
            raise codec.model_not_found(model) from None
        return Call(raw, body, model, bool(body.get("stream")))
