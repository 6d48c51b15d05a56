"""Respond: the answer, in the client's bytes.

A relayed answer goes out as the upstream wrote it, read by the door's tap on the way
(usage, the end); a translated one is encoded by the door's codec, one write per upstream
read. Either way the request context learns the usage, whether the answer ended as its
protocol promises, and when the first byte left; a stream settles the request when it
closes (``on_close``), a whole answer when the chain returns.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from modelgate import ir
from modelgate.errors import GatewayError, InternalError
from modelgate.pipeline.attempt import Answer, Counted, Relayed, RelayedStream, Streamed
from modelgate.pipeline.context import Call, Operation, RequestContext
from modelgate.pipeline.streaming import EventStream
from modelgate.protocols.tap import AnswerTap

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor
    from modelgate.protocols.codec import StreamEncoder

JSON = "application/json"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

log = logging.getLogger("modelgate.request")


def json_response(door: FrontDoor, body: Any, request_id: str, status: int = 200) -> Response:
    headers = {door.request_id_header: request_id}
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def respond(
    ctx: RequestContext, door: FrontDoor, call: Call, answer: Answer, on_close: Callable[[bool], None]
) -> Response:
    """The client's response for ``answer``; ``on_close`` settles a stream when it ends."""
    request_id = ctx.request_id
    if isinstance(answer, RelayedStream):
        ctx.tap = tap = door.tap(call)
        headers = {**answer.reply.headers, **SSE_HEADERS}
        headers.setdefault(door.request_id_header, request_id)
        chunks = _relay(ctx, door, call, answer.reply.chunks, tap)
        return _stream(ctx, door, call, chunks, headers, on_close)
    if isinstance(answer, Streamed):
        encoder = door.stream_encoder(call, request_id)
        headers = {door.request_id_header: request_id, **SSE_HEADERS}
        return _stream(ctx, door, call, _encode(ctx, answer.events, encoder, call.model), headers, on_close)
    if isinstance(answer, Relayed):
        reply = answer.reply
        ctx.tap = tap = door.tap(call)
        if tap is not None and reply.status < 300:
            tap.whole(reply.body)
        reply.headers.setdefault(door.request_id_header, request_id)
        return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=JSON)
    if isinstance(answer, Counted):
        return json_response(door, door.count_body(call, answer.tokens), request_id)
    resp = answer.response
    ctx.usage = resp.usage
    ctx.stop_reason = resp.stop_reason
    ctx.ended = True
    if call.operation is Operation.COMPACT:
        return json_response(door, door.compaction_body(call, resp), request_id)
    resp.model = call.model
    return json_response(door, door.encode_response(resp, call), request_id)


def _stream(
    ctx: RequestContext,
    door: FrontDoor,
    call: Call,
    chunks: AsyncIterator[bytes],
    headers: dict[str, str],
    on_close: Callable[[bool], None],
) -> EventStream:
    ctx.status = 200
    return EventStream(
        chunks,
        headers,
        door.stream_media_type(call),
        on_first_byte=ctx.mark_first_byte,
        on_close=on_close,
    )


async def _relay(
    ctx: RequestContext, door: FrontDoor, call: Call, chunks: AsyncIterator[bytes], tap: AnswerTap | None
) -> AsyncIterator[bytes]:
    """Forward passthrough stream bytes, read by the tap on the way; a failure after the 200
    becomes the door's stream error (the upstream's own stream, ended consistently where it
    can be). A tap that does not rewrite bytes is handed the stream's first and last chunks
    only, at the end: the loop itself then costs nothing per chunk."""
    rewriting = tap is not None and tap.rewrites
    first: bytes | None = None
    t1 = t2 = t3 = None
    try:
        async for chunk in chunks:
            if rewriting:
                assert tap is not None
                chunk = tap.feed(chunk)
                if not chunk:
                    continue
            elif first is None:
                first = chunk
            else:
                t1, t2, t3 = t2, t3, chunk
            yield chunk
    except GatewayError as e:
        ctx.error = e
        if tap is not None and not rewriting:
            tap.ends(first, (t1, t2, t3))
            first = None
        tail = door.relay_error(e, call, tap, ctx.request_id)
        if tail:
            yield tail
    except Exception:  # a bug: logged in full, and the stream still ends with a word
        log.exception("unexpected error in a relayed stream (request %s)", ctx.request_id)
        ctx.error = error = InternalError(f"internal error (request {ctx.request_id})")
        yield door.relay_error(error, call, tap, ctx.request_id)
    finally:
        if tap is not None and not rewriting:
            tap.ends(first, (t1, t2, t3))
        await _close(chunks)


async def _encode(
    ctx: RequestContext, events: AsyncIterator[list[ir.StreamEvent]], encoder: StreamEncoder, model: str
) -> AsyncIterator[bytes]:
    """Encode each batch of IR events into one write of the client's wire bytes."""
    try:
        async for batch in events:
            out: list[bytes] = []
            for event in batch:
                cls = event.__class__  # exact classes (IR events are final): no call per event
                if cls is not ir.BlockDelta:  # the bulk of a stream: nothing to note
                    if cls is ir.StreamError:
                        assert isinstance(event, ir.StreamError)
                        ctx.error = event.error
                        out.append(encoder.error(event.error))
                        yield b"".join(out)
                        return
                    if cls is ir.MessageStart:
                        assert isinstance(event, ir.MessageStart)
                        event.model = model
                        ctx.usage = event.usage
                    elif cls is ir.MessageDelta:
                        assert isinstance(event, ir.MessageDelta)
                        ctx.usage = event.usage
                        ctx.stop_reason = event.stop_reason
                    elif cls is ir.MessageStop:
                        ctx.ended = True
                data = encoder.encode(event)
                if data:
                    out.append(data)
            if out:
                yield b"".join(out)
        tail = encoder.end()
        if tail:
            yield tail
    except GatewayError as e:
        ctx.error = e
        yield encoder.error(e)
    except Exception:  # a bug: logged in full, and the stream still ends with a word
        log.exception("unexpected error in a stream (request %s)", ctx.request_id)
        ctx.error = error = InternalError(f"internal error (request {ctx.request_id})")
        yield encoder.error(error)
    finally:
        await _close(events)


async def _close(stream: AsyncIterator[Any]) -> None:
    """Close the upstream stream now, not when the garbage collector gets to it."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
