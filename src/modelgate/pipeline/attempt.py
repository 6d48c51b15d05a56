"""Attempt: one upstream call, with the key chosen for it.

Passthrough when the upstream speaks the client's protocol (the client's bytes go out, the
answer is relayed), else translated through the IR with the door's codec. An attempt ends
when the answer has started — a whole answer read, or a stream's first event — or failed:
nothing has reached the client yet, so the chain may still retry, rotate the key or fall
back. Whatever the upstream got wrong by then is a failed attempt too: a stream whose status
line does not come within the provider's ``first_byte_timeout`` (504, ``HttpClient.post``),
a 200 whose body is not the protocol's JSON, an empty stream or one that is not an event
stream at all (502), a stream whose first event is an error (the upstream's error). The rest
of a stream is not read here: the respond stage turns it into the client's bytes.

A non-streamed generation to a provider that forces streaming (``force_stream``) is the one
exception: it goes upstream as a stream (with the first-byte timeout) and the whole stream is
read here, collected into the answer the client asked for — by the door's collector on the
passthrough path, by :class:`~modelgate.protocols.collect.ResponseCollector` on the translated
one. A stream that fails or stops before its end is a failed attempt, like a broken answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamHTTPError, UpstreamUnavailable
from modelgate.pipeline.context import Call, Operation
from modelgate.pipeline.streaming import until_disconnect
from modelgate.protocols.cleanup import clean_request
from modelgate.protocols.codec import StreamCollector
from modelgate.protocols.collect import ResponseCollector
from modelgate.protocols.tap import AnswerTap
from modelgate.providers.base import Provider, Reply, StreamReply, describe_body
from modelgate.providers.keys import UpstreamKey
from modelgate.routing.catalog import ModelRoute

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor

log = logging.getLogger("modelgate.request")

#: How a relayed stream may begin: an SSE field (or comment), or a Gemini JSON array.
_STREAM_STARTS = (b"event:", b"data:", b":", b"id:", b"retry:", b"[")


@dataclass(slots=True)
class Relayed:
    """A passthrough answer, whole, and the tap that has read it."""

    reply: Reply
    tap: AnswerTap | None = None

    @property
    def status(self) -> int:
        return self.reply.status


@dataclass(slots=True)
class RelayedStream:
    """A passthrough answer, streaming: its first chunk (already read by the tap) and the
    upstream's bytes after it, not yet read."""

    reply: StreamReply
    first: bytes = b""
    tap: AnswerTap | None = None

    @property
    def status(self) -> int:
        return self.reply.status


@dataclass(slots=True)
class Completed:
    """A translated answer, whole (a generation or a compaction)."""

    response: ir.Response
    status = 200


@dataclass(slots=True)
class Streamed:
    """A translated answer, streaming: its first batch of IR events, and the batches after
    it, not yet read."""

    events: AsyncIterator[list[ir.StreamEvent]]
    first: list[ir.StreamEvent]
    status = 200


@dataclass(slots=True)
class Counted:
    """A translated token count."""

    tokens: int
    status = 200


Answer = Relayed | RelayedStream | Completed | Streamed | Counted


def upstream_request_id(answer: Answer) -> str | None:
    """The upstream's own id for a relayed answer (its ``request-id`` / ``x-request-id``), which
    the client gets in place of the gateway's: the log line keeps both."""
    if isinstance(answer, (Relayed, RelayedStream)):
        headers = answer.reply.headers
        return headers.get("request-id") or headers.get("x-request-id")
    return None


def is_passthrough(door: FrontDoor, route: ModelRoute) -> bool:
    return route.provider.passes_through(door.protocol, route.upstream_model)


async def attempt(
    request: Request,
    door: FrontDoor,
    call: Call,
    route: ModelRoute,
    key: UpstreamKey | None,
    passthrough: bool | None = None,
    first_byte: float | None = None,
    request_id: str | None = None,
) -> Answer:
    """Call the upstream of ``route`` once; raise its typed error if it fails. A stream's
    status line must come within ``first_byte`` seconds (the provider's
    ``first_byte_timeout`` by default). A translated request is first cleaned of what the
    upstream's protocol rejects, each change logged with ``request_id``."""
    provider = route.provider
    if passthrough if passthrough is not None else is_passthrough(door, route):
        url = provider.passthrough_url(call, door.protocol, route.upstream_model) + door.passthrough_query(request)
        upstream_model = route.upstream_model
        if upstream_model == call.model:
            body = door.passthrough_body(call, upstream_model)
        else:  # another model serves: fitted to its rules
            body = door.passthrough_body(call, upstream_model, route.output_cap())
        headers = provider.headers(key, request.headers, door.protocol)
        if call.stream:
            stream = await until_disconnect(request, provider.relay_stream(url, body, headers, first_byte))
            started = _started(stream, door.tap(call), provider)
            if isinstance(started, GatewayError):
                await close(stream.chunks)
                raise started
            return started
        forced = door.forced_stream(call, body) if provider.force_stream else None
        if forced is None:
            reply = await until_disconnect(request, provider.relay(url, body, headers))
        else:  # sent as a stream (a hung upstream is found by the first-byte timeout), collected
            streamed_body, collector = forced
            streamed_url = door.forced_stream_url(call, url)
            reading = provider.relay_stream_whole(streamed_url, streamed_body, headers, first_byte)
            reply = _collected(await until_disconnect(request, reading), collector, provider)
        return Relayed(reply, _read_whole(reply, door.tap(call), provider))
    if call.operation is Operation.COUNT_TOKENS:
        req = door.decode_count(call)
        req.model = route.upstream_model
        _clean(req, provider, request_id)
        return Counted(await until_disconnect(request, provider.count_tokens(req, key)))
    if call.operation is Operation.COMPACT:
        req = door.decode_compaction(call)
        req.model = route.upstream_model
        _clean(req, provider, request_id)
        req.max_tokens = route.max_tokens(req.max_tokens)
        return Completed(await until_disconnect(request, provider.complete(req, key)))
    req = door.decode(call)
    req.model = route.upstream_model
    door.fit(req, route.max_tokens(req.max_tokens))
    req.stream = call.stream
    _clean(req, provider, request_id)
    if call.stream:
        opening = _open_events(provider.open_stream(req, key, first_byte), provider.name)
        events, batch = await until_disconnect(request, opening)
        return Streamed(events, batch)
    if provider.force_stream:  # sent as a stream, collected into what ``complete`` returns
        collecting = _collected_events(provider.open_stream(req, key, first_byte))
        return Completed(await until_disconnect(request, collecting))
    return Completed(await until_disconnect(request, provider.complete(req, key)))


def _clean(req: ir.Request, provider: Provider, request_id: str | None) -> None:
    """Clean ``req`` for the provider's protocol (:mod:`modelgate.protocols.cleanup`), logging
    each change at debug level: a client whose request changed shape can find out why."""
    for note in clean_request(req, provider.protocol):
        log.debug("request %s: %s (upstream %s)", request_id, note, provider.name)


def _not_a_stream(status: int, first: bytes, provider: Provider) -> GatewayError | None:
    """The failure of a stream that is empty or is not an event stream at all (``first``: its
    first bytes)."""
    if first.startswith(_STREAM_STARTS) or first.lstrip().startswith(_STREAM_STARTS):
        return None
    if not first:
        return UpstreamUnavailable(f"upstream {provider.name} answered {status} with an empty stream")
    what = describe_body(provider.redact(first))
    return UpstreamUnavailable(f"upstream {provider.name} answered {status} with {what}, not an event stream")


def _started(stream: StreamReply, tap: AnswerTap | None, provider: Provider) -> RelayedStream | GatewayError:
    """The answer; or the failure of a stream that is empty, is not one, or whose first event
    is an error (returned, for the caller to close the stream and raise)."""
    first = stream.first
    failure = _not_a_stream(stream.status, first, provider)
    if failure is not None:
        return failure
    if tap is not None:
        first = tap.feed(first)
        if tap.opened_with_error():
            return tap.error or UpstreamUnavailable(f"upstream {provider.name} opened its stream with an error")
    return RelayedStream(stream, first, tap)


def _collected(stream: Reply, collector: StreamCollector, provider: Provider) -> Reply:
    """A forced stream, read whole, collected into the answer the client asked for, with the
    stream's headers: what a non-streamed relay would have returned. A stream that failed or
    did not end raises (nothing has reached the client: the chain retries)."""
    failure = _not_a_stream(stream.status, stream.body, provider)
    if failure is not None:
        raise failure
    collector.feed(stream.body)
    try:
        body = collector.finish()
    except UpstreamHTTPError as e:  # the upstream's error event: keys it quotes are redacted
        if isinstance(e.body, dict):
            e.body = orjson.loads(provider.redact(orjson.dumps(e.body)))
        e.message = provider.redact(e.message.encode()).decode()
        raise
    return Reply(stream.status, stream.headers, body)


async def _collected_events(opening: Awaitable[AsyncIterator[list[ir.StreamEvent]]]) -> ir.Response:
    """A forced translated stream, read to its end and collected into the IR answer."""
    events = await opening
    collector = ResponseCollector()
    try:
        async for batch in events:
            collector.add(batch)
    finally:
        await close(events)
    return collector.response()


async def _open_events(
    opening: Awaitable[AsyncIterator[list[ir.StreamEvent]]], where: str
) -> tuple[AsyncIterator[list[ir.StreamEvent]], list[ir.StreamEvent]]:
    """The translated stream and its first batch of events (keep-alive pings skipped); a
    stream whose first event is an error raises that error."""
    events = await opening
    batch = await anext(events, None)
    while batch is not None and isinstance(batch[0], ir.Ping):
        batch = await anext(events, None)
    if batch is None:
        raise UpstreamUnavailable(f"upstream {where} sent an empty stream")
    head = batch[0]
    if isinstance(head, ir.StreamError):
        await close(events)
        raise head.error
    return events, batch


def _read_whole(reply: Reply, tap: AnswerTap | None, provider: Provider) -> AnswerTap | None:
    """The tap, having read a relayed answer's body: a success whose body is not the
    protocol's JSON (a maintenance page, JSON cut short) is the upstream's failure."""
    if reply.status >= 300:
        return tap
    if tap is not None:
        if tap.whole(reply.body):
            return tap
    elif isinstance(_loads(reply.body), dict):
        return tap
    what = describe_body(provider.redact(reply.body))
    raise UpstreamUnavailable(f"upstream {provider.name} answered {reply.status} with {what}, not a JSON answer")


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def close(stream: AsyncIterator[Any]) -> None:
    """Close an upstream stream now, not when the garbage collector gets to it."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
