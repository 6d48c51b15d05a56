"""An OpenAI Responses stream, collected into the ``response`` object the non-streamed API returns.

Forced internal streaming (``providers[].force_stream``, decision 0003) sends a client's
non-streamed ``POST /v1/responses`` upstream with ``"stream": true``; the client still gets the
one JSON object it asked for. The Responses stream makes that simple: its terminal event,
``response.completed`` (or ``response.incomplete``), carries the whole ``response`` object,
exactly as the non-streamed API returns it, so :class:`ResponseCollector` returns that object
(its key order and unknown keys kept) and reads nothing else of the stream but the events
that end it: frames whose ``event:`` line names another event are not parsed at all.

``response.failed`` and ``error`` events raise the upstream's error (:func:`error_from_object`:
the code gives the status); a stream that ends without a terminal event, or whose events are
not the protocol's, raises :class:`UpstreamUnavailable` (502). Either way nothing has reached
the client, so the attempt is retried or falls back. Only the generation endpoint is forced,
never ``/v1/responses/compact``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.anthropic.collect import with_stream
from modelgate.protocols.openai_responses.errors import error_from_object

#: The events that end a stream with the whole response.
_ENDS = frozenset({"response.completed", "response.incomplete"})
#: The events that end it with an error.
_FAILS = frozenset({"response.failed", "error"})
#: What an ``event:`` line may name for its frame to be parsed.
_READ = frozenset(name.encode() for name in _ENDS | _FAILS)


class ResponseCollector:
    """Feeds on a stream's chunks, cut anywhere; :meth:`finish` returns the response JSON."""

    __slots__ = ("_chunks",)

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        """Keep one chunk: the stream is read once, when it has ended."""
        self._chunks.append(chunk)

    def finish(self) -> bytes:
        """The ``response`` of the terminal event, as the non-streamed API writes it; raises
        the upstream's error, or when the stream did not end as the protocol promises."""
        stream = b"".join(self._chunks)
        self._chunks.clear()
        if stream.find(b"\r") >= 0:
            stream = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        for frame in stream.split(b"\n\n"):
            response = self._frame(frame.strip(b"\n"))
            if response is not None:
                return orjson.dumps(response)
        raise UpstreamUnavailable("upstream stream ended before response.completed")

    @staticmethod
    def _frame(frame: bytes) -> dict[str, Any] | None:
        """The response of a terminal event; None for any other frame."""
        data_lines = []
        for line in frame.split(b"\n"):
            if line.startswith(b"event:"):
                if line[6:].strip() not in _READ:
                    return None
            elif line.startswith(b"data:"):
                data_lines.append(line[5:].removeprefix(b" "))
        if not data_lines:
            return None
        try:
            event = orjson.loads(b"\n".join(data_lines))
            kind = event["type"] if isinstance(event, dict) else None
        except (ValueError, KeyError, TypeError) as e:
            raise UpstreamUnavailable(f"upstream sent a stream event that is not the protocol's ({e!r:.80})") from None
        if kind in _ENDS:
            response = event.get("response")
            if not isinstance(response, dict):
                raise UpstreamUnavailable(f"upstream sent a {kind} event without its response")
            return response
        if kind in _FAILS:
            raise error_from_object(event)
        return None


__all__ = ["ResponseCollector", "with_stream"]
