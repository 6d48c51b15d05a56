"""OpenAI Chat Completions stream (``chat.completion.chunk`` frames) → IR stream events.

Chat Completions streams one flat delta per chunk; Anthropic (and so the IR) streams blocks,
each opened, filled and closed once. :class:`StreamDecoder` rebuilds the blocks:

- :class:`ir.MessageStart` once, from the first chunk (its id and model, usage zeros: the
  input count only comes at the end, in :class:`ir.MessageDelta`).
- Reasoning deltas (``reasoning_content`` or ``reasoning``) open a thinking block (no signature),
  content deltas a text block, each tool call a tool_use block; whatever opens a block of another
  kind closes the open one, so indexes run 0, 1, 2... with exactly one stop each. Empty deltas
  open nothing, so there is never an empty leading text block.
- A tool call is told apart by its ``index`` and, when the server sends one, its ``id``: a
  fragment with the open call's index and no id, or the same id again (some servers repeat it),
  continues that call; a new index or a new id (some servers put every call at index 0) starts
  the next one. ``id`` and ``name`` come from the first fragment, arguments stream as
  ``input_json`` deltas as they come (all at once is fine too); a call that got no arguments at
  all gets ``{}`` before it closes. A fragment for a call already closed (arguments interleaved
  with other output) cannot be expressed as blocks: the stream ends with an error.
- ``usage`` is taken from any chunk that has it (the last one wins): in the ``choices: []`` or
  ``choices: null`` chunk after the finish, in the finishing chunk itself, or never (zeros).
- ``data: [DONE]`` ends the message: the open block closes, then a MessageDelta (stop reason
  mapped as in :func:`.upstream_response.stop_reason_for`, the usage) and a MessageStop.
- :meth:`StreamDecoder.finish` is called by the provider when the upstream body ends. If a
  ``finish_reason`` was seen (some servers never send ``[DONE]``) the message ends normally;
  if not, the stream was cut short, which must never pass for a normal end: it yields a
  :class:`ir.StreamError` with :class:`UpstreamUnavailable`.
- ``{"error": {...}}`` inside the stream → :class:`ir.StreamError` with an
  :class:`UpstreamHTTPError` (protocol "openai"); so does a chunk that is not JSON. After an
  error or the end, the decoder ignores whatever else comes.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable
from modelgate.protocols.openai_chat.errors import error_from_object
from modelgate.protocols.openai_chat.upstream_response import fallback_tool_id, reasoning_text, stop_reason_for
from modelgate.protocols.openai_chat.usage import decode_usage
from modelgate.protocols.sse import SSEFrame


class StreamDecoder:
    """Chat Completions SSE frames (from an upstream) → IR events, in Anthropic's order."""

    __slots__ = (
        "_closed_ids",
        "_closed_indexes",
        "_done",
        "_finish_reason",
        "_id",
        "_index",
        "_matched",
        "_next",
        "_open",
        "_refusal",
        "_started",
        "_tool",
        "_tool_has_args",
        "_tool_use",
        "usage",
    )

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self._id = ""
        self._started = False
        self._done = False
        self._next = 0  # index of the next block to open
        self._index = -1  # index of the open block
        self._open: str | None = None  # kind of the open block: "thinking", "text" or "tool"
        self._tool: tuple[Any, str | None] = (None, None)  # upstream (index, id) of the open tool call
        self._tool_has_args = False
        self._closed_indexes: set[Any] = set()
        self._closed_ids: set[str] = set()
        self._tool_use = False
        self._refusal = False
        self._finish_reason: Any = None
        self._matched: Any = None

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        if self._done or not frame.data:
            return []
        if frame.data.strip() == "[DONE]":
            return self._end()
        try:
            chunk = orjson.loads(frame.data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamUnavailable("upstream sent a stream chunk that is not JSON"))
        if not isinstance(chunk, dict):
            return self._fail(UpstreamUnavailable("upstream sent a stream chunk that is not a JSON object"))
        if chunk.get("error") or frame.event == "error":
            return self._fail(error_from_object(chunk, None))
        out: list[ir.StreamEvent] = []
        if not self._started:
            self._id = str(chunk.get("id") or "")
            out.append(self._start(str(chunk.get("model") or "")))
        if isinstance(chunk.get("usage"), dict):
            self.usage = decode_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) not in (0, None):
                continue  # we never ask for n > 1
            delta = choice.get("delta")
            if isinstance(delta, dict) and not self._delta(delta, out):
                return out + self._fail(
                    UpstreamUnavailable("upstream interleaved a tool call with other output; it cannot be translated")
                )
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                self._matched = choice.get("stop_reason")
        return out

    def finish(self) -> list[ir.StreamEvent]:
        """The upstream body ended: a normal end if the model finished, else an error."""
        if self._done:
            return []
        if self._finish_reason is None:
            return self._fail(UpstreamUnavailable("upstream stream ended unexpectedly"))
        return self._end()

    # ----------------------------------------------------------------------- internals

    def _start(self, model: str) -> ir.MessageStart:
        self._started = True
        return ir.MessageStart(self._id, model, ir.Usage())

    def _delta(self, delta: dict[str, Any], out: list[ir.StreamEvent]) -> bool:
        """Translate one delta; False when it cannot be (a late tool-call fragment)."""
        reasoning = reasoning_text(delta)
        if reasoning:
            self._append(out, "thinking", reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._append(out, "text", content)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refusal = True
            self._append(out, "text", refusal)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict) and not self._tool_call(call, out):
                return False
        return True

    def _append(self, out: list[ir.StreamEvent], kind: ir.DeltaKind, value: str) -> None:
        if self._open != kind:
            self._open_block(
                out, kind, ir.ThinkingBlock("", origin="openai") if kind == "thinking" else ir.TextBlock("")
            )
        out.append(ir.BlockDelta(self._index, kind, value))

    def _tool_call(self, call: dict[str, Any], out: list[ir.StreamEvent]) -> bool:
        index = call.get("index")
        call_id = call.get("id") or None
        raw_fn = call.get("function")
        fn: dict[str, Any] = raw_fn if isinstance(raw_fn, dict) else {}
        args = fn.get("arguments")
        if not self._continues(index, call_id):
            if (call_id is not None and call_id in self._closed_ids) or (
                call_id is None and index is not None and index in self._closed_indexes
            ):
                return False
            block_id = call_id or fallback_tool_id(self._id, self._next)
            self._open_block(out, "tool", ir.ToolUseBlock(block_id, str(fn.get("name") or "")))
            self._tool = (index, call_id)
            self._tool_use = True
        if isinstance(args, dict):
            args = orjson.dumps(args).decode()  # Ollama-style object arguments
        if isinstance(args, str) and args:
            self._tool_has_args = True
            out.append(ir.BlockDelta(self._index, "input_json", args))
        return True

    def _continues(self, index: Any, call_id: str | None) -> bool:
        if self._open != "tool":
            return False
        open_index, open_id = self._tool
        same_index = index is None or index == open_index
        same_id = call_id is None or call_id == open_id or open_id is None
        return same_index and same_id

    def _open_block(self, out: list[ir.StreamEvent], kind: str, block: ir.Block) -> None:
        self._close(out)
        self._open = kind
        self._index = self._next
        self._next += 1
        self._tool_has_args = False
        out.append(ir.BlockStart(self._index, block))

    def _close(self, out: list[ir.StreamEvent]) -> None:
        if self._open is None:
            return
        if self._open == "tool":
            if not self._tool_has_args:
                out.append(ir.BlockDelta(self._index, "input_json", "{}"))
            index, call_id = self._tool
            if index is not None:
                self._closed_indexes.add(index)
            if call_id is not None:
                self._closed_ids.add(call_id)
            self._tool = (None, None)
        out.append(ir.BlockStop(self._index))
        self._open = None

    def _end(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = [] if self._started else [self._start("")]
        self._close(out)
        reason, sequence = stop_reason_for(
            self._finish_reason, self._matched, tool_use=self._tool_use, refusal=self._refusal
        )
        out += [ir.MessageDelta(reason, self.usage, sequence), ir.MessageStop()]
        self._done = True
        return out

    def _fail(self, error: GatewayError) -> list[ir.StreamEvent]:
        self._done = True
        return [ir.StreamError(error)]
