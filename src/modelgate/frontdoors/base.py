"""What a front door is: one wire protocol's hooks for the one chain (``pipeline.chain``).

A door says where its clients put their keys and how it words refusals, parses and checks
a call, renders errors in its envelope, and holds its codec for the translated path and
its tap for the passthrough path. It owns its routes, each of which hands the request to
the chain with the operation the route asks for. A door knows nothing of the application
object: the chain is all it needs (and the admission, for endpoints with no model).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelgate import ir
from modelgate.errors import AuthenticationFailed, GatewayError, InvalidRequest, LimitExceeded, NotFound, RateLimitInfo
from modelgate.pipeline.chain import Chain
from modelgate.pipeline.context import Call, Operation
from modelgate.pipeline.respond import JSON, json_response
from modelgate.protocols import WireProtocol
from modelgate.protocols.codec import Background, StreamCollector, StreamEncoder
from modelgate.protocols.tap import AnswerTap
from modelgate.routing.catalog import ModelRoute


class FrontDoor(ABC):
    #: The wire protocol spoken to clients; equal to one of a provider's ``protocols`` for passthrough.
    protocol: ClassVar[WireProtocol]
    #: The header that carries the request id back to the client.
    request_id_header: ClassVar[str] = "request-id"

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    # ------------------------------------------------------------------ admit

    def check_path(self, request: Request) -> None:  # noqa: B027  (a hook: most doors need none)
        """Refuse a path the protocol does not serve before anything else."""

    @abstractmethod
    def credentials(self, request: Request) -> list[str]:
        """The API keys the client presented, in this protocol's places."""

    def authentication_error(self, err: AuthenticationFailed, credentials: list[str]) -> GatewayError:
        """A refused (or missing) key, in this protocol's words."""
        return err

    @abstractmethod
    def parse(self, request: Request, raw: bytes, operation: Operation) -> Call:
        """The call in ``raw``, checked as the protocol checks it (cheap checks only)."""

    def background(self, call: Call) -> Background | None:
        """Which background call of a known client ``call`` is, if any (a hook: the protocols
        whose clients make none have no rule)."""
        return None

    def retarget(self, call: Call, route: ModelRoute) -> None:
        """``call`` was moved to ``call.model`` (a session title to ``router.title_model``): its
        body names that model now, fitted to ``route`` where the protocol has rules for it."""
        rewrite(call, {**call.body, "model": call.model})

    def max_tokens(self, call: Call) -> int | None:
        """The output limit the call asks for, where this protocol's body says it (for the caps
        and budget reservations of tenancy); None when it does not."""
        return count_field(call.body, "max_tokens")

    # ------------------------------------------------------------------ plan

    def model_not_found(self, call: Call, err: NotFound) -> GatewayError:
        """An unknown model, in this protocol's words."""
        return err

    # ------------------------------------------------------------------ errors

    @abstractmethod
    def render_error(self, err: GatewayError, request_id: str) -> tuple[int, Any]:
        """(HTTP status, body) of ``err`` in this protocol's envelope."""

    def rate_limit_headers(self, info: RateLimitInfo) -> dict[str, str]:
        """The headers this protocol's clients read on a refusal by one of the gateway's
        limits (a hook: ``anthropic-ratelimit-*``, ``x-ratelimit-*``)."""
        return {}

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        status, body = self.render_error(err, request_id)
        headers = {self.request_id_header: request_id, **err.headers}
        if isinstance(err, LimitExceeded):
            headers.update(self.rate_limit_headers(err.info))
        if err.retry_after is not None:
            headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
        return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)

    def json_response(self, body: Any, request_id: str) -> Response:
        return json_response(self, body, request_id)

    # ------------------------------------------------------------------ passthrough

    def passthrough_query(self, request: Request) -> str:
        """The client's query string, as it goes upstream (``?beta=true`` passes; a hook)."""
        query = request.url.query
        return "?" + query if query else ""

    def passthrough_body(self, call: Call, upstream_model: str, max_tokens_cap: int | None = None) -> bytes:
        """The client's bytes, unless the upstream knows the model by another name: then the
        body is re-serialised with that name (orjson keeps key order and every string as it was),
        fitted to that model where the protocol has rules for it (``max_tokens_cap``: the
        serving model's output limit)."""
        if upstream_model == call.model:
            return call.raw
        return orjson.dumps({**call.body, "model": upstream_model})

    def think(self, call: Call, upstream_model: str, budget: int) -> None:  # noqa: B027  (a hook)
        """Turn thinking on in ``call`` (a model's ``-thinking`` variant) unless it asks for it
        already, in this protocol's words; ``budget`` for models that take one. The body is
        re-serialised (:func:`rewrite`): its bytes no longer pass as they came."""

    def forced_stream(self, call: Call, body: bytes) -> tuple[bytes, StreamCollector] | None:
        """For a non-streamed call to a provider that forces streaming: ``body`` asking for a
        stream, and the collector of that stream into the whole answer; None where the
        protocol has no collector or the endpoint is not a generation (the call goes as it
        came)."""
        return None

    def forced_stream_url(self, call: Call, url: str) -> str:
        """Where a forced stream goes: ``url`` (the passthrough URL of the non-streamed call,
        query included) unless the protocol streams at another method (a hook: Gemini's
        ``:streamGenerateContent?alt=sse``)."""
        return url

    @abstractmethod
    def tap(self, call: Call) -> AnswerTap | None:
        """A fresh tap for one relayed answer (usage and the end, read as it goes by)."""

    def relay_error(self, err: GatewayError, call: Call, tap: AnswerTap | None, request_id: str) -> bytes:
        """The bytes that end a relayed stream broken after the 200 (a hook: protocols whose
        events carry ids and sequence numbers end the upstream's own stream consistently)."""
        return self.stream_encoder(call, request_id).error(err)

    def stream_media_type(self, call: Call) -> str:
        return "text/event-stream"

    # ------------------------------------------------------------------ translated

    @abstractmethod
    def decode(self, call: Call) -> ir.Request:
        """Client JSON → IR."""

    def fit(self, req: ir.Request, max_tokens: int) -> None:
        """Set the final ``max_tokens`` (the model's cap may have lowered it); a hook for
        protocols whose decoding derived other values from the requested one."""
        req.max_tokens = max_tokens

    @abstractmethod
    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        """IR → client JSON."""

    @abstractmethod
    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        """A fresh encoder for one streamed answer."""

    def decode_count(self, call: Call) -> ir.Request:
        """The request whose input tokens a count asks for (doors with a count endpoint)."""
        raise InvalidRequest("this protocol has no token count")

    def count_body(self, call: Call, tokens: int) -> Any:
        raise InvalidRequest("this protocol has no token count")

    def decode_compaction(self, call: Call) -> ir.Request:
        """The request that writes a compaction summary (doors with a compact endpoint)."""
        raise InvalidRequest("this protocol has no compaction")

    def compaction_body(self, call: Call, resp: ir.Response) -> Any:
        raise InvalidRequest("this protocol has no compaction")


def count_field(obj: Any, name: str) -> int | None:
    """``obj[name]`` when it is a whole number (not a bool), else None."""
    value = obj.get(name) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rewrite(call: Call, body: dict[str, Any]) -> None:
    """``call`` with a new body (its bytes made again, orjson keeping key order and strings)."""
    call.body = body
    call.raw = orjson.dumps(body)


def effort_for(budget: int) -> str:
    """The reasoning effort of protocols that have no budget, for a thinking budget."""
    return "low" if budget <= 2048 else "medium" if budget <= 16384 else "high"
