"""IR stream events, collected into the IR answer ``Provider.complete`` would have returned.

Forced internal streaming on the translated path: a non-streamed call to a provider that
forces streaming is sent with ``open_stream``, and its events are collected here into one
:class:`ir.Response`, whichever the upstream's protocol (one collector for every provider,
as there is one IR). Pure: the caller feeds the batches it reads.

Blocks are the ones ``BlockStart`` opened, filled by their deltas: text and thinking pieces
joined, tool input JSON concatenated then parsed (nothing: ``{}``), a signature replacing
the one before (as the Anthropic SDK does), citations appended. The last ``MessageDelta``
gives the stop reason and the (cumulative) usage. An :class:`ir.StreamError` raises its
error, and a stream that ends before ``MessageStop`` raises :class:`UpstreamUnavailable`:
the attempt failed, and is retried or falls back.
"""

from __future__ import annotations

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable

#: The delta kinds that grow a string of their block (its text, thinking or tool input).
_GROWING = frozenset({"text", "thinking", "input_json"})


class ResponseCollector:
    """Feeds on batches of IR events; :meth:`response` is the whole answer."""

    __slots__ = ("_blocks", "_end", "_ended", "_pieces", "_start")

    def __init__(self) -> None:
        self._start: ir.MessageStart | None = None
        self._end: ir.MessageDelta | None = None
        self._blocks: dict[int, ir.Block] = {}
        #: index → the pieces of its block's growing string (text, thinking or tool input).
        self._pieces: dict[int, list[str]] = {}
        self._ended = False

    def add(self, batch: list[ir.StreamEvent]) -> None:
        """Read one batch; an :class:`ir.StreamError` raises its error."""
        for event in batch:
            cls = event.__class__
            if cls is ir.BlockDelta:
                assert isinstance(event, ir.BlockDelta)
                self._delta(event)
            elif cls is ir.BlockStart:
                assert isinstance(event, ir.BlockStart)
                self._blocks[event.index] = event.block
            elif cls is ir.MessageStart:
                assert isinstance(event, ir.MessageStart)
                self._start = event
            elif cls is ir.MessageDelta:
                assert isinstance(event, ir.MessageDelta)
                self._end = event
            elif cls is ir.MessageStop:
                self._ended = True
            elif cls is ir.StreamError:
                assert isinstance(event, ir.StreamError)
                error = event.error
                raise error if isinstance(error, GatewayError) else UpstreamUnavailable(str(error))

    def _delta(self, event: ir.BlockDelta) -> None:
        index, kind, value = event.index, event.kind, event.value
        if kind in _GROWING:
            if (pieces := self._pieces.get(index)) is None:
                self._pieces[index] = [value]
            else:
                pieces.append(value)
            return
        block = self._blocks.get(index)
        if kind == "signature" and hasattr(block, "signature"):
            block.signature = value  # type: ignore[union-attr]  # text, thinking or tool use: all have one
        elif kind == "citation" and isinstance(block, ir.TextBlock):
            if block.citations is None:
                block.citations = [value]
            else:
                block.citations.append(value)

    def response(self) -> ir.Response:
        """The answer; raises :class:`UpstreamUnavailable` when the stream did not end."""
        start, end = self._start, self._end
        if start is None or not self._ended:
            raise UpstreamUnavailable("upstream stream ended before the end of its message")
        blocks = self._blocks
        for index, pieces in self._pieces.items():
            block = blocks.get(index)
            joined = "".join(pieces)
            if isinstance(block, ir.TextBlock):
                block.text += joined
            elif isinstance(block, ir.ThinkingBlock):
                block.thinking += joined
            elif isinstance(block, ir.ToolUseBlock):
                try:
                    block.input = orjson.loads(joined) if joined.strip() else block.input or {}
                except orjson.JSONDecodeError:
                    raise UpstreamUnavailable("upstream streamed tool input that is not JSON") from None
        content = [blocks[i] for i in sorted(blocks)]
        if end is None:
            return ir.Response(start.id, start.model, content, None, start.usage)
        return ir.Response(start.id, start.model, content, end.stop_reason, end.usage, end.stop_sequence)
