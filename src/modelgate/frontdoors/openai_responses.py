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
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from modelgate import ir
from modelgate.errors import ErrorKind, GatewayError, NotFound, UpstreamUnavailable
from modelgate.frontdoors.base import count_field, effort_for, rewrite
from modelgate.frontdoors.openai_common import OpenAIFrontDoor, RequestCodec
from modelgate.pipeline.admit import Admission
from modelgate.pipeline.chain import Chain
from modelgate.pipeline.context import Call, Operation, new_request_id
from modelgate.protocols import openai_responses as codec
from modelgate.protocols.codec import StreamCollector, StreamEncoder
from modelgate.protocols.tap import AnswerTap

#: Base paths clients are configured with; each serves ``{base}/responses``.
BASES = ("/v1", "", "/api/openai/v1", "/api/openai")
UPGRADE_REQUIRED = 426


def new_response_id() -> str:
    return "resp_" + os.urandom(24).hex()


class OpenAIResponsesFrontDoor(OpenAIFrontDoor):
    protocol = codec.PROTOCOL
    request_codec: ClassVar[RequestCodec] = codec

    def __init__(self, chain: Chain, admission: Admission) -> None:
        super().__init__(chain)
        self.admission = admission

    def routes(self, bases: Sequence[str] = BASES) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for base in bases:
            path = base + "/responses"
            routes += [
                Route(path, self.create, methods=["POST"]),
                Route(path, self.upgrade_required, methods=["GET"]),
                WebSocketRoute(path, self.refuse_websocket),
                Route(path + "/compact", self.compact, methods=["POST"]),
                Route(path + "/{response_id}", self.stored, methods=["GET", "DELETE"]),
                Route(path + "/{response_id}/{action:path}", self.stored, methods=["GET", "POST"]),
            ]
        return routes

    async def create(self, request: Request) -> Response:
        return await self.chain.handle(request, self, Operation.GENERATE, "responses")

    def max_tokens(self, call: Call) -> int | None:
        return count_field(call.body, "max_output_tokens")

    async def compact(self, request: Request) -> Response:
        """Forwarded to an OpenAI upstream; done by the routed model for the others."""
        return await self.chain.handle(request, self, Operation.COMPACT, "compact")

    # ------------------------------------------------------------------ passthrough

    def forced_stream(self, call: Call, body: bytes) -> tuple[bytes, StreamCollector] | None:
        """A generation streamed, its terminal event's ``response`` returned
        (:mod:`modelgate.protocols.openai_responses.collect`); compaction goes as it came."""
        if call.operation is not Operation.GENERATE:
            return None
        return codec.with_stream(body, call.body), codec.ResponseCollector()

    def tap(self, call: Call) -> AnswerTap | None:
        return codec.ResponsesTap() if call.operation is Operation.GENERATE else None

    def relay_error(self, err: GatewayError, call: Call, tap: AnswerTap | None, request_id: str) -> bytes:
        """End a broken stream with ``response.failed`` for the upstream's own response (same id,
        the next sequence number), as the SDKs require; nothing after its own end."""
        if isinstance(tap, codec.ResponsesTap):
            if tap.ended:
                return b""
            response = tap.response
            if response is not None:
                model = tap.model or ""
                return codec.failed_event(response, response["id"], tap.created_at, model, tap.next_sequence, err)
        return super().relay_error(err, call, tap, request_id)

    def think(self, call: Call, upstream_model: str, budget: int) -> None:
        reasoning = call.body.get("reasoning")
        reasoning = reasoning if isinstance(reasoning, dict) else {}
        if reasoning.get("effort") in (None, "none"):
            rewrite(call, {**call.body, "reasoning": {**reasoning, "effort": effort_for(budget)}})

    # ------------------------------------------------------------------ translated

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, call.body, new_response_id(), int(time.time()))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder(call.body, new_response_id(), int(time.time()))

    def decode_compaction(self, call: Call) -> ir.Request:
        return codec.compaction_request(call.body)

    def compaction_body(self, call: Call, resp: ir.Response) -> Any:
        summary = "".join(b.text for b in resp.content if isinstance(b, ir.TextBlock)).strip()
        if not summary:
            raise UpstreamUnavailable("compaction failed: the model wrote no summary")
        return codec.compaction_response(call.body, summary, resp.usage, new_response_id(), int(time.time()))

    # ------------------------------------------------------------------ endpoints with no model

    async def stored(self, request: Request) -> Response:
        """Retrieving, deleting or cancelling a stored response: none is ever stored."""
        request_id = new_request_id()
        try:
            await self.admission.authenticate(request, self)
            ident = request.path_params["response_id"]
            raise NotFound(f"Response with id '{ident}' not found.")
        except GatewayError as e:
            return self.error_response(e, request_id)

    def _upgrade_error(self) -> GatewayError:
        return GatewayError(
            "This gateway does not serve the Responses API over WebSocket: "
            'POST /v1/responses with "stream": true (server-sent events) instead.',
            status=UPGRADE_REQUIRED,
            kind=ErrorKind.INVALID_REQUEST,
            code="websocket_not_supported",
            headers={"upgrade": "websocket"},
        )

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
