"""Reading upstream streams: SSE bytes re-cut on frame boundaries (passthrough), and SSE
parsed into batches of IR events (translated path)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from modelgate import ir
from modelgate.errors import ErrorKind, GatewayError, UpstreamUnavailable
from modelgate.protocols.sse import SSEFrame, SSEParser
from modelgate.providers.http import UpstreamResponse


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
    resp: UpstreamResponse,
    decode: Callable[[SSEFrame], list[ir.StreamEvent]],
    finish: Callable[[], list[ir.StreamEvent]],
    idle: float | None = None,
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
    except GatewayError as e:  # typed by iter_chunks (UpstreamTimeout / UpstreamUnavailable), or a codec's refusal
        if e.kind is ErrorKind.INVALID_REQUEST:  # of what the upstream sent: not the client's fault
            e = UpstreamUnavailable(f"upstream sent an event this route cannot translate: {e.message}")
        yield [*batch, ir.StreamError(e)]
        return
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:  # a frame the decoder could not read
        error = UpstreamUnavailable(f"upstream sent an invalid stream event: {type(e).__name__}")
        yield [*batch, ir.StreamError(error)]
        return
    finally:
        resp.close()
    batch.extend(finish())
    if batch:
        yield batch
