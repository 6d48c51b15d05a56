"""OpenAI Chat Completions codec (upstream direction): golden fixtures and stream invariants.

Fixtures live in ``fixtures/openai_chat``: ``requests/<case>.json`` is the Chat JSON expected for
the IR request built by ``REQUESTS[case]``; ``responses``, ``streams`` and ``errors`` hold an
upstream input and the IR expected from it (IR objects as JSON, see ``as_json``). A stream's
frames are data strings (sent as they are) or objects (sent as JSON); ``finish()`` is always
called after the last frame, as the provider does when the upstream body ends.
Run with ``MODELGATE_REGEN=1`` to rewrite the expected values, then review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgate import ir
from modelgate.errors import GatewayError, InvalidRequest, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols import openai_chat as codec
from modelgate.protocols.openai_chat_stream import StreamDecoder
from modelgate.protocols.sse import SSEFrame, SSEParser

FIXTURES = Path(__file__).parent / "fixtures" / "openai_chat"
REGEN = os.environ.get("MODELGATE_REGEN") == "1"


def as_json(x: Any) -> Any:
    """IR objects (and gateway errors) as plain JSON, tagged with their class name."""
    if isinstance(x, GatewayError):
        out = {"class": type(x).__name__, "message": x.message, "status": x.status, "kind": x.kind}
        if isinstance(x, UpstreamHTTPError):
            out.update(protocol=x.protocol, param=x.param, body=x.body)
        return out
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {"class": type(x).__name__, **{f.name: as_json(getattr(x, f.name)) for f in dataclasses.fields(x)}}
    if isinstance(x, list):
        return [as_json(v) for v in x]
    if isinstance(x, dict):
        return {k: as_json(v) for k, v in x.items()}
    return x


def load(kind: str, name: str) -> Any:
    return orjson.loads((FIXTURES / kind / f"{name}.json").read_bytes())


def check(kind: str, name: str, actual: Any, key: str | None = None) -> None:
    """Compare with the fixture (or its ``key``); with MODELGATE_REGEN=1 write it instead."""
    path = FIXTURES / kind / f"{name}.json"
    if REGEN:
        data = orjson.loads(path.read_bytes()) if key else None
        if key:
            data[key] = actual
        path.write_bytes(orjson.dumps(data if key else actual, option=orjson.OPT_INDENT_2) + b"\n")
        return
    expected = load(kind, name)
    assert actual == (expected[key] if key else expected)


def names(kind: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / kind).glob("*.json"))


# --------------------------------------------------------------------------- requests

PNG = "iVBORw0KGgo="
PDF = "JVBERi0xLjQK"


def user(*blocks: ir.Block) -> ir.Message:
    return ir.Message("user", list(blocks))


def assistant(*blocks: ir.Block) -> ir.Message:
    return ir.Message("assistant", list(blocks))


def text_only() -> ir.Request:
    return ir.Request(model="claude-x", messages=[user(ir.TextBlock("Hello"))], max_tokens=256)


def system_and_sampling() -> ir.Request:
    cc = {"type": "ephemeral"}
    return ir.Request(
        model="claude-x",
        system=[ir.TextBlock("You are terse.", cache_control=cc), ir.TextBlock("Answer in French.")],
        messages=[
            user(ir.TextBlock("<system-reminder>be brief</system-reminder>"), ir.TextBlock("Hi", cache_control=cc)),
            assistant(ir.TextBlock("Bonjour. "), ir.TextBlock("Ça va ?")),
            user(ir.TextBlock("Oui")),
        ],
        max_tokens=1024,
        stream=True,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop_sequences=["\n\nHuman:", "END"],
        metadata={"user_id": "user-42"},
    )


def images() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(
                ir.TextBlock("Compare these:"),
                ir.ImageBlock(media_type="image/png", data=PNG),
                ir.ImageBlock(url="https://example.com/cat.jpg"),
            )
        ],
        max_tokens=100,
    )


def documents() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}, title="report.pdf"),
                ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}),
                ir.DocumentBlock({"type": "text", "media_type": "text/plain", "data": "plain body"}, title="Notes"),
                ir.DocumentBlock(
                    {"type": "content", "content": [{"type": "text", "text": "chunk one"}]}, context="from the wiki"
                ),
                ir.TextBlock("Summarise them."),
            )
        ],
        max_tokens=100,
    )


def tool_loop() -> ir.Request:
    tools = [
        ir.Tool("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}}),
        ir.Tool("get_time", None, {"type": "object"}, cache_control={"type": "ephemeral"}, extras={"strict": True}),
    ]
    return ir.Request(
        model="claude-x",
        messages=[
            user(ir.TextBlock("Weather and time in Paris?")),
            assistant(
                ir.ThinkingBlock("Two tools, in parallel.", signature="sig=="),
                ir.TextBlock("Checking both."),
                ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
                ir.ToolUseBlock("toolu_2", "get_time", {}),
            ),
            user(
                ir.ToolResultBlock("toolu_1", [ir.TextBlock("18°C, sunny")]),
                ir.ToolResultBlock("toolu_2", [ir.TextBlock("clock unavailable")], is_error=True),
                ir.TextBlock("Also, be quick."),
            ),
            assistant(ir.ToolUseBlock("toolu_3", "get_time", {"_raw": "{tz: Paris"})),
            user(ir.ToolResultBlock("toolu_3", [], is_error=True)),
        ],
        max_tokens=2048,
        tools=tools,
        tool_choice=ir.ToolChoice("any", disable_parallel_tool_use=True),
    )


def tool_result_media() -> ir.Request:
    return ir.Request(
        model="claude-x",
        messages=[
            user(ir.TextBlock("Screenshot the page")),
            assistant(ir.ToolUseBlock("toolu_a", "screenshot", {}), ir.ToolUseBlock("toolu_b", "read_pdf", {})),
            user(
                ir.ToolResultBlock(
                    "toolu_a", [ir.TextBlock("Captured."), ir.ImageBlock(media_type="image/jpeg", data=PNG)]
                ),
                ir.ToolResultBlock(
                    "toolu_b",
                    [ir.DocumentBlock({"type": "base64", "media_type": "application/pdf", "data": PDF}, title="a.pdf")],
                ),
                ir.TextBlock("What do you see?"),
            ),
        ],
        max_tokens=512,
        tools=[ir.Tool("screenshot"), ir.Tool("read_pdf")],
    )


def claude_code() -> ir.Request:
    """The shape of a Claude Code turn: adaptive thinking, output_config, context_management."""
    return ir.Request(
        model="claude-sonnet-4-5",
        system=[
            ir.TextBlock("x-anthropic-billing-header: cc_version=2.1.100.7b4; cc_entrypoint=cli; cch=eb6c6;"),
            ir.TextBlock(
                "x-anthropic-billing-header: cch=00000;\nYou are Claude Code.", cache_control={"type": "ephemeral"}
            ),
            ir.TextBlock("Be careful."),
        ],
        messages=[user(ir.TextBlock("List files"))],
        max_tokens=32000,
        stream=True,
        tools=[ir.Tool("Bash", "Run a command", {"type": "object", "properties": {"command": {"type": "string"}}})],
        tool_choice=ir.ToolChoice("tool", "Bash"),
        thinking=ir.Thinking("adaptive"),
        metadata={
            "user_id": '{"device_id":"d1e2","account_uuid":"","session_id":"0f6c3c1e-5b7a-4f7e-9b1e-2f3d4c5b6a7e"}'
        },
        effort="high",
        output_format={"type": "json_schema", "schema": {"type": "object", "properties": {"title": {}}}},
        extras={
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "service_tier": "auto",
            "some_future_field": {"x": 1},
        },
    )


def thinking_budget() -> ir.Request:
    req = text_only()
    req.thinking = ir.Thinking("enabled", 16000)
    req.tools = [ir.Tool("noop")]
    req.tool_choice = ir.ToolChoice("none")
    return req


REQUESTS: dict[str, Callable[[], ir.Request]] = {
    "text_only": text_only,
    "system_and_sampling": system_and_sampling,
    "images": images,
    "documents": documents,
    "tool_loop": tool_loop,
    "tool_result_media": tool_result_media,
    "claude_code": claude_code,
    "thinking_budget": thinking_budget,
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_encode_request_golden(name: str) -> None:
    check("requests", name, codec.encode_request(REQUESTS[name](), "local-model"))


def test_every_request_fixture_has_a_builder() -> None:
    assert names("requests") == sorted(REQUESTS)


def test_unmapped_extras_names_only_unknown_fields() -> None:
    assert codec.unmapped_extras(claude_code()) == ["some_future_field"]


def test_tool_messages_follow_the_assistant_tool_calls() -> None:
    messages = codec.encode_request(tool_loop(), "m")["messages"]
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "tool", "tool", "user", "assistant", "tool"]
    call_ids = [c["id"] for c in messages[1]["tool_calls"]]
    assert [m["tool_call_id"] for m in messages[2:4]] == call_ids


@pytest.mark.parametrize(
    ("thinking", "effort", "expected"),
    [
        (ir.Thinking("enabled", 1024), None, "low"),
        (ir.Thinking("enabled", 1025), None, "medium"),
        (ir.Thinking("enabled", 8192), None, "medium"),
        (ir.Thinking("enabled", 8193), None, "high"),
        (ir.Thinking("enabled", None), None, "medium"),
        (ir.Thinking("enabled", 2000), "high", "medium"),
        (ir.Thinking("adaptive"), None, "medium"),
        (ir.Thinking("adaptive"), "low", "low"),
        (ir.Thinking("disabled"), "high", None),
        (None, "max", "high"),
        (None, "low", "low"),
        (None, None, None),
    ],
)
def test_reasoning_effort(thinking: ir.Thinking | None, effort: str | None, expected: str | None) -> None:
    req = text_only()
    req.thinking = thinking
    req.effort = effort
    assert codec.encode_request(req, "m").get("reasoning_effort") == expected


def test_tool_choice_and_parallel_are_sent_only_with_tools() -> None:
    req = text_only()
    req.tool_choice = ir.ToolChoice("auto", disable_parallel_tool_use=True)
    body = codec.encode_request(req, "m")
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body


def test_short_user_id_is_kept_and_long_one_is_hashed() -> None:
    assert codec.encode_request(system_and_sampling(), "m")["user"] == "user-42"
    hashed = codec.encode_request(claude_code(), "m")["user"]
    assert len(hashed) == 64 and int(hashed, 16) >= 0


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: setattr(r, "tools", [ir.Tool("web_search", extras={"type": "web_search_20250305"})]), "web_search"),
        (lambda r: r.extras.update(mcp_servers=[{"type": "url", "url": "https://mcp"}]), "mcp_servers"),
        (
            lambda r: r.messages[0].content.append(ir.DocumentBlock({"type": "url", "url": "https://x/a.pdf"})),
            "messages.0.content.1.source",
        ),
        (
            lambda r: r.messages[0].content.append(ir.DocumentBlock({"type": "file", "file_id": "file_1"})),
            "file document source",
        ),
        (lambda r: r.messages[0].content.append(ir.ToolUseBlock("t", "x")), "tool_use block cannot appear in a user"),
        (lambda r: r.messages.append(assistant(ir.ImageBlock(url="https://x"))), "assistant turn"),
    ],
)
def test_untranslatable_requests_raise(mutate: Callable[[ir.Request], None], fragment: str) -> None:
    req = text_only()
    mutate(req)
    with pytest.raises(InvalidRequest) as info:
        codec.encode_request(req, "m")
    assert fragment in info.value.message
    assert info.value.status == 400


def test_empty_mcp_servers_and_unknown_server_tool_free_requests_pass() -> None:
    req = text_only()
    req.extras["mcp_servers"] = []
    req.tools = [ir.Tool("custom_tool", extras={"type": "custom", "defer_loading": True})]
    body = codec.encode_request(req, "m")
    assert body["tools"] == [
        {"type": "function", "function": {"name": "custom_tool", "parameters": {"type": "object"}}}
    ]


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("name", names("responses"))
def test_decode_response_golden(name: str) -> None:
    case = load("responses", name)
    try:
        actual = as_json(codec.decode_response(case["body"]))
    except GatewayError as exc:
        actual = {"raises": as_json(exc)}
    check("responses", name, actual, key="expected")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ("", {}),
        (None, {}),
        ("  ", {}),
        ({"already": "parsed"}, {"already": "parsed"}),
        ('{"city": "Par', {"_raw": '{"city": "Par'}),
        ("[1, 2]", {"_raw": "[1, 2]"}),
    ],
)
def test_parse_arguments(raw: Any, expected: dict[str, Any]) -> None:
    assert codec.parse_arguments(raw) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, ir.Usage()),
        ({"prompt_tokens": None, "completion_tokens": None, "prompt_tokens_details": None}, ir.Usage()),
        ({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}, ir.Usage(10, 3)),
        (
            {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
            ir.Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, reasoning_tokens=256),
        ),
        (
            {"prompt_tokens": 100, "completion_tokens": 1, "prompt_tokens_details": {"cache_write_tokens": 60}},
            ir.Usage(input_tokens=40, output_tokens=1, cache_write_tokens=60),
        ),
        (
            {
                "prompt_tokens": 50,
                "completion_tokens": 5,
                "prompt_cache_hit_tokens": 32,
                "prompt_cache_miss_tokens": 18,
            },
            ir.Usage(input_tokens=18, output_tokens=5, cache_read_tokens=32),
        ),
    ],
)
def test_decode_usage(usage: Any, expected: ir.Usage) -> None:
    assert codec.decode_usage(usage) == expected


# --------------------------------------------------------------------------- streams


def run_stream(frames: list[Any]) -> list[ir.StreamEvent]:
    decoder = StreamDecoder()
    events: list[ir.StreamEvent] = []
    for f in frames:
        if isinstance(f, dict) and "sse_event" in f:
            frame = SSEFrame(f["sse_event"], orjson.dumps(f["data"]).decode())
        else:
            frame = SSEFrame(None, f if isinstance(f, str) else orjson.dumps(f).decode())
        events += decoder.decode(frame)
    return events + decoder.finish()


@pytest.mark.parametrize("name", names("streams"))
def test_stream_golden(name: str) -> None:
    events = run_stream(load("streams", name)["frames"])
    check("streams", name, as_json(events), key="expected")


@pytest.mark.parametrize("name", names("streams"))
def test_stream_invariants(name: str) -> None:
    """Anthropic's order: one start, contiguous blocks opened and stopped once, one end or one error."""
    events = run_stream(load("streams", name)["frames"])
    errors = [e for e in events if isinstance(e, ir.StreamError)]
    assert len(errors) <= 1
    if errors:
        assert events[-1] is errors[0]
        events = events[:-1]
    else:
        assert isinstance(events[0], ir.MessageStart)
        assert isinstance(events[-2], ir.MessageDelta) and isinstance(events[-1], ir.MessageStop)
    assert sum(isinstance(e, ir.MessageStart) for e in events) <= 1
    open_index: int | None = None
    next_index = 0
    for e in events:
        if isinstance(e, ir.BlockStart):
            assert open_index is None and e.index == next_index
            open_index, next_index = e.index, next_index + 1
            if isinstance(e.block, ir.TextBlock | ir.ThinkingBlock):
                assert getattr(e.block, "text", "") == "" and getattr(e.block, "thinking", "") == ""
        elif isinstance(e, ir.BlockDelta):
            assert e.index == open_index and e.value != ""
        elif isinstance(e, ir.BlockStop):
            assert e.index == open_index
            open_index = None
        elif isinstance(e, ir.MessageDelta | ir.MessageStop):
            assert open_index is None
    if not errors:
        assert open_index is None


def test_stream_through_the_sse_parser_byte_by_byte() -> None:
    """The decoder works on frames as the SSE parser yields them, however the bytes are cut."""
    frames = load("streams", "parallel_tool_calls")["frames"]
    raw = b"".join(b"data: " + (f.encode() if isinstance(f, str) else orjson.dumps(f)) + b"\n\n" for f in frames)
    parser, decoder = SSEParser(), StreamDecoder()
    events: list[ir.StreamEvent] = []
    for i in range(len(raw)):
        for frame in parser.feed(raw[i : i + 1]):
            events += decoder.decode(frame)
    events += decoder.finish()
    assert as_json(events) == load("streams", "parallel_tool_calls")["expected"]


def test_nothing_after_the_end() -> None:
    decoder = StreamDecoder()
    decoder.decode(SSEFrame(None, '{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}'))
    assert isinstance(decoder.decode(SSEFrame(None, "[DONE]"))[-1], ir.MessageStop)
    assert decoder.decode(SSEFrame(None, '{"id":"c","choices":[{"index":0,"delta":{"content":"y"}}]}')) == []
    assert decoder.finish() == []


def test_abrupt_end_is_an_upstream_unavailable_error() -> None:
    decoder = StreamDecoder()
    decoder.decode(SSEFrame(None, '{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}'))
    (event,) = decoder.finish()
    assert isinstance(event, ir.StreamError) and isinstance(event.error, UpstreamUnavailable)
    assert event.error.status == 502


def test_stream_import_is_reexported() -> None:
    assert codec.StreamDecoder is StreamDecoder


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", names("errors"))
def test_error_from_upstream_golden(name: str) -> None:
    case = load("errors", name)
    body = case["body"] if isinstance(case["body"], str) else orjson.dumps(case["body"]).decode()
    err = codec.error_from_upstream(case["status"], body.encode())
    assert isinstance(err, UpstreamHTTPError) and err.raw == body.encode()
    check("errors", name, as_json(err), key="expected")
