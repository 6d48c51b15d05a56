"""The client side of the wire: ``EventStream`` (first byte, close exactly once, the chunks always
closed) and ``until_disconnect``, driven through hand-written ASGI ``receive``/``send`` callables.

Each case runs the ASGI callable in a task of its own, as a server does: the disconnect watcher
cancels the task that runs the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.pipeline.streaming import ClientDisconnected, EventStream, until_disconnect
from tests.pipeline.helpers import disconnect_after, make_request, never

SCOPE = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": []}


class Chunks:
    """An async generator of chunks that records how far it got and whether it was closed."""

    def __init__(
        self, chunks: list[bytes], *, forever: bool = False, pause: float = 0.0, fail: Exception | None = None
    ):
        self.chunks = chunks
        self.forever = forever
        self.pause = pause
        self.fail = fail
        self.yielded = 0
        self.closed = False
        self.gen = self._run()

    async def _run(self) -> AsyncIterator[bytes]:
        try:
            i = 0
            while self.forever or i < len(self.chunks):
                if self.pause:
                    await asyncio.sleep(self.pause)
                yield self.chunks[i % len(self.chunks)]
                self.yielded += 1
                i += 1
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


class Recorder:
    """``on_first_byte`` and ``on_close`` callbacks, and an ASGI ``send`` that records messages."""

    def __init__(self, fail_on_body: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.first_bytes: list[int] = []  # the number of bodies sent when on_first_byte ran
        self.closes: list[bool] = []
        self.fail_on_body = fail_on_body

    async def send(self, message: dict[str, Any]) -> None:
        is_body = message["type"] == "http.response.body"
        if is_body and self.fail_on_body is not None and len(self.bodies()) + 1 == self.fail_on_body:
            raise OSError("Broken pipe")
        self.sent.append(message)

    def bodies(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.body"]

    def first_byte(self) -> None:
        self.first_bytes.append(len(self.bodies()))

    def on_close(self, client_gone: bool) -> None:
        self.closes.append(client_gone)


def event_stream(chunks: Chunks, rec: Recorder, media_type: str | None = None) -> EventStream:
    return EventStream(
        chunks.gen,
        {"request-id": "req_1", "cache-control": "no-cache"},
        media_type,
        on_first_byte=rec.first_byte,
        on_close=rec.on_close,
    )


async def run(stream: EventStream, receive, send) -> None:
    await asyncio.wait_for(asyncio.get_running_loop().create_task(stream(SCOPE, receive, send)), timeout=5)


async def test_a_stream_that_ends_normally() -> None:
    chunks, rec = Chunks([b"event: a\n\n", b"event: b\n\n", b"event: c\n\n"]), Recorder()
    await run(event_stream(chunks, rec), never(), rec.send)
    start = rec.sent[0]
    assert (start["type"], start["status"]) == ("http.response.start", 200)
    assert dict(start["headers"]) == {
        b"request-id": b"req_1",
        b"cache-control": b"no-cache",
        b"content-type": b"text/event-stream; charset=utf-8",
    }
    assert [(m["body"], m["more_body"]) for m in rec.bodies()] == [
        (b"event: a\n\n", True),
        (b"event: b\n\n", True),
        (b"event: c\n\n", True),
        (b"", False),
    ]
    assert rec.first_bytes == [1]  # once, after the first chunk was written
    assert rec.closes == [False]
    assert chunks.closed and chunks.yielded == 3


async def test_the_media_type_is_the_callers() -> None:
    chunks, rec = Chunks([b"[{}]"]), Recorder()
    await run(event_stream(chunks, rec, "application/json"), never(), rec.send)
    assert dict(rec.sent[0]["headers"])[b"content-type"] == b"application/json"


async def test_an_empty_stream_has_no_first_byte() -> None:
    chunks, rec = Chunks([]), Recorder()
    await run(event_stream(chunks, rec), never(), rec.send)
    assert [(m["body"], m["more_body"]) for m in rec.bodies()] == [(b"", False)]
    assert rec.first_bytes == []
    assert rec.closes == [False] and chunks.closed


async def test_the_client_leaving_mid_stream_stops_it() -> None:
    chunks, rec = Chunks([b"data: x\n\n"], forever=True, pause=0.005), Recorder()
    task = asyncio.get_running_loop().create_task(event_stream(chunks, rec)(SCOPE, disconnect_after(0.05), rec.send))
    await asyncio.wait_for(task, timeout=5)
    assert not task.cancelled()  # the watcher's cancellation was absorbed, not leaked to the server
    assert task.cancelling() == 0
    assert rec.closes == [True]
    assert rec.first_bytes == [1]
    assert chunks.closed
    assert 1 <= chunks.yielded < 1000
    assert all(m["more_body"] for m in rec.bodies())  # no end of body after the client left


async def test_the_client_leaving_before_the_first_chunk() -> None:
    chunks, rec = Chunks([b"late"], pause=2.0), Recorder()
    await run(event_stream(chunks, rec), disconnect_after(0.01), rec.send)
    assert rec.closes == [True]
    assert rec.first_bytes == [] and rec.bodies() == []
    assert chunks.closed and chunks.yielded == 0


async def test_a_write_failing_with_oserror_counts_as_the_client_gone() -> None:
    chunks, rec = Chunks([b"a", b"b", b"c", b"d"]), Recorder(fail_on_body=2)
    await run(event_stream(chunks, rec), never(), rec.send)  # the OSError does not escape
    assert rec.closes == [True]
    assert [m["body"] for m in rec.bodies()] == [b"a"]
    assert rec.first_bytes == [1]
    assert chunks.closed and chunks.yielded == 1


async def test_a_failure_of_the_chunks_still_closes_once() -> None:
    chunks, rec = Chunks([b"a"], fail=RuntimeError("boom")), Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        await run(event_stream(chunks, rec), never(), rec.send)
    assert rec.closes == [False]
    assert chunks.closed


async def test_a_cancellation_from_elsewhere_propagates_and_closes_once() -> None:
    chunks, rec = Chunks([b"a"], forever=True, pause=0.005), Recorder()
    task = asyncio.get_running_loop().create_task(event_stream(chunks, rec)(SCOPE, never(), rec.send))
    await asyncio.sleep(0.03)
    task.cancel()  # a server shutting down, not the client leaving
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.closes == [False]
    assert chunks.closed


async def test_on_close_runs_after_the_chunks_are_closed() -> None:
    order: list[str] = []

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            await asyncio.sleep(10)
            yield b"b"
        finally:
            order.append("chunks closed")

    stream = EventStream(gen(), {}, on_close=lambda gone: order.append(f"on_close({gone})"))
    await run(stream, disconnect_after(0.02), Recorder().send)
    assert order == ["chunks closed", "on_close(True)"]


# --------------------------------------------------------------------------- until_disconnect


async def in_task(coro):
    task = asyncio.get_running_loop().create_task(coro)
    try:
        return await asyncio.wait_for(task, timeout=5)
    finally:
        assert task.done()


async def test_until_disconnect_returns_the_result() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 42

    watched: list[str] = []

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        finally:
            watched.append("stopped")
        raise AssertionError("unreachable")

    async def scenario() -> int:
        result = await until_disconnect(make_request(receive=receive), work())
        await asyncio.sleep(0)  # let the watcher's cancellation land
        assert asyncio.current_task().cancelling() == 0
        return result

    assert await in_task(scenario()) == 42
    assert watched == ["stopped"]  # the watcher does not outlive the work


async def test_until_disconnect_raises_when_the_client_leaves_first() -> None:
    progress: list[str] = []

    async def work() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            progress.append("work cancelled")
            raise
        return 1

    async def scenario() -> str:
        with pytest.raises(ClientDisconnected):
            await until_disconnect(make_request(receive=disconnect_after(0.02)), work())
        # The task goes on, uncancelled: the chain still answers and settles.
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0)
        return "went on"

    assert await in_task(scenario()) == "went on"
    assert progress == ["work cancelled"]


async def test_until_disconnect_ignores_other_messages() -> None:
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict[str, Any]:
        message = next(messages, None)
        if message is None:
            await asyncio.Event().wait()
        return message

    async def work() -> str:
        await asyncio.sleep(0.02)
        return "done"

    assert await in_task(until_disconnect(make_request(receive=receive), work())) == "done"


async def test_until_disconnect_lets_other_cancellations_through() -> None:
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.get_running_loop().create_task(until_disconnect(make_request(receive=never()), work()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_until_disconnect_passes_the_works_errors_through() -> None:
    async def work() -> None:
        raise ValueError("upstream said no")

    with pytest.raises(ValueError, match="upstream said no"):
        await in_task(until_disconnect(make_request(receive=never()), work()))
