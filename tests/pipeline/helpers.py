"""In-process gateway helpers for the pipeline, observability and app tests.

The gateway runs in this process, reached through ``httpx.ASGITransport``: no server, no
subprocess (the fake upstream is still the shared subprocess of ``tests/conftest.py``). The
transport runs the ASGI app to completion before it returns the response, so when a request
returns, a stream has already closed and its request has settled.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request

from modelgate import ir
from modelgate.app import Gateway
from modelgate.config import parse_config
from modelgate.pipeline.context import RequestContext
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config

ANTHROPIC_HEADERS = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": f"Bearer {MASTER_KEY}"}
GEMINI_HEADERS = {"x-goog-api-key": MASTER_KEY}
REQUEST_LOGGER = "modelgate.request"


def build_gateway(fake: FakeUpstream, **server: Any) -> Gateway:
    data = gateway_config(fake)
    server = {"data_dir": tempfile.mkdtemp(prefix="mg-gw-"), **server}
    data = {**data, "master_key": MASTER_KEY, "server": {**data["server"], **server}}
    return Gateway(parse_config(data, "test", env={}))


@asynccontextmanager
async def running_gateway(fake: FakeUpstream, **server: Any) -> AsyncIterator[Gateway]:
    gw = build_gateway(fake, **server)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.close()


def asgi_client(gw: Gateway, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gw.asgi(), raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30)


# --------------------------------------------------------------------------- request bodies


def anthropic_body(model: str, prompt: str = "Hello there", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return {**body, **extra}


def chat_body(model: str, prompt: str = "Hello there", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return {**body, **extra}


def responses_body(model: str, prompt: str = "Hello there", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": prompt}
    if stream:
        body["stream"] = True
    return {**body, **extra}


def gemini_body(prompt: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], **extra}


# --------------------------------------------------------------------------- settlement


class Settlements(list[tuple[RequestContext, bool]]):
    """Every ``settle(ctx, client_gone)`` call the chain made, in order."""

    @property
    def only(self) -> RequestContext:
        """The one context settled; fails unless settle ran exactly once."""
        assert len(self) == 1, f"settle ran {len(self)} times"
        return self[0][0]


def record_settlements(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> Settlements:
    calls = Settlements()
    original = gw.settler.settle

    def settle(ctx: RequestContext, client_gone: bool = False) -> None:
        calls.append((ctx, client_gone))
        original(ctx, client_gone)

    monkeypatch.setattr(gw.settler, "settle", settle)
    return calls


class RequestLogLines:
    """The request log lines (records of ``modelgate.request`` carrying the ``modelgate`` fields)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if r.name == REQUEST_LOGGER and hasattr(r, "modelgate")]

    def of(self, request_id: str) -> dict[str, Any]:
        """The fields of the one line of ``request_id``; fails unless there is exactly one."""
        lines = [r.modelgate for r in self.records if r.modelgate["request_id"] == request_id]
        assert len(lines) == 1, f"{len(lines)} log lines for {request_id}"
        return lines[0]

    def errors(self) -> list[logging.LogRecord]:
        """Records at ERROR or above on the request logger (the bugs logged with their traceback)."""
        return [r for r in self.caplog.records if r.name == REQUEST_LOGGER and r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- raw ASGI


def never() -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` that never returns (a client that neither sends nor leaves)."""

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def disconnect_after(delay: float) -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive`` whose client leaves after ``delay`` seconds."""

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"type": "http.disconnect"}

    return receive


def make_request(
    path: str = "/",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: str = "",
    receive: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    path_params: dict[str, Any] | None = None,
) -> Request:
    """A Starlette request over a hand-written scope and ``receive``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("gw", 80),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "path_params": path_params or {},
    }
    return Request(scope, receive or never())


# ----------------------------------------------------------------------------- shared by the chain tests

USAGE = {"input_tokens": 37, "output_tokens": 5}
SCRIPTED_USAGE = ir.Usage(input_tokens=37, output_tokens=5)


def streamed(raw: bytes | str) -> str:
    """The body a non-streamed Anthropic request goes upstream with when its provider forces
    streaming (``force_stream``, on by default for ``anthropic``): the client's bytes, with
    ``"stream":true`` added before the closing brace and nothing else changed."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    end = text.rindex("}")
    return text[:end] + ',"stream":true' + text[end:]


def gateway_id(r: httpx.Response) -> str:
    """The request id in the header of the door the request went to."""
    path = r.request.url.path
    return r.headers["request-id" if path.startswith("/v1/messages") else "x-request-id"]


def anthropic_error_event(message: str, kind: str = "api_error") -> bytes:
    data = orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return b"event: error\ndata: " + data + b"\n\n"


def chat_error_frame(message: str) -> bytes:
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


# ----------------------------------------------------------------------------- gateways of their own config


@asynccontextmanager
async def configured_gateway(data: dict[str, Any]) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A gateway of the config ``data`` (the master key added), started, and its ASGI client."""
    server = {"data_dir": tempfile.mkdtemp(prefix="mg-gw-"), **data.get("server", {})}
    gw = Gateway(parse_config({"master_key": MASTER_KEY, **data, "server": server}, "test", env={}))
    await gw.start()
    try:
        async with asgi_client(gw) as client:
            yield gw, client
    finally:
        await gw.close()


def provider_config(name: str, kind: str, base_url: str, keys: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """A provider entry of a config (``keys`` default to the one the fake upstream takes)."""
    return {"name": name, "type": kind, "base_url": base_url, "api_keys": list(keys or (UPSTREAM_KEY,)), **extra}
