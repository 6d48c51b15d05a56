"""Upstream adapter for the Gemini API (``generativelanguage.googleapis.com`` and servers
that speak it).

``base_url`` is written as the google-genai SDK takes it, without the API version:
requests go to ``{base_url}/v1beta/models/{model}:{method}``, the key in ``x-goog-api-key``.
The translated path always streams with ``?alt=sse``. A passthrough keeps the client's API
version and query (``alt=sse``, never the client's ``key``); a stream without ``alt=sse``
is a JSON array, re-cut on element boundaries (see ``protocols.gemini.jsonarray``) so that
an error after the start can be appended as a last element of Google's error envelope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamHTTPError, UpstreamUnavailable
from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import WireProtocol
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini.jsonarray import ArrayCutter
from modelgate.providers.base import Provider, StreamReply, pass_headers
from modelgate.providers.keys import UpstreamKey
from modelgate.providers.streams import frame_aligned

API_VERSION = "v1beta"
ARRAY_CONTENT_TYPE = "application/json; charset=UTF-8"


class GeminiProvider(Provider):
    protocol = WireProtocol.GEMINI
    protocols = frozenset({WireProtocol.GEMINI})

    def url(self, model: str, method: str, *, sse: bool = False, version: str = API_VERSION) -> str:
        return f"{self.base_url}/{version}/models/{model}:{method}" + ("?alt=sse" if sse else "")

    def passthrough_url(self, call: Call, protocol: WireProtocol, upstream_model: str) -> str:
        if call.operation is Operation.COUNT_TOKENS:
            method = "countTokens"
        else:
            method = "streamGenerateContent" if call.stream else "generateContent"
        return self.url(upstream_model, method, version=call.api_version or API_VERSION)

    def auth_header(self, secret: str) -> tuple[str, str]:
        return "x-goog-api-key", secret

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return codec.error_from_upstream(status, raw, headers)

    # ----------------------------------------------------------------- translated path

    async def complete(self, req: ir.Request, key: UpstreamKey | None) -> ir.Response:
        body = orjson.dumps(codec.encode_request(req))
        resp = await self.post(self.url(req.model, "generateContent"), body, self.headers(key))
        answer = await self.read_json(resp)
        if not isinstance(answer, dict):
            raise UpstreamUnavailable("the Gemini upstream answered with something other than a JSON object")
        return self.decoded(codec.decode_response, answer)

    async def open_stream(
        self, req: ir.Request, key: UpstreamKey | None, first_byte: float | None = None
    ) -> AsyncIterator[list[ir.StreamEvent]]:
        body = orjson.dumps(codec.encode_request(req))
        resp = await self.post(
            self.url(req.model, "streamGenerateContent", sse=True),
            body,
            self.headers(key),
            first_byte or self.first_byte_timeout,
        )
        return self.events(resp, codec.StreamDecoder())

    async def count_tokens(self, req: ir.Request, key: UpstreamKey | None) -> int:
        """Counted by Gemini itself, system instruction and tools included."""
        inner = codec.encode_request(req)
        inner.pop("generationConfig", None)
        inner.pop("toolConfig", None)
        body = orjson.dumps({"generateContentRequest": {"model": f"models/{req.model}", **inner}})
        resp = await self.post(self.url(req.model, "countTokens"), body, self.headers(key))
        return self.decoded(lambda answer: int(answer.get("totalTokens", 0)), await self.read_json(resp))

    # ----------------------------------------------------------------- passthrough

    async def relay_stream(
        self, url: str, body: bytes, headers: Mapping[str, str], first_byte: float | None = None
    ) -> StreamReply:
        resp = await self.post(url, body, headers, first_byte or self.first_byte_timeout)
        kept = pass_headers(resp.raw_headers)
        if "alt=sse" in url.partition("?")[2].split("&"):
            chunks = frame_aligned(resp.iter_chunks())
        else:
            kept["content-type"] = ARRAY_CONTENT_TYPE
            chunks = _array_chunks(resp.iter_chunks())
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            first = b""
        return StreamReply(resp.status, kept, chunks, first)


async def _array_chunks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upstream's JSON array, released element by element. A failure after the start is
    written here as a final error element (Google's envelope) that closes the array — only this
    cutter knows where the array stands — and then raised, so that the request records it (the
    door adds nothing more: ``GeminiFrontDoor.relay_error``)."""
    cutter = ArrayCutter()
    try:
        async for chunk in chunks:
            out = cutter.feed(chunk)
            if out:
                yield out
    except GatewayError as e:
        yield cutter.error_tail(orjson.dumps(codec.error_body(e), option=orjson.OPT_INDENT_2))
        raise
    rest = cutter.flush()
    if rest:
        yield rest
