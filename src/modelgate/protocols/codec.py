"""The one interface of the four codec packages (``anthropic``, ``openai_chat``,
``openai_responses``, ``gemini``): the same modules, the same names, the same two stream
objects.

Every package has these modules, one job each (``client_*`` serve the front door, on the
translated path; ``upstream_*`` serve a provider whose upstream speaks the protocol):

- ``client_request``: ``check_request(body)`` (the cheap checks every request gets, even on
  the passthrough path) and ``decode_request(body) -> ir.Request``;
- ``client_response``: ``encode_response(resp, ...)``, an IR answer → the client's JSON;
- ``client_stream``: ``StreamEncoder``, IR events → the client's stream bytes (:class:`StreamEncoder`);
- ``upstream_request``: ``encode_request(req, ...)``, IR → the upstream's request JSON;
- ``upstream_response``: ``decode_response(body) -> ir.Response`` and ``decode_usage``
  (``openai_chat`` keeps its usage, both ways, in ``usage``);
- ``upstream_stream``: ``StreamDecoder``, the upstream's SSE frames → IR events (:class:`StreamDecoder`);
- ``errors``: both ways: the client envelope (``render_error(err, request_id) -> (status,
  body)``, ``error_body(err)``) and the upstream's error answers (``error_from_upstream(status,
  raw, headers)``) and error objects inside a stream or a 200 body (``error_from_object``);
- ``tap``: the protocol's :class:`~modelgate.protocols.tap.AnswerTap` (passthrough answers).

What a protocol needs beyond that lives in helper modules named for what they hold (e.g.
``anthropic.blocks``, ``gemini.signatures``, ``openai_chat.client_tools``).

Each package's ``__init__`` exports at least ``PROTOCOL``, ``check_request``,
``decode_request``, ``encode_response``, ``StreamEncoder``, ``render_error``, ``error_body``,
``encode_request``, ``decode_response``, ``StreamDecoder``, ``error_from_upstream``,
``error_from_object``, ``decode_usage`` and its tap class
(``tests/protocols/test_exported_members.py`` pins this). Constructors and the extra
arguments of the functions differ where the protocols differ (a Chat stream needs the model
and the time, a Gemini stream its framing); the stream objects' methods do not.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from modelgate import ir
from modelgate.errors import GatewayError
from modelgate.protocols.sse import SSEFrame


class Background(StrEnum):
    """A client's background call that the gateway may answer itself or send elsewhere
    (recognised by a protocol's rule, e.g. ``anthropic.background``)."""

    WARMUP = "warmup"  # answered locally: spends no upstream tokens
    TITLE = "title"  # a session title: may go to a cheaper model (``router.title_model``)


class StreamEncoder(Protocol):
    """Turns IR stream events into the client's wire bytes; may keep state (indexes, sequence numbers)."""

    def encode(self, event: ir.StreamEvent) -> bytes:
        """The bytes for one event (possibly none: an encoder may hold an event back)."""
        ...

    def error(self, err: GatewayError) -> bytes:
        """The bytes that end a stream broken after it began, in the protocol's words."""
        ...

    def end(self) -> bytes:
        """The bytes that close a stream that ended normally (possibly none)."""
        ...


class StreamDecoder(Protocol):
    """Turns an upstream's SSE frames into IR events; keeps the state the protocol needs."""

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        """The events of one whole frame."""
        ...

    def finish(self) -> list[ir.StreamEvent]:
        """The upstream body ended: close what is open, or report a stream cut short."""
        ...


class StreamCollector(Protocol):
    """Collects a relayed stream's bytes into the protocol's whole answer (forced streaming:
    a non-streamed call sent upstream as a stream); raises the upstream's error, or
    :class:`~modelgate.errors.UpstreamUnavailable` for a stream that did not end."""

    def feed(self, chunk: bytes) -> None:
        """Read one chunk of the stream."""
        ...

    def finish(self) -> bytes:
        """The whole answer's JSON, once the stream has ended."""
        ...


__all__ = ["Background", "StreamCollector", "StreamDecoder", "StreamEncoder"]
