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
from modelgate.errors import GatewayError, InternalError, UpstreamUnavailable
from modelgate.pipeline.attempt import Answer, Counted, Relayed, RelayedStream, Streamed, close
from modelgate.pipeline.context import Call, Operation, RequestContext
from modelgate.pipeline.streaming import EventStream
from modelgate.protocols.tap import AnswerTap
from modelgate.routing.catalog import ModelRoute

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
    ctx: RequestContext,
    door: FrontDoor,
    call: Call,
    answer: Answer,
    route: ModelRoute,
    on_close: Callable[[bool], None],
) -> Response:
    """The client's response for ``answer`` from ``route``, with the headers that say what
    served (encoded once, with the route); ``on_close`` settles a stream when it ends."""
    response = _respond(ctx, door, call, answer, route, on_close)
    response.raw_headers.extend(route.served_raw)
    return response


def _respond(
    ctx: RequestContext,
    door: FrontDoor,
    call: Call,
    answer: Answer,
    route: ModelRoute,
    on_close: Callable[[bool], None],
) -> Response:
    request_id = ctx.request_id
    if isinstance(answer, RelayedStream):
        ctx.tap = tap = answer.tap
        headers = {**answer.reply.headers, **SSE_HEADERS}
        headers.setdefault(door.request_id_header, request_id)
        mark = tap.STREAM_TOOL_CALL if tap is not None and ctx.recording else None
        chunks = _relay(ctx, door, call, answer.first, answer.reply.chunks, tap, mark)
        return _stream(ctx, door, call, chunks, headers, on_close)
    if isinstance(answer, Streamed):
        encoder = door.stream_encoder(call, request_id)
        headers = {door.request_id_header: request_id, **SSE_HEADERS}
        chunks = _encode(ctx, answer.first, answer.events, encoder, route.name)
        return _stream(ctx, door, call, chunks, headers, on_close)
    if isinstance(answer, Relayed):
        reply = answer.reply
        ctx.tap = tap = answer.tap
        reply.headers.setdefault(door.request_id_header, request_id)
        if ctx.recording:
            if tap is not None:
                ctx.tool_calls = reply.body.count(tap.WHOLE_TOOL_CALL)
            if ctx.log_bodies:
                ctx.answer = [reply.body]
        return Response(reply.body, status_code=reply.status, headers=reply.headers, media_type=JSON)
    if isinstance(answer, Counted):
        return _kept(ctx, json_response(door, door.count_body(call, answer.tokens), request_id))
    resp = answer.response
    ctx.usage = resp.usage
    ctx.stop_reason = resp.stop_reason
    ctx.ended = True
    if ctx.recording:
        ctx.tool_calls = sum(1 for block in resp.content if block.__class__ is ir.ToolUseBlock)
    if call.operation is Operation.COMPACT:
        return _kept(ctx, json_response(door, door.compaction_body(call, resp), request_id))
    resp.model = route.name
    return _kept(ctx, json_response(door, door.encode_response(resp, call), request_id))


def _kept(ctx: RequestContext, response: Response) -> Response:
    """``response``, its body kept for the request log when the request's bodies are."""
    if ctx.log_bodies and ctx.recording:
        ctx.answer = [bytes(response.body)]
    return response


def _stream(
    ctx: RequestContext,
    door: FrontDoor,
    call: Call,
    chunks: AsyncIterator[bytes],
    headers: dict[str, str],
    on_close: Callable[[bool], None],
) -> EventStream:
    ctx.status = 200
    if ctx.log_bodies and ctx.recording:
        chunks = _captured(ctx, chunks)
    return EventStream(
        chunks,
        headers,
        door.stream_media_type(call),
        on_first_byte=ctx.mark_first_byte,
        on_close=on_close,
    )


async def _captured(ctx: RequestContext, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` as they go, the first ``ctx.body_cap`` bytes of them (and the chunk that
    crosses it) kept in ``ctx.answer`` for the request log. Only a request whose bodies are
    kept pays for this step; settlement cuts the answer at the cap."""
    kept = ctx.answer = []
    room = ctx.body_cap
    try:
        async for chunk in chunks:
            if room > 0:
                kept.append(chunk)
                room -= len(chunk)
            yield chunk
    finally:
        await close(chunks)


async def _relay(
    ctx: RequestContext,
    door: FrontDoor,
    call: Call,
    first: bytes,
    chunks: AsyncIterator[bytes],
    tap: AnswerTap | None,
    mark: bytes | None = None,
) -> AsyncIterator[bytes]:
    """Forward passthrough stream bytes — ``first`` (already read by the tap), then the rest —
    read by the tap on the way. A failure after the 200 becomes the door's stream error (the
    upstream's own stream, ended consistently where it can be), and so does a stream that
    stops before its protocol's end. A tap that does not rewrite bytes is handed the stream's
    last chunks only, at the end: the loop itself then costs nothing per chunk. With ``mark``
    (the request log is on), the tool calls are counted: a ``bytes.count`` of the tap's
    marker over each chunk."""
    rewriting = tap is not None and tap.rewrites
    t1 = t2 = t3 = None
    handed = tap is None
    calls = 0
    try:
        if first:
            if mark is not None:
                calls = first.count(mark)
            yield first
        async for chunk in chunks:
            if rewriting:
                assert tap is not None
                chunk = tap.feed(chunk)
                if not chunk:
                    continue
            else:
                t1, t2, t3 = t2, t3, chunk
            if mark is not None:
                calls += chunk.count(mark)
            yield chunk
        if tap is not None:
            if not rewriting:
                tap.tail((t1, t2, t3))
            handed = True
            if tap.cut_short():
                where = ctx.attempts[-1].provider
                cut = UpstreamUnavailable(f"upstream {where} ended the stream before its protocol's end")
                ctx.error = cut
                tail = door.relay_error(cut, call, tap, ctx.request_id)
                if tail:
                    yield tail
    except GatewayError as e:
        ctx.error = e
        if not handed and tap is not None and not rewriting:
            tap.tail((t1, t2, t3))
            handed = True
        tail = door.relay_error(e, call, tap, ctx.request_id)
        if tail:
            yield tail
    except Exception:  # a bug: logged in full, and the stream still ends with a word
        log.exception("unexpected error in a relayed stream (request %s)", ctx.request_id)
        ctx.error = error = InternalError(f"internal error (request {ctx.request_id})")
        yield door.relay_error(error, call, tap, ctx.request_id)
    finally:
        if not handed and tap is not None and not rewriting:
            tap.tail((t1, t2, t3))
        if calls:
            ctx.tool_calls = calls
        await close(chunks)


async def _encode(
    ctx: RequestContext,
    first: list[ir.StreamEvent],
    events: AsyncIterator[list[ir.StreamEvent]],
    encoder: StreamEncoder,
    model: str,
) -> AsyncIterator[bytes]:
    """Encode each batch of IR events — ``first``, then the rest — into one write of the
    client's wire bytes."""
    following = events.__anext__
    batch = first
    try:
        while True:
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
                    elif cls is ir.BlockStart:
                        assert isinstance(event, ir.BlockStart)
                        if event.block.__class__ is ir.ToolUseBlock:
                            ctx.tool_calls += 1
                data = encoder.encode(event)
                if data:
                    out.append(data)
            if out:
                yield b"".join(out)
            try:
                batch = await following()
            except StopAsyncIteration:
                break
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
        await close(events)
