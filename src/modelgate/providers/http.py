"""The shared upstream HTTP client: one pooled aiohttp session for the whole app.

aiohttp was chosen by measurement (docs/decisions/0001-server-and-http-client.md):
it spends several times less CPU per request than httpx under concurrency.
Transport failures are turned into typed gateway errors here, in one place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp

from modelgate.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable


@dataclass(slots=True, frozen=True)
class Timeouts:
    """A provider's timeouts, with aiohttp's objects for them built once (not per request)."""

    connect: float
    read: float
    #: Seconds a streamed answer may take to send its status line (None: ``read``).
    first_byte: float | None = None
    #: Seconds of silence allowed in a stream after its status line (None: ``read``).
    idle: float | None = None
    #: Seconds the whole call may last, the answer's last byte included (None: no limit).
    total: float | None = None
    whole: aiohttp.ClientTimeout = field(init=False, repr=False, compare=False)
    stream: aiohttp.ClientTimeout = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "whole", self.client_timeout(self.read))
        object.__setattr__(self, "stream", self.client_timeout(self.first_byte or self.read))

    @property
    def stream_idle(self) -> float:
        """The silence a stream may keep once its headers have come."""
        return self.idle or self.read

    def client_timeout(self, read: float) -> aiohttp.ClientTimeout:
        """aiohttp's timeouts for a call whose status line must come within ``read``."""
        return aiohttp.ClientTimeout(total=self.total, sock_connect=self.connect, sock_read=read)


class UpstreamResponse:
    """An upstream answer whose body has not been read yet."""

    __slots__ = ("_resp", "_where")

    def __init__(self, resp: aiohttp.ClientResponse, where: str) -> None:
        self._resp = resp
        self._where = where

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers as they came on the wire (read on every relayed answer: no decoding)."""
        return self._resp.raw_headers

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except Exception as e:
            self._resp.close()
            raise transport_error(e, self._where) from e
        finally:
            self._resp.release()

    async def iter_chunks(self, idle: float | None = None) -> AsyncIterator[bytes]:
        """The body as it arrives; a broken or silent upstream raises a typed error.

        With ``idle``, an empty chunk is yielded after every ``idle`` seconds of upstream
        silence, so that a translated stream can keep its client alive with pings.
        """
        content = self._resp.content
        try:
            while True:
                if idle is None:
                    chunk = await content.readany()
                else:
                    try:
                        async with asyncio.timeout(idle) as quiet:
                            chunk = await content.readany()
                    except TimeoutError:
                        if not quiet.expired():
                            raise  # aiohttp's own read timeout: the upstream is too silent
                        yield b""
                        continue
                if not chunk:
                    return
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as e:
            leftover = _drain(content)
            if leftover:
                yield leftover
            raise transport_error(e, self._where) from e
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection (used when the body is abandoned half-read)."""
        if not self._resp.closed:
            self._resp.close()


class HttpClient:
    """Owns the connection pool; created and closed by the application's lifespan."""

    def __init__(self, idle_ping: float | None = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        #: Seconds of upstream silence after which a translated stream sends its client a ping.
        self.idle_ping = idle_ping

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Never carry an upstream's cookies from one caller's request to another's.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        where: str,
        first_byte: float | None = None,
    ) -> UpstreamResponse:
        """Send the request and wait for the status line and headers: within ``first_byte``
        seconds when given (a stream's answer starts at once), else within ``read``; every
        gap after them may last ``read`` seconds (a stream's: ``idle``), and the whole call
        ``total``."""
        if self._session is None:
            raise RuntimeError("HttpClient.start() was not called")
        if first_byte is None:
            timeout = timeouts.whole
        elif first_byte == timeouts.first_byte:
            timeout = timeouts.stream
        else:
            timeout = timeouts.client_timeout(first_byte)
        try:
            resp = await self._session.post(url, data=body, headers=headers, timeout=timeout)
        except aiohttp.ServerTimeoutError as e:
            if first_byte is None:
                raise transport_error(e, where) from e
            raise UpstreamTimeout(f"upstream {where} sent nothing for {first_byte:g} s") from e
        except Exception as e:
            raise transport_error(e, where) from e
        if first_byte is not None and first_byte != (idle := timeouts.stream_idle):
            _read_timeout_from_now(resp, idle)
        return UpstreamResponse(resp, where)

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Timeouts, where: str) -> UpstreamResponse:
        if self._session is None:
            raise RuntimeError("HttpClient.start() was not called")
        try:
            resp = await self._session.get(url, headers=headers, timeout=timeouts.whole)
        except Exception as e:
            raise transport_error(e, where) from e
        return UpstreamResponse(resp, where)


def _read_timeout_from_now(resp: aiohttp.ClientResponse, read: float) -> None:
    """Give the connection of an answer whose headers have come ``read`` seconds for every
    silence from now on (it had ``first_byte`` for the headers). aiohttp reads its protocol's
    ``read_timeout`` whenever data arrives; the timer already running is replaced at once
    too (a private method: without it, the wait for the first event keeps ``first_byte``)."""
    protocol = resp.connection.protocol if resp.connection is not None else None
    if protocol is None:
        return
    protocol.read_timeout = read
    reschedule = getattr(protocol, "_reschedule_timeout", None)
    if reschedule is not None:
        reschedule()


def _drain(reader: aiohttp.StreamReader) -> bytes:
    """Bytes that arrived before the connection broke. aiohttp raises the error before
    handing out data still buffered, so a peer that writes and dies at once would lose
    its last events; they are read from the (private) buffer instead, if it is there."""
    buffer = getattr(reader, "_buffer", None)
    if not buffer:
        return b""
    data = b"".join(buffer)
    buffer.clear()
    return data


def transport_error(exc: Exception, where: str) -> Exception:
    """Map an aiohttp/asyncio failure to a gateway error; anything else passes through."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout(f"upstream {where} timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamUnavailable(f"could not connect to upstream {where}")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return UpstreamUnavailable(f"upstream {where} closed the connection unexpectedly")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamUnavailable(f"upstream {where} failed: {type(exc).__name__}")
    return exc
