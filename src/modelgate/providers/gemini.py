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
from modelgate.protocols import gemini as codec
from modelgate.protocols.gemini.jsonarray import ArrayCutter
from modelgate.providers.anthropic import parse_retry_after
from modelgate.providers.base import Provider, StreamReply, frame_aligned, pass_headers

API_VERSION = "v1beta"
#: Client identification forwarded on passthrough; credentials never pass.
_CLIENT_HEADERS = frozenset({"user-agent", "x-goog-api-client"})
ARRAY_CONTENT_TYPE = "application/json; charset=UTF-8"


class GeminiProvider(Provider):
    protocol = codec.PROTOCOL

    def url(self, model: str, method: str, *, sse: bool = False, version: str = API_VERSION) -> str:
        return f"{self.base_url}/{version}/models/{model}:{method}" + ("?alt=sse" if sse else "")

    def headers(self, client_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if client_headers is not None:
            for name, value in client_headers.items():
                if name.lower() in _CLIENT_HEADERS:
                    out[name.lower()] = value
        out.update(self.config.headers)
        key = self.next_key()
        if key is not None:
            out["x-goog-api-key"] = key
        return out

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        err = codec.error_from_upstream(status, raw)
        header_delay = parse_retry_after(headers)
        if header_delay is not None:
            err.retry_after = header_delay
        return err

    # ----------------------------------------------------------------- translated path

    async def complete(self, req: ir.Request) -> ir.Response:
        body = orjson.dumps(codec.encode_request(req))
        resp = await self.post(self.url(req.model, "generateContent"), body, self.headers())
        answer = orjson.loads(await resp.read())
        if not isinstance(answer, dict):
            raise UpstreamUnavailable("the Gemini upstream answered with something other than a JSON object")
        return codec.decode_response(answer)

    async def open_stream(self, req: ir.Request) -> AsyncIterator[list[ir.StreamEvent]]:
        body = orjson.dumps(codec.encode_request(req))
        resp = await self.post(self.url(req.model, "streamGenerateContent", sse=True), body, self.headers())
        decoder = codec.StreamDecoder()
        return self.events(resp, decoder)

    async def count_tokens(self, req: ir.Request) -> int:
        """Counted by Gemini itself, system instruction and tools included."""
        inner = codec.encode_request(req)
        inner.pop("generationConfig", None)
        inner.pop("toolConfig", None)
        body = orjson.dumps({"generateContentRequest": {"model": f"models/{req.model}", **inner}})
        resp = await self.post(self.url(req.model, "countTokens"), body, self.headers())
        return int(orjson.loads(await resp.read()).get("totalTokens", 0))

    # ----------------------------------------------------------------- passthrough

    async def forward_stream(self, url: str, body: bytes, headers: Mapping[str, str]) -> StreamReply:
        resp = await self.post(url, body, headers)
        kept = pass_headers(resp.headers)
        if "alt=sse" in url.partition("?")[2].split("&"):
            return StreamReply(resp.status, kept, frame_aligned(resp.iter_chunks()))
        kept["content-type"] = ARRAY_CONTENT_TYPE
        return StreamReply(resp.status, kept, _array_chunks(resp.iter_chunks()))


async def _array_chunks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upstream's JSON array, released element by element; a failure after the start
    becomes a final error element (Google's envelope) that closes the array."""
    cutter = ArrayCutter()
    try:
        async for chunk in chunks:
            out = cutter.feed(chunk)
            if out:
                yield out
    except GatewayError as e:
        yield cutter.error_tail(orjson.dumps(codec.error_body(e), option=orjson.OPT_INDENT_2))
        return
    rest = cutter.flush()
    if rest:
        yield rest
