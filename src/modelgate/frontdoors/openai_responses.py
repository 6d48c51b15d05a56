"""The OpenAI Responses front door: ``POST /v1/responses`` and ``/v1/responses/compact``,
for Codex CLI and the ``openai`` SDKs' ``client.responses``.

The paths are served under every base URL clients are configured with: ``/v1`` (the SDKs'
default form), none (a Codex ``base_url`` without ``/v1``), ``/api/openai/v1`` and
``/api/openai``.

When the routed provider serves the Responses API natively (the ``openai`` provider kind),
the client's bytes go to ``{base_url}/responses`` (or ``/responses/compact``) untouched, unless
the model id must be rewritten, with Codex's identifying headers; the upstream's bytes come
back untouched, stream included. Otherwise the request goes through the IR
(:mod:`modelgate.protocols.openai_responses`) and the answer is a Response object or event
stream written here; compaction is then done by the routed model (``compact``).

Codex CLI first tries the Responses API over a WebSocket (``GET /v1/responses`` with
``Upgrade: websocket``). The gateway does not serve that transport: the handshake is
refused with ``426 Upgrade Required``, the one status on which Codex falls back to
``POST /v1/responses`` at once and for the whole session (any other status costs it five
retries first). ``GET /v1/responses/{id}`` answers 404: responses are never stored.

Errors use OpenAI's envelope and the ``x-request-id`` header, as the Chat Completions door.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from modelgate import ir
from modelgate.errors import GatewayError, NotFound, UpstreamUnavailable
from modelgate.frontdoors.base import CLIENT_CLOSED, Call, StreamEncoder, Target, passthrough_body, with_query
from modelgate.frontdoors.openai_common import OpenAIFrontDoor
from modelgate.frontdoors.pipeline import ClientDisconnected, new_request_id, until_disconnect
from modelgate.protocols import openai_responses as codec
from modelgate.protocols.sse import SSEParser

if TYPE_CHECKING:
    from modelgate.routing.catalog import Route as ModelRoute

#: Base paths clients are configured with; each serves ``{base}/responses``.
BASES = ("/v1", "", "/api/openai/v1", "/api/openai")
#: Client headers a passthrough forwards: Codex's session and identity headers, OpenAI betas.
_CLIENT_HEADERS = frozenset(
    {
        "openai-beta",
        "user-agent",
        "originator",
        "session_id",
        "session-id",
        "conversation_id",
        "thread-id",
        "x-client-request-id",
    }
)
_CLIENT_PREFIXES = ("x-codex-", "x-openai-")
UPGRADE_REQUIRED = 426
_SEQUENCE = re.compile(rb'"sequence_number":\s*(\d+)')
_END = re.compile(rb'"type":\s*"response\.(?:completed|incomplete|failed)"')


class StreamTap:
    """Watches a forwarded Responses stream just enough to end it properly if it breaks: the
    upstream's response (from its first event), the last sequence number, whether it ended."""

    __slots__ = ("_parser", "ended", "next_sequence", "response")

    def __init__(self) -> None:
        self._parser: SSEParser | None = SSEParser()
        self.response: dict[str, Any] | None = None
        self.next_sequence = 0
        self.ended = False

    @property
    def created_at(self) -> int:
        value = (self.response or {}).get("created_at")
        return value if isinstance(value, int) else int(time.time())

    @property
    def model(self) -> str:
        return str((self.response or {}).get("model") or "")

    def feed(self, chunk: bytes) -> None:
        if self._parser is not None:
            for frame in self._parser.feed(chunk):
                self._first(frame.data)
        found = _SEQUENCE.findall(chunk)
        if found:
            self.next_sequence = int(found[-1]) + 1
        if _END.search(chunk):
            self.ended = True

    def _first(self, data: str) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        response = event.get("response") if isinstance(event, dict) else None
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            self.response = response
            self._parser = None  # the rest of the stream passes unparsed


def new_response_id() -> str:
    return "resp_" + os.urandom(24).hex()


class OpenAIResponsesFrontDoor(OpenAIFrontDoor):
    protocol = codec.PROTOCOL
    request_codec = codec

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for base in BASES:
            path = base + "/responses"
            routes += [
                Route(path, self.answer, methods=["POST"]),
                Route(path, self.upgrade_required, methods=["GET"]),
                WebSocketRoute(path, self.refuse_websocket),
                Route(path + "/compact", self.compact, methods=["POST"]),
                Route(path + "/{response_id}", self.stored, methods=["GET", "DELETE"]),
                Route(path + "/{response_id}/{action:path}", self.stored, methods=["GET", "POST"]),
            ]
        return routes

    # ------------------------------------------------------------------ protocol hooks

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, call.body, new_response_id(), int(time.time()))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder(call.body, new_response_id(), int(time.time()))

    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        return self._target(request, call, route, "/responses")

    async def guard_stream(self, chunks: AsyncIterator[bytes], encoder: StreamEncoder) -> AsyncIterator[bytes]:
        """Forward an upstream's stream; if it breaks, end it with ``response.failed`` for the
        upstream's own response (same id, the next sequence number), as the SDKs require."""
        tap = StreamTap()
        try:
            async for chunk in chunks:
                tap.feed(chunk)
                yield chunk
        except GatewayError as e:
            if tap.ended:
                return
            if tap.response is None:
                yield encoder.error(e)
                return
            yield codec.failed_event(tap.response, tap.response["id"], tap.created_at, tap.model, tap.next_sequence, e)

    def _target(self, request: Request, call: Call, route: ModelRoute, path: str) -> Target:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in _CLIENT_HEADERS or name.startswith(_CLIENT_PREFIXES)
        }
        provider = route.provider
        headers.update(provider.headers())  # type: ignore[attr-defined]
        url = with_query(provider.base_url + path, request)
        return Target(url, passthrough_body(call, route.upstream_model), headers)

    # ------------------------------------------------------------------ endpoints

    async def compact(self, request: Request) -> Response:
        """Forwarded to an OpenAI upstream; done by the routed model for the others."""
        request_id = new_request_id()
        try:
            call = await self._call(request)
            route = self.gw.catalog.resolve(call.model)
            provider = route.provider
            if provider.passes_through(self.protocol, route.upstream_model):
                target = self._target(request, call, route, "/responses/compact")
                return await self.forward(request, route, target, request_id)
            req = codec.compaction_request(call.body)
            req.model = route.upstream_model
            req.max_tokens = route.max_tokens(req.max_tokens)
            resp = await until_disconnect(request, provider.complete(req))
            summary = "".join(b.text for b in resp.content if isinstance(b, ir.TextBlock)).strip()
            if not summary:
                raise UpstreamUnavailable("compaction failed: the model wrote no summary")
            body = codec.compaction_response(call.body, summary, resp.usage, new_response_id(), int(time.time()))
            return self.json_response(body, request_id)
        except GatewayError as e:
            return self.error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)

    async def stored(self, request: Request) -> Response:
        """Retrieving, deleting or cancelling a stored response: none is ever stored."""
        request_id = new_request_id()
        try:
            await self.authenticate(request)
            ident = request.path_params["response_id"]
            err = NotFound(f"Response with id '{ident}' not found.")
            err.code = None  # type: ignore[attr-defined]
            raise err
        except GatewayError as e:
            return self.error_response(e, request_id)

    def _upgrade_error(self) -> GatewayError:
        err = GatewayError(
            "This gateway does not serve the Responses API over WebSocket: "
            'POST /v1/responses with "stream": true (server-sent events) instead.',
            status=UPGRADE_REQUIRED,
        )
        err.kind = "invalid_request"
        err.code = "websocket_not_supported"  # type: ignore[attr-defined]
        err.headers = {"upgrade": "websocket"}
        return err

    async def upgrade_required(self, request: Request) -> Response:
        """A WebSocket handshake the server handed over as plain HTTP (no WebSocket library)."""
        return self.error_response(self._upgrade_error(), new_request_id())

    async def refuse_websocket(self, websocket: WebSocket) -> None:
        """Refuse the handshake with 426, so that Codex falls back to HTTP at once."""
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            response = self.error_response(self._upgrade_error(), new_request_id())
            await websocket.send_denial_response(response)
        else:  # the server cannot answer a handshake with a status of our choosing: it sends 403
            await websocket.close(code=1008)
