"""IR stream events → ``chat.completion.chunk`` SSE frames, one event at a time.

The frames, in OpenAI's order (every chunk has the same ``id``, ``created`` and ``model``):

1. The role chunk, sent with the first output: ``{"role": "assistant", "content": "",
   "refusal": null}`` on its own before text or reasoning; merged into the first tool call's
   chunk with ``content: null`` when the answer opens with a tool call (as OpenAI does).
2. ``{"content": ...}`` per text delta, ``{"reasoning_content": ...}`` per thinking delta.
3. Tool calls: ``index`` counts tool calls only (0, 1, …); the first fragment carries ``id``,
   ``type``, ``function.name`` and ``arguments: ""``, later ones only ``function.arguments``.
4. Anthropic-signed thinking and redacted thinking, when their block ends: one chunk with
   ``{"thinking_blocks": [{"index", ...}]}`` (see :mod:`.client_response`), the block's text
   repeated so that the signature can be checked against it when the client sends it back. The
   ``index`` is what the SDKs' stream accumulators need to merge a list of objects.
5. The finish chunk: an empty delta and ``finish_reason``.
6. With ``stream_options.include_usage``: every chunk above carries ``"usage": null`` and one
   more chunk with ``"choices": []`` carries the usage.
7. ``data: [DONE]``.

Keep-alive pings become an SSE comment (``: ping``): SDKs skip comments, and the bytes keep
proxies and clients from timing out while an upstream thinks in silence. Citation deltas have no
equivalent and are skipped. An error after the 200 is ``data: {"error": {...}}`` and ends the
stream without ``[DONE]``, as OpenAI ends a failed stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable
from modelgate.protocols.openai_chat.client_response import completion_id, finish_reason, tool_call_header
from modelgate.protocols.openai_chat.errors import error_body
from modelgate.protocols.openai_chat.usage import encode_usage

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"
_ROLE = b'{"role":"assistant","content":"","refusal":null}'


class StreamEncoder:
    """Stateful: the chunk header, whether the role went out, tool-call numbering, the usage."""

    __slots__ = (
        "_created",
        "_done",
        "_head",
        "_include_usage",
        "_model",
        "_next_thinking",
        "_next_tool",
        "_role_sent",
        "_signatures",
        "_tail",
        "_thinking",
        "_tools",
    )

    def __init__(self, model: str, created: int, *, include_usage: bool = False) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._tail = b'],"usage":null}' if include_usage else b"]}"
        self._head = b""
        self._role_sent = False
        self._done = False
        self._tools: dict[int, int] = {}  # IR block index → tool call index
        self._next_tool = 0
        self._next_thinking = 0  # index of the next ``thinking_blocks`` entry
        #: Anthropic thinking (text pieces, signature) by IR block index, kept until the block ends.
        self._thinking: dict[int, list[str]] = {}
        self._signatures: dict[int, str] = {}

    # ------------------------------------------------------------------ the StreamEncoder protocol

    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        if isinstance(event, ir.BlockDelta):
            return self._delta(event)
        if isinstance(event, ir.BlockStart):
            return self._start(event.index, event.block)
        if isinstance(event, ir.BlockStop):
            return self._stop(event.index)
        if isinstance(event, ir.MessageStart):
            self._set_head(event.id)
            return b""
        if isinstance(event, ir.MessageDelta):
            out = self._role(None) + self._chunk(b"{}", finish_reason(event.stop_reason))
            if self._include_usage:
                out += self._usage_chunk(event.usage)
            return out
        if isinstance(event, ir.MessageStop):
            self._done = True
            return DONE
        if isinstance(event, ir.Ping):
            return PING
        if isinstance(event, ir.StreamError):
            return self.error(event.error)
        raise TypeError(f"unknown stream event {event!r}")  # pragma: no cover

    def error(self, err: GatewayError) -> bytes:
        self._done = True
        return b"data: " + orjson.dumps(error_body(err)) + b"\n\n"

    def end(self) -> bytes:
        """The event stream is over: a stream that never finished must not look finished."""
        if self._done:
            return b""
        return self.error(UpstreamUnavailable("upstream stream ended unexpectedly"))

    # ------------------------------------------------------------------ internals

    def _set_head(self, message_id: str) -> None:
        self._head = b'{"id":%s,"object":"chat.completion.chunk","created":%d,"model":%s,"choices":[' % (
            orjson.dumps(completion_id(message_id)),
            self._created,
            orjson.dumps(self._model),
        )

    def _chunk(self, delta: bytes, finish: str | None = None) -> bytes:
        if not self._head:
            self._set_head("")
        reason = b'"%s"' % finish.encode() if finish else b"null"
        choice = b'{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}' % (delta, reason)
        return b"data: " + self._head + choice + self._tail + b"\n\n"

    def _json(self, delta: dict[str, Any]) -> bytes:
        return self._role(None) + self._chunk(orjson.dumps(delta))

    def _role(self, first_call: dict[str, Any] | None) -> bytes:
        """The role chunk, if not sent yet; merged with ``first_call`` when the answer opens with one."""
        if self._role_sent:
            return b""
        self._role_sent = True
        if first_call is not None:
            merged = {"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None}
            return self._chunk(orjson.dumps(merged))
        return self._chunk(_ROLE)

    def _usage_chunk(self, usage: ir.Usage) -> bytes:
        body = self._head + b'],"usage":' + orjson.dumps(encode_usage(usage)) + b"}"
        return b"data: " + body + b"\n\n"

    def _start(self, index: int, block: ir.Block) -> bytes:
        if isinstance(block, ir.TextBlock):
            return self._json({"content": block.text}) if block.text else b""
        if isinstance(block, ir.ThinkingBlock):
            if block.origin == "anthropic":
                self._thinking[index] = [block.thinking]
                self._signatures[index] = block.signature or ""
            return self._json({"reasoning_content": block.thinking}) if block.thinking else b""
        if isinstance(block, ir.ToolUseBlock):
            k = self._next_tool
            self._tools[index] = k
            self._next_tool += 1
            args = orjson.dumps(block.input).decode() if block.input else ""
            header = {"index": k, **tool_call_header(block, args)}
            if not self._role_sent:
                return self._role(header)
            return self._chunk(orjson.dumps({"tool_calls": [header]}))
        if isinstance(block, ir.RedactedThinkingBlock):
            return self._thinking_chunk({"type": "redacted_thinking", "data": block.data})
        return b""

    def _delta(self, ev: ir.BlockDelta) -> bytes:
        if not ev.value:
            return b""
        if ev.kind == "text":
            return self._json({"content": ev.value})
        if ev.kind == "thinking":
            pieces = self._thinking.get(ev.index)
            if pieces is not None:
                pieces.append(ev.value)
            return self._json({"reasoning_content": ev.value})
        if ev.kind == "input_json" and ev.index in self._tools:
            call = {"index": self._tools[ev.index], "function": {"arguments": ev.value}}
            return self._chunk(orjson.dumps({"tool_calls": [call]}))
        if ev.kind == "signature" and ev.index in self._signatures:
            self._signatures[ev.index] += ev.value
        return b""

    def _stop(self, index: int) -> bytes:
        pieces = self._thinking.pop(index, None)
        signature = self._signatures.pop(index, "")
        if pieces is None or not signature:
            return b""
        return self._thinking_chunk({"type": "thinking", "thinking": "".join(pieces), "signature": signature})

    def _thinking_chunk(self, entry: dict[str, Any]) -> bytes:
        """One ``thinking_blocks`` entry; its ``index`` lets the SDKs' delta accumulators merge the list."""
        entry = {"index": self._next_thinking, **entry}
        self._next_thinking += 1
        return self._json({"thinking_blocks": [entry]})
