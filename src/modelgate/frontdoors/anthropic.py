"""The Anthropic Messages front door: ``/v1/messages``, ``count_tokens``, ``/v1/models``.

When the routed provider also speaks Anthropic, the request takes the
passthrough path: the client's bytes go upstream untouched (unknown fields,
betas and thinking signatures survive) unless the model id must be rewritten,
and the upstream's bytes come back untouched. Otherwise the request goes
through the IR and the provider's own codec.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import GatewayError, InternalError, InvalidRequest
from modelgate.frontdoors.pipeline import (
    ClientDisconnected,
    new_request_id,
    parse_json,
    read_body,
    until_disconnect,
    with_keepalive,
)
from modelgate.policy.auth import Principal, bearer
from modelgate.protocols import anthropic as codec

if TYPE_CHECKING:
    from modelgate.app import Gateway
    from modelgate.routing.catalog import Route as ModelRoute

JSON = "application/json"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
#: Status code used for a request whose client has gone (nginx's convention; never seen by anyone).
CLIENT_CLOSED = 499


def error_response(err: GatewayError, request_id: str) -> Response:
    headers = {"request-id": request_id}
    headers.update(err.headers)
    if err.retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
    body = orjson.dumps(codec.error_body(err, request_id))
    return Response(body, status_code=err.status, headers=headers, media_type=JSON)


class AnthropicFrontDoor:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def routes(self, prefix: str = "") -> list[Route]:
        return [
            Route(prefix + "/v1/messages", self.messages, methods=["POST"]),
            Route(prefix + "/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
            Route(prefix + "/v1/models", self.list_models, methods=["GET"]),
            Route(prefix + "/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
        ]

    # ------------------------------------------------------------------ common steps

    async def _authenticate(self, request: Request) -> Principal:
        headers = request.headers
        credentials = [c for c in (headers.get("x-api-key"), bearer(headers.get("authorization"))) if c]
        return await self.gw.authenticator.authenticate(credentials)

    async def _decode(self, request: Request, *, count_only: bool = False) -> tuple[bytes, dict[str, Any], ModelRoute]:
        await self._authenticate(request)
        raw = await read_body(request, self.gw.config.server.max_body_bytes)
        body = parse_json(raw)
        codec.check_request(body, require_max_tokens=not count_only)
        return raw, body, self.gw.catalog.resolve(body["model"])

    # ------------------------------------------------------------------ /v1/messages

    async def messages(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            raw, body, route = await self._decode(request)
            if route.provider.protocol == codec.PROTOCOL:
                return await self._passthrough(request, raw, body, route, request_id)
            req = codec.decode_request(body)
            req.model = route.upstream_model
            req.max_tokens = route.max_tokens(req.max_tokens)
            if req.stream:
                events = await until_disconnect(request, route.provider.open_stream(req))
                return self._stream_response(events, body["model"], request_id)
            resp = await until_disconnect(request, route.provider.complete(req))
            resp.model = body["model"]
            return Response(
                orjson.dumps(codec.encode_response(resp)), headers={"request-id": request_id}, media_type=JSON
            )
        except GatewayError as e:
            return error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)

    async def _passthrough(
        self, request: Request, raw: bytes, body: dict[str, Any], route: ModelRoute, request_id: str
    ) -> Response:
        provider = route.provider
        if route.upstream_model != body["model"]:
            body["model"] = route.upstream_model
            raw = orjson.dumps(body)
        headers = provider.headers(request.headers)
        url = with_query(provider.messages_url, request)
        if body.get("stream"):
            reply = await until_disconnect(request, provider.forward_stream(url, raw, headers))
            reply.headers.setdefault("request-id", request_id)
            reply.headers.update(SSE_HEADERS)
            return StreamingResponse(
                self._guard_stream(reply.chunks), headers=reply.headers, media_type="text/event-stream"
            )
        reply = await until_disconnect(request, provider.forward(url, raw, headers))
        reply.headers.setdefault("request-id", request_id)
        return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=JSON)

    async def _guard_stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Forward stream bytes; a failure after the 200 becomes an SSE ``error`` event."""
        try:
            async for chunk in chunks:
                yield chunk
        except GatewayError as e:
            yield codec.encode_event(ir.StreamError(e))

    def _stream_response(self, events: AsyncIterator[ir.StreamEvent], model: str, request_id: str) -> Response:
        async def encode() -> AsyncIterator[bytes]:
            try:
                async for event in with_keepalive(events, self.gw.keepalive_interval):
                    if isinstance(event, ir.MessageStart):
                        event.model = model
                    yield codec.encode_event(event)
                    if isinstance(event, ir.StreamError):
                        return
            except GatewayError as e:
                yield codec.encode_event(ir.StreamError(e))
            except Exception as e:  # never let a bug end the stream without a word
                yield codec.encode_event(ir.StreamError(InternalError(f"internal error: {type(e).__name__}")))

        headers = {"request-id": request_id, **SSE_HEADERS}
        return StreamingResponse(encode(), headers=headers, media_type="text/event-stream")

    # ------------------------------------------------------------------ count_tokens

    async def count_tokens(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            raw, body, route = await self._decode(request, count_only=True)
            provider = route.provider
            if provider.protocol == codec.PROTOCOL:
                if route.upstream_model != body["model"]:
                    body["model"] = route.upstream_model
                    raw = orjson.dumps(body)
                headers = provider.headers(request.headers)
                url = with_query(provider.count_tokens_url, request)
                reply = await until_disconnect(request, provider.forward(url, raw, headers))
                reply.headers.setdefault("request-id", request_id)
                return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=JSON)
            req = codec.decode_request({**body, "max_tokens": 1})
            req.model = route.upstream_model
            tokens = await until_disconnect(request, provider.count_tokens(req))
            return Response(orjson.dumps({"input_tokens": tokens}), headers={"request-id": request_id}, media_type=JSON)
        except GatewayError as e:
            return error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)

    # ------------------------------------------------------------------ models

    def _model_json(self, name: str) -> dict[str, Any]:
        model = self.gw.catalog.resolve(name).model
        return {
            "type": "model",
            "id": name,
            "display_name": model.display_name or name,
            "created_at": self.gw.created_at,
        }

    async def list_models(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            await self._authenticate(request)
            names = [m.name for m in self.gw.catalog.listed()]
            page = paginate(names, request.query_params)
            data = [self._model_json(n) for n in page]
            body = {
                "data": data,
                "has_more": bool(page) and names.index(page[-1]) < len(names) - 1,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            }
            return Response(orjson.dumps(body), headers={"request-id": request_id}, media_type=JSON)
        except GatewayError as e:
            return error_response(e, request_id)

    async def get_model(self, request: Request) -> Response:
        request_id = new_request_id()
        try:
            await self._authenticate(request)
            body = self._model_json(request.path_params["model_id"])
            return Response(orjson.dumps(body), headers={"request-id": request_id}, media_type=JSON)
        except GatewayError as e:
            return error_response(e, request_id)


def with_query(url: str, request: Request) -> str:
    """``url`` with the client's query string (``?beta=true``): passthrough keeps it."""
    query = request.url.query
    return f"{url}?{query}" if query else url


def paginate(names: list[str], query: Any) -> list[str]:
    """Anthropic-style paging over ids: ``limit`` (1–1000, default 20), ``after_id``, ``before_id``."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise InvalidRequest("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit: Input should be between 1 and 1000")
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None:
        start = names.index(after) + 1 if after in names else len(names)
        return names[start : start + limit]
    if before is not None:
        end = names.index(before) if before in names else 0
        return names[max(0, end - limit) : end]
    return names[:limit]
