"""What every front door shares: body limits, JSON decoding, request ids,
cancellation when the client goes away, and keep-alive pings on quiet streams."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request

from modelgate import ir
from modelgate.errors import InvalidRequest, RequestTooLarge

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before the answer was ready."""


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("request body is empty: expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work`` but cancel it (and so the upstream call) if the client disconnects."""
    task = asyncio.ensure_future(work)
    receive = request.receive

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    if task.done():
        watcher.cancel()
        return task.result()
    task.cancel()
    raise ClientDisconnected()


async def with_keepalive(events: AsyncIterator[ir.StreamEvent], interval: float) -> AsyncIterator[ir.StreamEvent]:
    """Yield ``events``, inserting :class:`ir.Ping` whenever the upstream is silent for
    ``interval`` seconds (clients give up on streams that send no bytes for minutes)."""
    iterator = events.__aiter__()
    pending: asyncio.Future[ir.StreamEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield ir.Ping()
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
