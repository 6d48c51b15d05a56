"""The one pipeline every front door runs on.

A front door supplies its wire protocol's hooks (credentials, cheap checks,
decode, encode, stream encoder, error envelope, passthrough target); this
module does the rest the same way for all of them: authenticate, read and
parse the body, route, then either pass the bytes through to an upstream of
the same protocol or translate through the IR, streaming event by event,
cancelling the upstream call if the client goes away.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelgate import ir
from modelgate.errors import GatewayError, InternalError
from modelgate.frontdoors.pipeline import (
    ClientDisconnected,
    EventStream,
    new_request_id,
    parse_json,
    read_body,
    until_disconnect,
)
from modelgate.policy.auth import Principal

if TYPE_CHECKING:
    from modelgate.app import Gateway
    from modelgate.routing.catalog import Route as ModelRoute

JSON = "application/json"
SSE = "text/event-stream"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
#: Status recorded for a request whose client has gone (nginx's convention; nobody sees it).
CLIENT_CLOSED = 499


class StreamEncoder(Protocol):
    """Turns IR stream events into the client's wire bytes; may keep state (indexes, sequence numbers)."""

    def encode(self, event: ir.StreamEvent) -> bytes: ...

    def error(self, err: GatewayError) -> bytes: ...

    def end(self) -> bytes: ...


@dataclass(slots=True)
class Call:
    """One decoded client call, ready to route."""

    raw: bytes
    body: Any
    model: str
    stream: bool


@dataclass(slots=True)
class Target:
    """Where a passthrough call goes upstream and with which bytes."""

    url: str
    body: bytes
    headers: dict[str, str]


class FrontDoor(ABC):
    #: The wire protocol spoken to clients; equal to a provider's ``protocol`` for passthrough.
    protocol: ClassVar[str]
    #: The header that carries the request id back to the client.
    request_id_header: ClassVar[str] = "request-id"

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    # ------------------------------------------------------------------ protocol hooks

    @abstractmethod
    def credentials(self, request: Request) -> list[str]:
        """The API keys the client presented, in this protocol's places."""

    @abstractmethod
    def error_body(self, err: GatewayError, request_id: str) -> Any:
        """This protocol's error envelope for ``err``."""

    @abstractmethod
    def decode(self, call: Call) -> ir.Request:
        """Client JSON → IR (only on the translated path)."""

    @abstractmethod
    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        """IR → client JSON."""

    @abstractmethod
    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        """A fresh encoder for one streamed answer."""

    @abstractmethod
    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        """Upstream URL, body and headers for a call to a provider of this same protocol."""

    def fit(self, req: ir.Request, max_tokens: int) -> None:
        """Set the final ``max_tokens`` (the model's cap may have lowered it); a hook for
        protocols whose decoding derived other values from the requested one."""
        req.max_tokens = max_tokens

    # ------------------------------------------------------------------ shared steps

    def error_response(self, err: GatewayError, request_id: str) -> Response:
        headers = {self.request_id_header: request_id}
        headers.update(err.headers)
        if err.retry_after is not None:
            headers["retry-after"] = str(max(0, math.ceil(err.retry_after)))
        body = orjson.dumps(self.error_body(err, request_id))
        return Response(body, status_code=err.status, headers=headers, media_type=JSON)

    def json_response(self, body: Any, request_id: str, status: int = 200) -> Response:
        return Response(
            orjson.dumps(body), status_code=status, headers={self.request_id_header: request_id}, media_type=JSON
        )

    async def authenticate(self, request: Request) -> Principal:
        return await self.gw.authenticator.authenticate(self.credentials(request))

    async def read_json(self, request: Request) -> tuple[bytes, Any]:
        raw = await read_body(request, self.gw.config.server.max_body_bytes)
        return raw, parse_json(raw)

    async def serve(self, request: Request, call: Call) -> Response:
        """Route ``call`` and answer it: passthrough when the protocols match, else via the IR."""
        request_id = new_request_id()
        try:
            route = self.gw.catalog.resolve(call.model)
            if route.provider.passes_through(self.protocol, route.upstream_model):
                return await self._passthrough(request, call, route, request_id)
            return await self._translate(request, call, route, request_id)
        except GatewayError as e:
            return self.error_response(e, request_id)
        except ClientDisconnected:
            return Response(status_code=CLIENT_CLOSED)

    async def _passthrough(self, request: Request, call: Call, route: ModelRoute, request_id: str) -> Response:
        provider = route.provider
        target = self.passthrough(request, call, route)
        if call.stream:
            reply = await until_disconnect(request, provider.forward_stream(target.url, target.body, target.headers))
            reply.headers.setdefault(self.request_id_header, request_id)
            reply.headers.update(SSE_HEADERS)
            chunks = self.guard_stream(reply.chunks, self.stream_encoder(call, request_id))
            return EventStream(chunks, reply.headers)
        return await self.forward(request, route, target, request_id)

    async def forward(self, request: Request, route: ModelRoute, target: Target, request_id: str) -> Response:
        """Send ``target`` to the routed provider and answer with its reply as it came (status,
        headers, bytes): non-streamed passthrough, and the side endpoints (count tokens, compact)."""
        reply = await until_disconnect(request, route.provider.forward(target.url, target.body, target.headers))
        reply.headers.setdefault(self.request_id_header, request_id)
        return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=JSON)

    async def guard_stream(self, chunks: AsyncIterator[bytes], encoder: StreamEncoder) -> AsyncIterator[bytes]:
        """Forward passthrough stream bytes; a failure after the 200 becomes this protocol's
        stream error. A hook: protocols whose events carry ids and sequence numbers (Responses)
        override it to end the upstream's own stream consistently."""
        try:
            async for chunk in chunks:
                yield chunk
        except GatewayError as e:
            yield encoder.error(e)

    async def _translate(self, request: Request, call: Call, route: ModelRoute, request_id: str) -> Response:
        req = self.decode(call)
        req.model = route.upstream_model
        self.fit(req, route.max_tokens(req.max_tokens))
        req.stream = call.stream
        if call.stream:
            events = await until_disconnect(request, route.provider.open_stream(req))
            encoder = self.stream_encoder(call, request_id)
            headers = {self.request_id_header: request_id, **SSE_HEADERS}
            return EventStream(self._encode(events, encoder, call.model), headers)
        resp = await until_disconnect(request, route.provider.complete(req))
        resp.model = call.model
        return self.json_response(self.encode_response(resp, call), request_id)

    async def _encode(
        self, events: AsyncIterator[list[ir.StreamEvent]], encoder: StreamEncoder, model: str
    ) -> AsyncIterator[bytes]:
        """Encode each batch of IR events into one write of the client's wire bytes."""
        try:
            async for batch in events:
                out: list[bytes] = []
                for event in batch:
                    if isinstance(event, ir.StreamError):
                        out.append(encoder.error(event.error))
                        yield b"".join(out)
                        return
                    if isinstance(event, ir.MessageStart):
                        event.model = model
                    data = encoder.encode(event)
                    if data:
                        out.append(data)
                if out:
                    yield b"".join(out)
            tail = encoder.end()
            if tail:
                yield tail
        except GatewayError as e:
            yield encoder.error(e)
        except Exception as e:  # never let a bug end a stream without a word
            yield encoder.error(InternalError(f"internal error: {type(e).__name__}"))
        finally:
            # Close the upstream stream now, not when the garbage collector gets to it.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


def passthrough_body(call: Call, upstream_model: str) -> bytes:
    """The client's bytes, unless the upstream knows the model by another name: then the body
    is re-serialised with that name (orjson keeps key order and every string as it was)."""
    if upstream_model == call.model:
        return call.raw
    return orjson.dumps({**call.body, "model": upstream_model})


def with_query(url: str, request: Request) -> str:
    """``url`` with the client's query string (``?beta=true``): passthrough keeps it."""
    query = request.url.query
    return f"{url}?{query}" if query else url
