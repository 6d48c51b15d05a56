"""A TCP proxy that records every HTTP/1.1 exchange passing through it, with timings.

The end-to-end runners put it between a real CLI and the gateway, to see what the
CLI itself sends (the fake upstream only sees what the gateway forwards): requests
the gateway answers on its own (a refused WebSocket handshake, a model list) and the
exact bytes of every request body. Bytes are forwarded unchanged as they arrive; a
copy of each direction is parsed on the side (request and status lines, headers,
``content-length`` or chunked bodies, bodies read to the close) and recorded as::

    {"conn", "method", "target", "headers", "body", "sent_at",
     "status", "response_headers", "response_at", "ended_at"}

Times are seconds since the proxy started (``time.monotonic``); headers are lower-cased
names mapped to their last value; ``body`` is the request body decoded as UTF-8 (with
replacement). Parsing stops on a connection that switches protocols (``101``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

_NO_BODY_STATUSES = frozenset({204, 304})


class _Tap:
    """A stream of the bytes seen in one direction, for a parser to read at its own pace."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader(limit=1 << 24)

    def feed(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def close(self) -> None:
        self.reader.feed_eof()


def _parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], *, to_eof: bool) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read() if to_eof else b""


class RecordingProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` in a background thread."""

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.started = time.monotonic()
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="recording-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def records(self) -> list[dict[str, Any]]:
        """The exchanges so far, in the order their requests were sent."""
        with self._lock:
            return sorted((dict(r) for r in self._records), key=lambda r: r["sent_at"])

    def start(self) -> RecordingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 4)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._connections += 1
        conn = self._connections
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        up, down = _Tap(), _Tap()
        pending: deque[dict[str, Any]] = deque()
        tasks = [
            asyncio.ensure_future(self._pipe(client_r, server_w, up)),
            asyncio.ensure_future(self._pipe(server_r, client_w, down)),
            asyncio.ensure_future(self._requests(conn, up, pending)),
            asyncio.ensure_future(self._responses(down, pending)),
        ]
        try:
            await asyncio.gather(*tasks[:2], return_exceptions=True)
            await asyncio.wait(tasks[2:], timeout=1)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                with contextlib.suppress(Exception):
                    writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, tap: _Tap) -> None:
        try:
            while data := await src.read(65536):
                tap.feed(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            tap.close()
            with contextlib.suppress(Exception):
                if dst.can_write_eof():
                    dst.write_eof()

    async def _requests(self, conn: int, tap: _Tap, pending: deque[dict[str, Any]]) -> None:
        reader = tap.reader
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            while True:
                line, headers = _parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
                sent_at = self._now()
                method, _, rest = line.partition(" ")
                target = rest.rsplit(" ", 1)[0]
                body = await _read_body(reader, headers, to_eof=False)
                record: dict[str, Any] = {
                    "conn": conn,
                    "method": method,
                    "target": target,
                    "headers": headers,
                    "body": body.decode("utf-8", errors="replace"),
                    "sent_at": sent_at,
                    "status": None,
                    "response_headers": {},
                    "response_at": None,
                    "ended_at": None,
                }
                with self._lock:
                    self._records.append(record)
                pending.append(record)

    async def _responses(self, tap: _Tap, pending: deque[dict[str, Any]]) -> None:
        reader = tap.reader
        with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            while True:
                line, headers = _parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
                status = int(line.split(" ")[1])
                if 100 <= status < 200 and status != 101:
                    continue
                while not pending:  # the request's head is parsed before its answer can come
                    await asyncio.sleep(0.001)
                record = pending.popleft()
                with self._lock:
                    record.update(status=status, response_headers=headers, response_at=self._now())
                if status == 101:
                    return
                if record["method"] != "HEAD" and status not in _NO_BODY_STATUSES:
                    await _read_body(reader, headers, to_eof=True)
                with self._lock:
                    record["ended_at"] = self._now()


@contextlib.contextmanager
def recording_proxy(target_host: str, target_port: int) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
