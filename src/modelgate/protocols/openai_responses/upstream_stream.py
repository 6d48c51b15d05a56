"""A Responses API event stream (from an upstream) → IR stream events.

- ``response.created`` → :class:`ir.MessageStart` (the response id and model, zero usage:
  the counts arrive with the end).
- Each output item opens IR blocks in order: a ``reasoning`` item one thinking block (its
  summary and ``reasoning_text`` deltas are the thinking, a blank line between summary
  parts, its ``encrypted_content`` the signature, sent last as a ``signature`` delta);
  each ``output_text`` or ``refusal`` content part of a ``message`` one text block; a
  ``function_call`` one tool_use block whose arguments stream as ``input_json`` deltas (or
  arrive whole with ``.done`` / ``output_item.done`` when a server sends no deltas; ``{}``
  when there are none); a ``custom_tool_call`` one tool_use block whose free text is sent,
  once complete, as the input ``{"input": <text>}``.
- ``response.completed`` / ``response.incomplete`` close what is open, then
  :class:`ir.MessageDelta` (stop reason as in ``upstream_response.stop_reason_for``, usage)
  and :class:`ir.MessageStop`.
- ``response.failed`` and ``error`` events → :class:`ir.StreamError`; so does a frame that is
  not JSON. A body that ends before the response completed is an error too
  (:class:`UpstreamUnavailable`), never a normal end.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable
from modelgate.protocols.openai_responses.common import json_object
from modelgate.protocols.openai_responses.errors import error_from_object
from modelgate.protocols.openai_responses.upstream_response import decode_usage, stop_reason_for
from modelgate.protocols.sse import SSEFrame

_TEXT_DELTAS = ("response.output_text.delta", "response.refusal.delta")
_THINKING_DELTAS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")
_ENDS = ("response.completed", "response.incomplete")


class StreamDecoder:
    """Responses SSE frames → IR events, one block open at a time, indexes 0, 1, 2…"""

    __slots__ = (
        "_args",
        "_custom",
        "_done",
        "_next",
        "_open",
        "_refusal",
        "_started",
        "_tool_use",
        "_tools",
        "usage",
    )

    def __init__(self) -> None:
        self.usage = ir.Usage()
        self._started = False
        self._done = False
        self._next = 0
        #: open blocks: key ("item", output_index) or ("part", output_index, content_index) → IR index
        self._open: dict[tuple[Any, ...], int] = {}
        self._args: set[int] = set()  # IR indexes of tool blocks that got arguments
        self._custom: dict[int, list[str]] = {}  # IR index → custom tool input pieces
        self._tools: set[int] = set()  # IR indexes of tool blocks
        self._tool_use = False
        self._refusal = False

    def decode(self, frame: SSEFrame) -> list[ir.StreamEvent]:
        if self._done or not frame.data or frame.data.strip() == "[DONE]":
            return []
        try:
            data = orjson.loads(frame.data)
        except orjson.JSONDecodeError:
            return self._fail(UpstreamUnavailable("upstream sent a stream event that is not JSON"))
        if not isinstance(data, dict):
            return self._fail(UpstreamUnavailable("upstream sent a stream event that is not a JSON object"))
        kind = data.get("type") or frame.event
        if kind in ("response.failed", "error"):
            return self._fail(error_from_object(data))
        out: list[ir.StreamEvent] = []
        if not self._started:
            response = json_object(data.get("response"))
            self._started = True
            out.append(ir.MessageStart(str(response.get("id") or ""), str(response.get("model") or ""), ir.Usage()))
        self._event(str(kind), data, out)
        return out

    def finish(self) -> list[ir.StreamEvent]:
        if self._done:
            return []
        return self._fail(UpstreamUnavailable("upstream stream ended before response.completed"))

    # ----------------------------------------------------------------------- internals

    def _event(self, kind: str, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        oi = data.get("output_index")
        index: int | None
        if kind == "response.output_item.added" and isinstance(data.get("item"), dict):
            self._item_added(oi, data["item"], out)
        elif kind == "response.content_part.added":
            part = json_object(data.get("part"))
            self._part(oi, data.get("content_index"), out, refusal=part.get("type") == "refusal")
        elif kind in _TEXT_DELTAS and isinstance(data.get("delta"), str):
            index = self._part(oi, data.get("content_index"), out, refusal=kind == "response.refusal.delta")
            out.append(ir.BlockDelta(index, "text", data["delta"]))
        elif kind == "response.content_part.done":
            self._close(("part", oi, data.get("content_index")), out)
        elif kind == "response.reasoning_summary_part.added":
            index = self._open.get(("item", oi))
            if index is not None and data.get("summary_index", 0):
                out.append(ir.BlockDelta(index, "thinking", "\n\n"))
        elif kind in _THINKING_DELTAS and isinstance(data.get("delta"), str):
            index = self._open.get(("item", oi))
            if index is not None:
                out.append(ir.BlockDelta(index, "thinking", data["delta"]))
        elif kind == "response.function_call_arguments.delta" and isinstance(data.get("delta"), str):
            index = self._open.get(("item", oi))
            if index is not None and data["delta"]:
                self._args.add(index)
                out.append(ir.BlockDelta(index, "input_json", data["delta"]))
        elif kind == "response.function_call_arguments.done":
            self._whole_arguments(oi, data.get("arguments"), out)
        elif kind == "response.custom_tool_call_input.delta" and isinstance(data.get("delta"), str):
            index = self._open.get(("item", oi))
            if index is not None:
                self._custom.setdefault(index, []).append(data["delta"])
        elif kind == "response.output_item.done" and isinstance(data.get("item"), dict):
            self._item_done(oi, data["item"], out)
        elif kind in _ENDS:
            self._end(json_object(data.get("response")), out)

    def _begin(self, key: tuple[Any, ...], block: ir.Block, out: list[ir.StreamEvent]) -> int:
        for other in list(self._open):
            self._close(other, out)
        index = self._next
        self._next += 1
        self._open[key] = index
        out.append(ir.BlockStart(index, block))
        return index

    def _close(self, key: tuple[Any, ...], out: list[ir.StreamEvent]) -> None:
        index = self._open.pop(key, None)
        if index is None:
            return
        if index in self._custom:
            text = "".join(self._custom.pop(index))
            out.append(ir.BlockDelta(index, "input_json", orjson.dumps({"input": text}).decode()))
            self._args.add(index)
        if index in self._tools and index not in self._args:
            out.append(ir.BlockDelta(index, "input_json", "{}"))
        out.append(ir.BlockStop(index))

    def _item_added(self, oi: Any, item: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        kind = item.get("type")
        if kind == "reasoning":
            ident = item.get("id") if isinstance(item.get("id"), str) else None
            self._begin(("item", oi), ir.ThinkingBlock("", None, "openai", ident), out)
        elif kind in ("function_call", "custom_tool_call"):
            self._tool_use = True
            call = ir.ToolUseBlock(str(item.get("call_id") or ""), str(item.get("name") or ""))
            index = self._begin(("item", oi), call, out)
            self._tools.add(index)
            if kind == "custom_tool_call":
                self._custom[index] = []

    def _part(self, oi: Any, ci: Any, out: list[ir.StreamEvent], *, refusal: bool) -> int:
        self._refusal = self._refusal or refusal
        key = ("part", oi, ci)
        index = self._open.get(key)
        return index if index is not None else self._begin(key, ir.TextBlock(""), out)

    def _whole_arguments(self, oi: Any, arguments: Any, out: list[ir.StreamEvent]) -> None:
        index = self._open.get(("item", oi))
        if index is not None and index not in self._args and isinstance(arguments, str) and arguments:
            self._args.add(index)
            out.append(ir.BlockDelta(index, "input_json", arguments))

    def _item_done(self, oi: Any, item: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        kind = item.get("type")
        index = self._open.get(("item", oi))
        if kind == "reasoning" and index is not None:
            sealed = item.get("encrypted_content")
            if isinstance(sealed, str) and sealed:
                out.append(ir.BlockDelta(index, "signature", sealed))
        elif kind == "function_call":
            self._whole_arguments(oi, item.get("arguments"), out)
        elif kind == "custom_tool_call" and index is not None and not self._custom.get(index):
            self._custom[index] = [str(item.get("input") or "")]
        elif kind == "message":
            for key in [k for k in self._open if k[0] == "part" and k[1] == oi]:
                self._close(key, out)
            return
        self._close(("item", oi), out)

    def _end(self, response: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        for key in list(self._open):
            self._close(key, out)
        self.usage = decode_usage(response.get("usage"))
        reason = stop_reason_for(
            response.get("status"), response.get("incomplete_details"), tool_use=self._tool_use, refusal=self._refusal
        )
        out += [ir.MessageDelta(reason, self.usage), ir.MessageStop()]
        self._done = True

    def _fail(self, error: GatewayError) -> list[ir.StreamEvent]:
        self._done = True
        return [ir.StreamError(error)]
