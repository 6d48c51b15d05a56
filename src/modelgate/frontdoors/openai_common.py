"""What the two OpenAI front doors (Chat Completions, Responses) share, because their clients
are the same SDKs: keys as ``Authorization: Bearer`` (``x-api-key`` is accepted too), OpenAI's
error envelope, statuses and wording (from :mod:`modelgate.protocols.openai_chat`), the
``x-request-id`` header, and how a call is read, checked and routed before either path.

Each door names its protocol's request codec (``check_request``, ``decode_request``,
``fit_thinking``); everything else here is the same for both.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelgate import ir
from modelgate.errors import AuthenticationFailed, GatewayError, NotFound
from modelgate.frontdoors.base import Call, FrontDoor
from modelgate.frontdoors.pipeline import new_request_id, read_body
from modelgate.policy.auth import Principal, bearer
from modelgate.protocols import openai_chat as envelope


class RequestCodec(Protocol):
    """The client-side request functions of an OpenAI protocol package."""

    def check_request(self, body: Any) -> None: ...

    def decode_request(self, body: dict[str, Any]) -> ir.Request: ...

    def fit_thinking(self, req: ir.Request, max_tokens: int) -> None: ...


class OpenAIFrontDoor(FrontDoor):
    """A front door that speaks one of OpenAI's APIs to its clients."""

    request_id_header = "x-request-id"
    #: This door's protocol package, for its cheap checks and the translated path's decoding.
    request_codec: ClassVar[RequestCodec]

    # ------------------------------------------------------------------ protocol hooks

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        return [c for c in (bearer(headers.get("authorization")), headers.get("x-api-key")) if c]

    async def authenticate(self, request: Request) -> Principal:
        """OpenAI's wording: clients and their users recognise it."""
        credentials = self.credentials(request)
        if not credentials:
            raise envelope.missing_key()
        try:
            return await self.gw.authenticator.authenticate(credentials)
        except AuthenticationFailed:
            raise envelope.wrong_key(credentials[0]) from None

    def error_body(self, err: GatewayError, request_id: str) -> Any:
        return envelope.error_body(err)

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        response = super().error_response(err, request_id)
        response.status_code = envelope.error_status(err)
        return response

    def decode(self, call: Call) -> ir.Request:
        return self.request_codec.decode_request(call.body)

    def fit(self, req: ir.Request, max_tokens: int) -> None:
        self.request_codec.fit_thinking(req, max_tokens)

    # ------------------------------------------------------------------ endpoint steps

    async def answer(self, request: Request) -> Response:
        """The main endpoint: read the call (a failure is answered with a fresh request id), then serve it."""
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
            raise envelope.invalid(
                f"We could not parse the JSON body of your request: {e.msg} (line {e.lineno}, column {e.colno}). "
                "The API expects a JSON payload."
            ) from None
        self.request_codec.check_request(body)
        model = body["model"]
        try:
            self.gw.catalog.resolve(model)
        except NotFound:
            raise envelope.model_not_found(model) from None
        return Call(raw, body, model, bool(body.get("stream")))
