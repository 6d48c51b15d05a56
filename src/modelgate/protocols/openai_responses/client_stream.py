"""IR stream events → the Responses API event stream (the translated path, streaming).

Every frame is ``event: <type>\\ndata: {"type": <type>, "sequence_number": n, ...}\\n\\n`` with
``n`` counting from 0; there is no ``[DONE]``. The order, as OpenAI streams it:

``response.created`` → ``response.in_progress`` → per output item ``response.output_item.added``
→ its own events → ``response.output_item.done`` → ``response.completed`` (or
``response.incomplete`` when the output limit or a refusal cut it short). Per item:

- message: ``response.content_part.added`` → ``response.output_text.delta``… →
  ``response.output_text.done`` → ``response.content_part.done``, once per IR text block
  (consecutive text blocks are parts of one message item);
- function call: ``response.function_call_arguments.delta``… → ``.done``; a custom tool's call
  is buffered and sent as one ``response.custom_tool_call_input.delta`` and ``.done``
  (its free text is inside the JSON the model streams);
- reasoning: when the request asked for ``reasoning.summary``,
  ``response.reasoning_summary_part.added`` → ``response.reasoning_summary_text.delta``… →
  ``.done`` → ``response.reasoning_summary_part.done``; ``encrypted_content`` (when included)
  arrives with ``response.output_item.done``.

A keep-alive :class:`ir.Ping` becomes an SSE comment (``: keep-alive``), which SDKs skip.
An error after the stream began becomes ``response.failed`` with ``response.error``
(``code`` ``rate_limit_exceeded``, ``context_length_exceeded``, ``invalid_prompt`` or
``server_error``); a stream never ends looking complete when it was not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from modelgate import ir
from modelgate.errors import GatewayError, UpstreamUnavailable
from modelgate.protocols.openai_responses.client_response import (
    custom_input,
    encode_usage,
    finish_status,
    output_text,
    reasoning_item,
    response_shell,
    tool_call_item,
    wants_encrypted_reasoning,
    wants_summary,
)
from modelgate.protocols.openai_responses.common import item_id, tool_names
from modelgate.protocols.openai_responses.errors import response_error

KEEPALIVE = b": keep-alive\n\n"


def failed_event(
    body: dict[str, Any],
    response_id: str,
    created_at: int,
    model: str,
    sequence_number: int,
    err: GatewayError,
    output: list[dict[str, Any]] | None = None,
) -> bytes:
    """The ``response.failed`` event that ends a stream broken by ``err``."""
    response = response_shell(body, response_id, created_at, model, "failed")
    response["output"] = list(output or ())
    response["error"] = response_error(err)
    payload = {"type": "response.failed", "sequence_number": sequence_number, "response": response}
    return b"event: response.failed\ndata: " + orjson.dumps(payload) + b"\n\n"


@dataclass(slots=True)
class _Block:
    """An IR block being streamed, and the output item it belongs to."""

    kind: str  # "text", "reasoning", "tool"
    output_index: int
    item: dict[str, Any]
    block: ir.Block
    content_index: int = 0
    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    part_open: bool = False


class StreamEncoder:
    """One streamed answer: IR events in, Responses SSE bytes out."""

    def __init__(self, body: dict[str, Any], response_id: str, created_at: int) -> None:
        self._body = body
        self._id = response_id
        self._created_at = created_at
        self._model = str(body.get("model") or "")
        self._names = tool_names(body.get("tools"))
        self._summary = wants_summary(body)
        self._encrypted = wants_encrypted_reasoning(body)
        self._seq = 0
        self._started = False
        self._finished = False
        self._output: list[dict[str, Any]] = []
        self._blocks: dict[int, _Block] = {}
        self._message: dict[str, Any] | None = None
        self._stop: ir.StopReason | None = None
        self._usage = ir.Usage()

    # ------------------------------------------------------------------ the StreamEncoder protocol

    def encode(self, event: ir.StreamEvent) -> bytes:
        if self._finished:
            return b""
        out: list[bytes] = []
        if isinstance(event, ir.BlockDelta):
            self._delta(event, out)
        elif isinstance(event, ir.BlockStart):
            self._start_block(event, out)
        elif isinstance(event, ir.BlockStop):
            self._stop_block(event.index, out)
        elif isinstance(event, ir.MessageStart):
            self._model = event.model or self._model
            self._begin(out)
        elif isinstance(event, ir.MessageDelta):
            self._stop = event.stop_reason
            self._usage = event.usage
        elif isinstance(event, ir.MessageStop):
            self._finish(out)
        elif isinstance(event, ir.Ping):
            return KEEPALIVE
        elif isinstance(event, ir.StreamError):
            return self.error(event.error)
        return b"".join(out)

    def error(self, err: GatewayError) -> bytes:
        if self._finished:
            return b""
        out: list[bytes] = []
        self._begin(out)
        self._finished = True
        out.append(failed_event(self._body, self._id, self._created_at, self._model, self._seq, err, self._output))
        self._seq += 1
        return b"".join(out)

    def end(self) -> bytes:
        """The event source ran dry: only a stream that reached its end is complete."""
        if self._finished:
            return b""
        return self.error(UpstreamUnavailable("upstream stream ended before the response was complete"))

    # ------------------------------------------------------------------ internals

    def _frame(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _response(self, status: str) -> dict[str, Any]:
        response = response_shell(self._body, self._id, self._created_at, self._model, status)
        response["output"] = list(self._output)
        return response

    def _begin(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        response = self._response("in_progress")
        out.append(self._frame("response.created", {"response": response}))
        out.append(self._frame("response.in_progress", {"response": response}))

    def _add_item(self, item: dict[str, Any], out: list[bytes]) -> int:
        index = len(self._output)
        self._output.append(item)
        out.append(self._frame("response.output_item.added", {"output_index": index, "item": dict(item)}))
        return index

    def _done_item(self, index: int, item: dict[str, Any], out: list[bytes]) -> None:
        self._output[index] = item
        out.append(self._frame("response.output_item.done", {"output_index": index, "item": item}))

    def _close_message(self, out: list[bytes]) -> None:
        message, self._message = self._message, None
        if message is None:
            return
        index = message.pop("_index")
        parts = message.pop("_parts")
        status = "incomplete" if finish_status(self._stop)[0] == "incomplete" else "completed"
        done = {"id": message["id"], "type": "message", "status": status, "content": parts, "role": "assistant"}
        self._done_item(index, done, out)

    def _start_block(self, ev: ir.BlockStart, out: list[bytes]) -> None:
        self._begin(out)
        block = ev.block
        if isinstance(block, ir.TextBlock):
            if self._message is None:
                ident = item_id("msg", self._id, len(self._output))
                item = {"id": ident, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
                index = self._add_item(item, out)
                self._message = {"id": ident, "_index": index, "_parts": []}
            parts = self._message["_parts"]
            state = _Block("text", self._message["_index"], self._message, block, len(parts))
            parts.append(output_text(""))
            self._blocks[ev.index] = state
            part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            out.append(self._frame("response.content_part.added", self._part_fields(state, part=part)))
            return
        self._close_message(out)
        n = len(self._output)
        if isinstance(block, (ir.ThinkingBlock, ir.RedactedThinkingBlock)):
            ident = (block.id if isinstance(block, ir.ThinkingBlock) else None) or item_id("rs", self._id, n)
            item = {"id": ident, "type": "reasoning", "summary": []}
            self._blocks[ev.index] = _Block("reasoning", self._add_item(item, out), item, block)
        elif isinstance(block, ir.ToolUseBlock):
            done = tool_call_item(block, item_id("fc", self._id, n), self._names, "")
            item = {**done, "status": "in_progress"}
            self._blocks[ev.index] = _Block("tool", self._add_item(item, out), item, block)

    def _part_fields(self, state: _Block, **extra: Any) -> dict[str, Any]:
        return {
            "item_id": state.item["id"],
            "output_index": state.output_index,
            "content_index": state.content_index,
            **extra,
        }

    def _delta(self, ev: ir.BlockDelta, out: list[bytes]) -> None:
        state = self._blocks.get(ev.index)
        if state is None or not isinstance(ev.value, str):
            return
        if ev.kind == "text" and state.kind == "text":
            state.text.append(ev.value)
            fields = self._part_fields(state, delta=ev.value, logprobs=[])
            out.append(self._frame("response.output_text.delta", fields))
        elif ev.kind == "thinking" and state.kind == "reasoning":
            state.text.append(ev.value)
            if self._summary and ev.value:
                self._open_summary(state, out)
                fields = {**self._summary_fields(state), "delta": ev.value}
                out.append(self._frame("response.reasoning_summary_text.delta", fields))
        elif ev.kind == "signature" and state.kind == "reasoning":
            state.signature.append(ev.value)
        elif ev.kind == "input_json" and state.kind == "tool":
            state.text.append(ev.value)
            if state.item["type"] == "function_call" and ev.value:
                fields = {"item_id": state.item["id"], "output_index": state.output_index, "delta": ev.value}
                out.append(self._frame("response.function_call_arguments.delta", fields))

    def _summary_fields(self, state: _Block) -> dict[str, Any]:
        return {"item_id": state.item["id"], "output_index": state.output_index, "summary_index": 0}

    def _open_summary(self, state: _Block, out: list[bytes]) -> None:
        if not state.part_open:
            state.part_open = True
            part = {"type": "summary_text", "text": ""}
            out.append(
                self._frame("response.reasoning_summary_part.added", {**self._summary_fields(state), "part": part})
            )

    def _stop_block(self, index: int, out: list[bytes]) -> None:
        state = self._blocks.pop(index, None)
        if state is None:
            return
        text = "".join(state.text)
        if state.kind == "text":
            out.append(self._frame("response.output_text.done", self._part_fields(state, text=text, logprobs=[])))
            self._message_parts(state)[state.content_index] = output_text(text)
            part = output_text(text)
            out.append(self._frame("response.content_part.done", self._part_fields(state, part=part)))
        elif state.kind == "reasoning":
            self._stop_reasoning(state, text, out)
        else:
            self._stop_tool(state, text, out)

    def _message_parts(self, state: _Block) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = state.item["_parts"]
        return parts

    def _stop_reasoning(self, state: _Block, text: str, out: list[bytes]) -> None:
        # a "reasoning" state always streams a thinking or redacted-thinking block
        block = cast("ir.ThinkingBlock | ir.RedactedThinkingBlock", state.block)
        if isinstance(block, ir.ThinkingBlock):
            signature = "".join(state.signature) or block.signature
            block = ir.ThinkingBlock(text, signature, block.origin, block.id)
        if state.part_open:
            out.append(
                self._frame("response.reasoning_summary_text.done", {**self._summary_fields(state), "text": text})
            )
            part = {"type": "summary_text", "text": text}
            out.append(
                self._frame("response.reasoning_summary_part.done", {**self._summary_fields(state), "part": part})
            )
        item = reasoning_item(block, state.item["id"], summary=self._summary, encrypted=self._encrypted)
        self._done_item(state.output_index, item, out)

    def _stop_tool(self, state: _Block, arguments: str, out: list[bytes]) -> None:
        arguments = arguments or "{}"
        item = dict(state.item)
        item["status"] = "completed"
        fields: dict[str, Any] = {"item_id": item["id"], "output_index": state.output_index}
        if item["type"] == "custom_tool_call":
            text = custom_input(arguments)
            item["input"] = text
            if text:
                out.append(self._frame("response.custom_tool_call_input.delta", {**fields, "delta": text}))
            out.append(self._frame("response.custom_tool_call_input.done", {**fields, "input": text}))
        else:
            item["arguments"] = arguments
            out.append(self._frame("response.function_call_arguments.done", {**fields, "arguments": arguments}))
        self._done_item(state.output_index, item, out)

    def _finish(self, out: list[bytes]) -> None:
        self._begin(out)
        for index in sorted(self._blocks):
            self._stop_block(index, out)
        self._close_message(out)
        status, incomplete = finish_status(self._stop)
        response = self._response(status)
        response["incomplete_details"] = incomplete
        response["usage"] = encode_usage(self._usage)
        self._finished = True
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        out.append(self._frame(kind, {"response": response}))
