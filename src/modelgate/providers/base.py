"""The interface every upstream provider implements, and what they share.

A provider turns IR requests into calls to one upstream kind and parses the
answers back into IR (``complete``, ``open_stream``). When the client already
speaks the upstream's protocol, the front door uses ``forward`` /
``forward_stream`` instead: the body and the stream bytes go through untouched.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelgate import ir
from modelgate.accounting.tokens import estimate_request_tokens
from modelgate.config import ProviderConfig
from modelgate.errors import GatewayError, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.sse import SSEParser
from modelgate.providers.http import HttpClient, Timeouts, UpstreamResponse

#: Upstream response headers a passthrough hands back to the client.
_PASS_RESPONSE_HEADERS = ("request-id", "retry-after", "x-should-retry", "x-request-id", "openai-processing-ms")
_PASS_RESPONSE_PREFIXES = ("anthropic-ratelimit-", "x-ratelimit-")


@dataclass(slots=True)
class Reply:
    """A passthrough answer: the upstream's status, the headers worth keeping, the raw body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class StreamReply:
    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


def pass_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in upstream.items():
        low = name.lower()
        if low in _PASS_RESPONSE_HEADERS or low.startswith(_PASS_RESPONSE_PREFIXES):
            out[low] = value
    return out


class Provider(ABC):
    #: The wire protocol the translated path speaks to the upstream.
    protocol: str = ""
    #: Every wire protocol the upstream serves natively: a front door of one of these
    #: protocols forwards its bytes untouched (passthrough) instead of translating.
    protocols: frozenset[str] = frozenset()

    def __init__(self, config: ProviderConfig, client: HttpClient) -> None:
        if not self.protocols:
            self.protocols = frozenset({self.protocol})
        self.config = config
        self.name = config.name
        self.base_url = config.url
        self._client = client
        self._timeouts = Timeouts(config.connect_timeout, config.read_timeout)
        self._keys = itertools.cycle(config.api_keys) if config.api_keys else None
        self._secrets = [k.encode() for k in config.api_keys if len(k) >= 8]

    def passes_through(self, protocol: str, model: str) -> bool:
        """Whether a client speaking ``protocol`` for upstream ``model`` gets the passthrough path."""
        return protocol in self.protocols

    # ----------------------------------------------------------------- translated path

    @abstractmethod
    async def complete(self, req: ir.Request) -> ir.Response:
        """Send an IR request and return the whole answer."""

    @abstractmethod
    async def open_stream(self, req: ir.Request) -> AsyncIterator[list[ir.StreamEvent]]:
        """Start a streamed answer, as batches of events (one per upstream read). Errors before
        the first byte raise here; later ones are
        yielded as :class:`ir.StreamError`."""

    async def count_tokens(self, req: ir.Request) -> int:
        """Input tokens of ``req``: a local estimate unless the upstream can count."""
        return estimate_request_tokens(req)

    # ----------------------------------------------------------------- shared plumbing

    def next_key(self) -> str | None:
        return next(self._keys) if self._keys is not None else None

    def redact(self, raw: bytes) -> bytes:
        """Remove our own provider secrets from upstream text before it reaches a client."""
        for secret in self._secrets:
            if secret in raw:
                raw = raw.replace(secret, b"[redacted]")
        return raw

    @abstractmethod
    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        """The typed error for an upstream error answer (body already redacted)."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """POST and raise the typed upstream error for any status >= 400."""
        resp = await self._client.post(url, body, headers, self._timeouts, self.name)
        if resp.status >= 400:
            raw = self.redact(await resp.read())
            raise self.error_from_upstream(resp.status, raw, resp.headers)
        return resp

    def events(self, resp: UpstreamResponse, decoder: Any) -> AsyncIterator[list[ir.StreamEvent]]:
        """IR events from an upstream SSE body, parsed by ``decoder`` (``decode``/``finish``),
        with pings when the upstream is quiet."""
        return sse_events(resp, decoder.decode, decoder.finish, self._client.idle_ping)

    async def forward(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        resp = await self.post(url, body, headers)
        return Reply(resp.status, pass_headers(resp.headers), await resp.read())

    async def forward_stream(self, url: str, body: bytes, headers: Mapping[str, str]) -> StreamReply:
        resp = await self.post(url, body, headers)
        return StreamReply(resp.status, pass_headers(resp.headers), frame_aligned(resp.iter_chunks()))


async def frame_aligned(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Re-chunk an SSE byte stream on frame boundaries, so that a stream broken mid-frame
    never leaves half a frame in front of the error event that follows."""
    pending = b""
    async for chunk in chunks:
        if pending:
            chunk = pending + chunk
        cut = chunk.rfind(b"\n\n")
        if cut < 0:
            cr = chunk.rfind(b"\r\n\r\n")
            if cr < 0:
                pending = chunk
                continue
            cut = cr + 2
        pending = chunk[cut + 2 :]
        yield chunk[: cut + 2]
    if pending.strip():
        yield pending


async def sse_events(
    resp: UpstreamResponse, decode, finish, idle: float | None = None
) -> AsyncIterator[list[ir.StreamEvent]]:
    """Parse an upstream SSE body into IR events with ``decode(frame)``, then ``finish()``.

    Events come in batches, one per upstream read, so that a front door writes what one
    read brought in one write rather than one per event. Every ``idle`` seconds of upstream
    silence yields an :class:`ir.Ping` (clients give up on streams that send nothing for
    minutes). A transport failure mid-stream becomes a final :class:`ir.StreamError`.
    """
    parser = SSEParser()
    batch: list[ir.StreamEvent] = []
    try:
        async for chunk in resp.iter_chunks(idle):
            if not chunk:
                yield [ir.Ping()]
                continue
            for frame in parser.feed(chunk):
                batch.extend(decode(frame))
            if batch:
                yield batch
                batch = []
        for frame in parser.flush():
            batch.extend(decode(frame))
    except GatewayError as e:  # typed by iter_chunks: UpstreamTimeout / UpstreamUnavailable
        yield [*batch, ir.StreamError(e)]
        return
    except (ValueError, KeyError, TypeError) as e:  # a frame the decoder could not understand
        error = UpstreamUnavailable(f"upstream sent an invalid stream event: {type(e).__name__}")
        yield [*batch, ir.StreamError(error)]
        return
    finally:
        resp.close()
    batch.extend(finish())
    if batch:
        yield batch
