"""IR events → the Responses API's event stream (the translated path): golden fixtures in
``fixtures/client_streams``, the SDK's own models parse every event, and the stream's invariants
hold."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from modelgate import ir
from modelgate.errors import UpstreamUnavailable
from modelgate.protocols.openai_responses import StreamEncoder
from modelgate.protocols.openai_responses.client_stream import KEEPALIVE
from modelgate.protocols.sse import SSEParser
from tests.protocols.gateway_errors import rate_limited

from .helpers import CREATED, FULL, RESPONSE_ID, USAGE, check


def start(model: str = "claude-sonnet-4-6") -> list[ir.StreamEvent]:
    return [ir.MessageStart("msg_1", model, ir.Usage(input_tokens=10))]


def text_block(index: int, *pieces: str) -> list[ir.StreamEvent]:
    return [
        ir.BlockStart(index, ir.TextBlock("")),
        *(ir.BlockDelta(index, "text", p) for p in pieces),
        ir.BlockStop(index),
    ]


def end(reason: ir.StopReason = "end_turn") -> list[ir.StreamEvent]:
    return [ir.MessageDelta(reason, USAGE), ir.MessageStop()]


STREAMS: dict[str, tuple[dict[str, Any], list[ir.StreamEvent]]] = {
    "text": ({}, [*start(), *text_block(0, "Hel", "lo"), ir.Ping(), *text_block(1, " world"), *end()]),
    "thinking_and_tools": (
        FULL,
        [
            *start(),
            ir.BlockStart(0, ir.ThinkingBlock("", origin="anthropic")),
            ir.BlockDelta(0, "thinking", "Let me "),
            ir.BlockDelta(0, "thinking", "think."),
            ir.BlockDelta(0, "signature", "sig"),
            ir.BlockStop(0),
            *text_block(1, "Calling."),
            ir.BlockStart(2, ir.ToolUseBlock("toolu_1", "get_weather")),
            ir.BlockDelta(2, "input_json", '{"city":'),
            ir.BlockDelta(2, "input_json", '"Paris"}'),
            ir.BlockStop(2),
            ir.BlockStart(3, ir.ToolUseBlock("toolu_2", "apply_patch")),
            ir.BlockDelta(3, "input_json", '{"input": "*** Begin'),
            ir.BlockDelta(3, "input_json", ' Patch"}'),
            ir.BlockStop(3),
            ir.BlockStart(4, ir.ToolUseBlock("toolu_3", "crm__find")),
            ir.BlockStop(4),
            *end("tool_use"),
        ],
    ),
    "max_tokens": ({}, [*start(), *text_block(0, "cut"), *end("max_tokens")]),
    "error_mid_stream": (
        {},
        [
            *start(),
            ir.BlockStart(0, ir.TextBlock("")),
            ir.BlockDelta(0, "text", "Hel"),
            ir.StreamError(rate_limited("slow down")),
        ],
    ),
    "error_before_start": ({}, [ir.StreamError(UpstreamUnavailable("upstream stream ended unexpectedly"))]),
    "ended_without_stop": ({}, [*start(), *text_block(0, "Hi")]),
}


def encode_stream(fields: dict[str, Any], events: list[ir.StreamEvent]) -> bytes:
    encoder = StreamEncoder({"model": "claude-sonnet-4-6", "input": "x", **fields}, RESPONSE_ID, CREATED)
    out = b""
    for event in events:
        if isinstance(event, ir.StreamError):
            out += encoder.error(event.error)
            break
        out += encoder.encode(event)
    else:
        out += encoder.end()
    return out


def parse(raw: bytes) -> list[dict[str, Any]]:
    parser = SSEParser()
    frames = parser.feed(raw) + parser.flush()
    data = [orjson.loads(f.data) for f in frames]
    assert [f.event for f in frames] == [d["type"] for d in data]
    return data


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_client_stream_golden(name: str) -> None:
    data = parse(encode_stream(*STREAMS[name]))
    check("client_streams", name, data)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_client_stream_invariants(name: str) -> None:
    data = parse(encode_stream(*STREAMS[name]))
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for event in data:
        adapter.validate_python(event)  # every event is one the SDK knows, with its required fields
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert [d["type"] for d in data[:2]] == ["response.created", "response.in_progress"]
    assert data[-1]["type"] in ("response.completed", "response.incomplete", "response.failed")
    assert (
        sum(d["type"].startswith(("response.completed", "response.incomplete", "response.failed")) for d in data) == 1
    )
    assert {d["response"]["id"] for d in data if "response" in d} == {RESPONSE_ID}
    added = [d["output_index"] for d in data if d["type"] == "response.output_item.added"]
    done = [d["output_index"] for d in data if d["type"] == "response.output_item.done"]
    assert added == list(range(len(added)))
    if data[-1]["type"] != "response.failed":
        assert done == added
        assert [item["id"] for item in data[-1]["response"]["output"]] == [
            d["item"]["id"] for d in data if d["type"] == "response.output_item.done"
        ]


def test_ping_is_an_sse_comment_and_nothing_after_the_end() -> None:
    encoder = StreamEncoder({"model": "m"}, RESPONSE_ID, CREATED)
    assert encoder.encode(ir.Ping()) == KEEPALIVE == b": keep-alive\n\n"
    for event in [*start(), *text_block(0, "x"), *end()]:
        encoder.encode(event)
    assert encoder.encode(ir.Ping()) == b"" and encoder.end() == b"" and encoder.error(rate_limited("x")) == b""
