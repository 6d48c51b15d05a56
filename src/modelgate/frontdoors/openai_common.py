"""What the two OpenAI front doors (Chat Completions, Responses) share, because their clients
are the same SDKs: keys as ``Authorization: Bearer`` (``x-api-key`` is accepted too), OpenAI's
error envelope, statuses and wording (from :mod:`modelgate.protocols.openai_chat`), the
``x-request-id`` header, and how a call is parsed and checked.

Each door names its protocol's request codec (``check_request``, ``decode_request``,
``fit_thinking``); everything else here is the same for both.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar, Protocol

import orjson
from starlette.requests import Request

from modelgate import ir
from modelgate.errors import AuthenticationFailed, GatewayError, NotFound, RateLimitInfo
from modelgate.frontdoors.base import FrontDoor
from modelgate.pipeline.context import Call, Operation
from modelgate.policy.auth import bearer
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

    # ------------------------------------------------------------------ admit

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        return [c for c in (bearer(headers.get("authorization")), headers.get("x-api-key")) if c]

    def authentication_error(self, err: AuthenticationFailed, credentials: list[str]) -> GatewayError:
        """OpenAI's wording: clients and their users recognise it."""
        return envelope.wrong_key(credentials[0]) if credentials else envelope.missing_key()

    def rate_limit_headers(self, info: RateLimitInfo) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a
        duration, ``6m0s``)."""
        if info.resource not in ("requests", "tokens"):
            return {}
        headers = {
            f"x-ratelimit-limit-{info.resource}": str(int(info.limit)),
            f"x-ratelimit-remaining-{info.resource}": str(max(0, int(info.remaining))),
        }
        if info.reset_at is not None:
            seconds = max(0, math.ceil(info.reset_at - time.time()))
            minutes, seconds = divmod(seconds, 60)
            headers[f"x-ratelimit-reset-{info.resource}"] = f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
        return headers

    def parse(self, request: Request, raw: bytes, operation: Operation) -> Call:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise envelope.invalid(
                f"We could not parse the JSON body of your request: {e.msg} (line {e.lineno}, column {e.colno}). "
                "The API expects a JSON payload."
            ) from None
        self.request_codec.check_request(body)
        stream = bool(body.get("stream")) and operation is Operation.GENERATE
        return Call(operation, raw, body, body["model"], stream)

    def model_not_found(self, call: Call, err: NotFound) -> GatewayError:
        return envelope.model_not_found(call.model)

    # ------------------------------------------------------------------ errors, translated

    def render_error(self, err: GatewayError, request_id: str) -> tuple[int, Any]:
        return envelope.render_error(err, request_id)

    def decode(self, call: Call) -> ir.Request:
        return self.request_codec.decode_request(call.body)

    def fit(self, req: ir.Request, max_tokens: int) -> None:
        self.request_codec.fit_thinking(req, max_tokens)
