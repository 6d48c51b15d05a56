"""The upstream direction: IR → Responses request, and OpenAI's documented response objects and
event streams → IR (golden fixtures in ``fixtures/upstream_*``), with the stream's invariants."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate import ir
from modelgate.errors import InvalidRequest, UpstreamHTTPError
from modelgate.protocols.openai_responses import StreamDecoder, decode_response, encode_request
from modelgate.protocols.sse import SSEFrame
from tests.protocols.streams import check_stream_order

from .helpers import as_json, check, load, names

CLAUDE_CODE_TURN = ir.Request(
    model="claude",
    system=[
        ir.TextBlock("x-anthropic-billing-header: cc_version=1; cch=abc;\nYou are Claude Code."),
        ir.TextBlock("Be brief.", cache_control={"type": "ephemeral"}),
    ],
    messages=[
        ir.Message(
            "user",
            [
                ir.TextBlock("look"),
                ir.ImageBlock("image/png", "iVBORw0KGgo="),
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}, "a.pdf"),
            ],
        ),
        ir.Message(
            "assistant",
            [
                ir.ThinkingBlock("OpenAI reasoning", "gAAAAB-enc", "openai", "rs_1"),
                ir.ThinkingBlock("Claude thinking", "sig", "anthropic"),
                ir.TextBlock("Running it."),
                ir.ToolUseBlock("toolu_1", "Bash", {"command": "ls"}),
                ir.ToolUseBlock("toolu_2", "Read", {"_raw": "{bad"}),
            ],
        ),
        ir.Message(
            "user",
            [
                ir.ToolResultBlock("toolu_1", [ir.TextBlock("a.txt")]),
                ir.ToolResultBlock("toolu_2", [ir.TextBlock("no such file")], is_error=True),
                ir.ToolResultBlock("toolu_3", [ir.TextBlock("shot"), ir.ImageBlock(url="https://x/y.png")]),
                ir.TextBlock("continue"),
            ],
        ),
    ],
    max_tokens=32000,
    temperature=1.0,
    top_k=5,
    tools=[ir.Tool("Bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}})],
    tool_choice=ir.ToolChoice("any", disable_parallel_tool_use=True),
    thinking=ir.Thinking("enabled", 31999),
    output_format={"type": "json_schema", "schema": {"type": "object"}},
    metadata={"user_id": '{"device_id":"' + "d" * 64 + '","session_id":"s"}'},
    stream=True,
)
REQUESTS: dict[str, tuple[ir.Request, dict[str, Any]]] = {
    "claude_code_turn": (CLAUDE_CODE_TURN, {}),
    "adaptive_thinking_no_reasoning_model": (
        ir.Request("m", [ir.Message("user", [ir.TextBlock("hi")])], 8, thinking=ir.Thinking("adaptive")),
        {"reasoning": False},
    ),
    "adaptive_thinking_with_effort": (
        ir.Request(
            "m", [ir.Message("user", [ir.TextBlock("hi")])], 100, thinking=ir.Thinking("adaptive"), effort="max"
        ),
        {},
    ),
    "disabled_thinking_and_tool_choice": (
        ir.Request(
            "m",
            [ir.Message("user", [ir.TextBlock("hi")])],
            100,
            thinking=ir.Thinking("disabled"),
            effort="low",
            tools=[ir.Tool("f")],
            tool_choice=ir.ToolChoice("tool", "f"),
            output_format={"type": "json_object"},
        ),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_upstream_request_golden(name: str) -> None:
    req, options = REQUESTS[name]
    check("upstream_requests", name, encode_request(req, "gpt-5-codex", **options))


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"stop_sequences": ["\n"]}, "stop_sequences"),
        ({"tools": [ir.Tool("web_search", extras={"type": "web_search_20250305"})]}, "tools.0"),
        ({"extras": {"mcp_servers": [{"url": "x"}]}}, "mcp_servers"),
    ],
)
def test_upstream_request_refusals(change: dict[str, Any], param: str) -> None:
    req = ir.Request("m", [ir.Message("user", [ir.TextBlock("hi")])], 10)
    for name, value in change.items():
        setattr(req, name, value)
    with pytest.raises(InvalidRequest) as info:
        encode_request(req, "gpt-5-codex")
    assert info.value.param == param


@pytest.mark.parametrize("name", names("upstream_responses"))
def test_upstream_response_golden(name: str) -> None:
    body = load("upstream_responses", name)["response"]
    try:
        actual: Any = decode_response(body)
    except UpstreamHTTPError as e:
        actual = e
    check("upstream_responses", name, as_json(actual), key="expected")


def run_stream(frames: list[dict[str, Any]]) -> list[ir.StreamEvent]:
    decoder = StreamDecoder()
    events: list[ir.StreamEvent] = []
    for data in frames:
        events += decoder.decode(SSEFrame(data.get("type"), orjson.dumps(data).decode()))
    return events + decoder.finish()


@pytest.mark.parametrize("name", names("upstream_streams"))
def test_upstream_stream_golden(name: str) -> None:
    events = run_stream(load("upstream_streams", name)["frames"])
    check("upstream_streams", name, as_json(events), key="expected")


@pytest.mark.parametrize("name", names("upstream_streams"))
def test_upstream_stream_invariants(name: str) -> None:
    """Anthropic's order, with a start even before an error: see :mod:`tests.protocols.streams`."""
    check_stream_order(run_stream(load("upstream_streams", name)["frames"]), always_starts=True)


def test_stream_frames_that_are_not_json_fail_the_stream() -> None:
    decoder = StreamDecoder()
    [event] = decoder.decode(SSEFrame("response.created", "{oops"))
    assert isinstance(event, ir.StreamError) and event.error.status == 502
    assert decoder.decode(SSEFrame(None, "{}")) == [] and decoder.finish() == []
