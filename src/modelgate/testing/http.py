"""Raw ASGI plumbing for the fake upstream.

Raw ASGI rather than a framework because the fake sits on the benchmark path:
one request costs a dict lookup for the route and a handful of ``send`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream; charset=utf-8"


class BreakConnection(Exception):
    """Raised after a partial body so that the server drops the connection (the ``break`` script).

    ASGI has no "abort" message; every server closes the transport when the app
    raises after the response has started, which is exactly a peer dying mid-body.
    """


class BodyTooLarge(Exception):
    pass


@dataclass(slots=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw_headers: Headers
    body: bytes

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query)) if self.query else {}


def headers_dict(raw: Headers) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", " as HTTP allows."""
    out: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def retry_after(status: int, seconds: float | None) -> str | None:
    """The ``retry-after`` value for a scripted error: as given, else 1 s for a 429 (whole seconds as the APIs do)."""
    if seconds is None:
        return "1" if status == 429 else None
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def make_headers(content_type: bytes, extra: dict[str, str] | None) -> Headers:
    headers: Headers = [(b"content-type", content_type)]
    if extra:
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


async def send_body(send: Send, status: int, body: bytes, headers: Headers, break_body: bool = False) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if break_body:
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise BreakConnection
    await send({"type": "http.response.body", "body": body})


async def send_stream(
    send: Send,
    headers: Headers,
    frames: list[bytes],
    *,
    stall: float = 0.0,
    break_after: int | None = None,
    error_after: int | None = None,
    error_frame: bytes = b"",
    coalesce: bool = False,
) -> None:
    """Send ``frames`` as a 200 event stream, one ``send`` per event, as a real server flushes them.

    ``coalesce`` sends the whole stream in one write instead: half the server CPU per
    request, for benchmarks that want the fake out of the way more than realism.
    """
    headers.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if coalesce and not stall and break_after is None and error_after is None:
        await send({"type": "http.response.body", "body": b"".join(frames)})
        return
    for i, frame in enumerate(frames):
        if break_after is not None and i >= break_after:
            raise BreakConnection
        if stall and i:
            await asyncio.sleep(stall)
        if error_after is not None and i >= error_after:
            await send({"type": "http.response.body", "body": error_frame, "more_body": True})
            break
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    else:
        if break_after is not None:
            raise BreakConnection
    await send({"type": "http.response.body", "body": b""})
