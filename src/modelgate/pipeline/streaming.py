"""The client side of the wire: cancellation when the client goes away, and a streamed
response that is flushed chunk by chunk and tells the request when it started and ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before the answer was ready."""


def _watch_disconnect(receive: Receive) -> tuple[asyncio.Task[None], list[bool]]:
    """A watcher on the ASGI ``receive`` channel that cancels the current task (and so the
    upstream call it awaits) when the client disconnects. One task per request: cheaper
    than running the work in a task of its own and waiting on both."""
    task = asyncio.current_task()
    assert task is not None
    gone = [False]

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone[0] = True
        task.cancel()

    return asyncio.get_running_loop().create_task(watch()), gone


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, but cancel it if the client disconnects first (:class:`ClientDisconnected`)."""
    watcher, gone = _watch_disconnect(request.receive)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone[0]:
            raise
        _uncancel()
        raise ClientDisconnected() from None
    finally:
        watcher.cancel()


class EventStream(Response):
    """A streamed response, flushed chunk by chunk, that stops the moment the client leaves.

    Stopping cancels the task iterating ``chunks``, which closes the upstream connection
    the chunks come from. (Starlette's ``StreamingResponse`` does the same with a task group
    per response; this needs one watcher task.) ``on_first_byte`` runs when the first chunk
    has been written and ``on_close(client_gone)`` always runs once at the end, however the
    stream ends: that is where the request is settled.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        headers: dict[str, str],
        media_type: str | None = None,
        *,
        on_first_byte: Callable[[], None] | None = None,
        on_close: Callable[[bool], None] | None = None,
    ) -> None:
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        if media_type is not None:
            self.media_type = media_type
        self.on_first_byte = on_first_byte
        self.on_close = on_close
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher, gone = _watch_disconnect(receive)
        first = self.on_first_byte
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if first is not None:
                    first()
                    first = None
            watcher.cancel()  # the end of the response also ends ``receive``: stop watching first
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone[0]:
                raise
            _uncancel()
        except OSError:
            gone[0] = True  # the client went away mid-write
        finally:
            watcher.cancel()
            aclose = getattr(self.chunks, "aclose", None)
            try:
                if aclose is not None:
                    await aclose()
            finally:
                if self.on_close is not None:
                    self.on_close(gone[0])
