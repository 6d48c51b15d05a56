"""Attempt: one upstream call, with the key chosen for it.

Passthrough when the upstream speaks the client's protocol (the client's bytes go out, the
answer is relayed), else translated through the IR with the door's codec. An attempt ends
when the upstream has answered with its status line (or failed; a stream's status line
must come within the provider's ``first_byte_timeout``, ``HttpClient.post``): nothing has
reached the client yet, so the chain may still retry, rotate the key or fall back. The answer it
returns is opened, not read: the respond stage turns it into the client's bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from modelgate import ir
from modelgate.pipeline.context import Call, Operation
from modelgate.pipeline.streaming import until_disconnect
from modelgate.providers.base import Reply, StreamReply
from modelgate.providers.keys import UpstreamKey
from modelgate.routing.catalog import ModelRoute

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor


@dataclass(slots=True)
class Relayed:
    """A passthrough answer, whole."""

    reply: Reply

    @property
    def status(self) -> int:
        return self.reply.status


@dataclass(slots=True)
class RelayedStream:
    """A passthrough answer, streaming: the upstream's bytes, not yet read."""

    reply: StreamReply

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
    """A translated answer, streaming: batches of IR events, not yet read."""

    events: AsyncIterator[list[ir.StreamEvent]]
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
) -> Answer:
    """Call the upstream of ``route`` once; raise its typed error if it fails. A stream's
    status line must come within ``first_byte`` seconds (the provider's
    ``first_byte_timeout`` by default)."""
    provider = route.provider
    if passthrough if passthrough is not None else is_passthrough(door, route):
        url = provider.passthrough_url(call, door.protocol, route.upstream_model) + door.passthrough_query(request)
        body = door.passthrough_body(call, route.upstream_model)
        headers = provider.headers(key, request.headers, door.protocol)
        if call.stream:
            relaying = provider.relay_stream(url, body, headers, first_byte)
            return RelayedStream(await until_disconnect(request, relaying))
        return Relayed(await until_disconnect(request, provider.relay(url, body, headers)))
    if call.operation is Operation.COUNT_TOKENS:
        req = door.decode_count(call)
        req.model = route.upstream_model
        return Counted(await until_disconnect(request, provider.count_tokens(req, key)))
    if call.operation is Operation.COMPACT:
        req = door.decode_compaction(call)
        req.model = route.upstream_model
        req.max_tokens = route.max_tokens(req.max_tokens)
        return Completed(await until_disconnect(request, provider.complete(req, key)))
    req = door.decode(call)
    req.model = route.upstream_model
    door.fit(req, route.max_tokens(req.max_tokens))
    req.stream = call.stream
    if call.stream:
        return Streamed(await until_disconnect(request, provider.open_stream(req, key, first_byte)))
    return Completed(await until_disconnect(request, provider.complete(req, key)))
