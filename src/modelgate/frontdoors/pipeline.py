"""What every front door shares: body limits, JSON decoding, request ids, and
cancellation when the client goes away (streaming or not)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

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


def _watch_disconnect(request: Request) -> tuple[asyncio.Task[None], list[bool]]:
    """A watcher on the ASGI ``receive`` channel that cancels the current task (and so the
    upstream call it awaits) when the client disconnects. One task per request: cheaper
    than running the work in a task of its own and waiting on both."""
    task = asyncio.current_task()
    assert task is not None
    receive = request.receive
    gone = [False]

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone[0] = True
        task.cancel()

    return asyncio.get_running_loop().create_task(watch()), gone


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, but cancel it if the client disconnects first (:class:`ClientDisconnected`)."""
    watcher, gone = _watch_disconnect(request)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone[0]:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        raise ClientDisconnected() from None
    finally:
        watcher.cancel()


class EventStream(Response):
    """A streamed response, flushed chunk by chunk, that stops the moment the client leaves.

    Stopping cancels the task iterating ``chunks``, which closes the upstream connection
    the chunks come from. (Starlette's ``StreamingResponse`` does the same with a task group
    per response; this needs one watcher task.)
    """

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncIterator[bytes], headers: dict[str, str], media_type: str | None = None) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        if media_type is not None:
            self.media_type = media_type
        self.init_headers(headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        watcher, gone = _watch_disconnect(Request(scope, receive))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            watcher.cancel()  # the end of the response also ends ``receive``: stop watching first
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone[0]:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
