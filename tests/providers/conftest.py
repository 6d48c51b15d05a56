"""Fixtures for the in-process provider tests: tiny raw HTTP/1.1 servers on 127.0.0.1 (so a test
controls every byte on the wire) and a started :class:`HttpClient`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelgate.config import ProviderConfig
from modelgate.providers import build_provider
from modelgate.providers.base import Provider
from modelgate.providers.http import HttpClient


@dataclass(slots=True)
class RawRequest:
    """One request exactly as it arrived: request line, header lines in order and case, body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {values}"
        return values[0] if values else None

    @property
    def names(self) -> list[str]:
        return [k.lower() for k, _ in self.headers]


#: Writes the answer to one request; the connection stays open for the next request unless
#: the handler closes ``writer``.
Handler = Callable[[RawRequest, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def http_response(
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    """Raw response bytes; ``Content-Length`` is added unless ``length`` is False."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunk(data: bytes) -> bytes:
    """One chunk of a ``Transfer-Encoding: chunked`` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_200 = http_response(
    200, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "chunked")], length=False
)
LAST_CHUNK = b"0\r\n\r\n"


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = line.split(" ", 2)
    headers = [(k, v) for k, _, v in (h.partition(": ") for h in rest)]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    body = await reader.readexactly(length)
    return RawRequest(method, target, headers, body)


@dataclass
class RawServer:
    """A server on 127.0.0.1 that hands every request to ``handler`` and records it."""

    handler: Handler
    requests: list[RawRequest] = field(default_factory=list)
    #: Connections accepted so far.
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while not writer.is_closing():
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                await self.handler(request, reader, writer)
        except (asyncio.CancelledError, ConnectionError):
            pass  # torn down by the test, or the client went away
        finally:
            writer.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[RawServer]]]:
    """``await raw_server(handler)`` starts a server; all are stopped after the test."""
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        server = await RawServer(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def http_client() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    await client.start()
    yield client
    await client.close()


# ----------------------------------------------------------------------------- a provider of each kind

KEY = "sk-provider-key-0123456789"
LOCAL = "http://127.0.0.1:11434/v1"


def make(kind: str, client: HttpClient | None = None, **extra: Any) -> Provider:
    if kind == "openai-compatible":
        extra.setdefault("base_url", LOCAL)
    extra.setdefault("api_keys", [KEY])
    return build_provider(ProviderConfig(name=kind[:4], type=kind, **extra), client or HttpClient())
