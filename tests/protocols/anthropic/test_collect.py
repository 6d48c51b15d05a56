"""The Anthropic stream collector (forced internal streaming): event sequences shaped as the
Messages streaming reference writes them, collected into the exact message JSON the
non-streamed API returns, and checked against the official SDK's own accumulation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.anthropic import MessageCollector, with_stream

Event = dict[str, Any]


def sse(events: list[Event], *, named: bool = True, end: str = "\n") -> bytes:
    """The events as an Anthropic stream writes them (``event:`` then ``data:`` lines)."""
    out = []
    for e in events:
        data = orjson.dumps(e).decode()
        out.append((f"event: {e['type']}{end}" if named else "") + f"data: {data}{end}{end}")
    return "".join(out).encode()


def collect(raw: bytes, piece: int | None = None) -> bytes:
    """``raw`` fed whole (as the relay cuts it, on frame ends) or ``piece`` bytes at a time."""
    collector = MessageCollector()
    if piece is None:
        collector.feed(raw)
    else:
        for i in range(0, len(raw), piece):
            collector.feed(raw[i : i + piece])
    return collector.finish()


def start(**usage: Any) -> Event:
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 472,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 2,
            **usage,
        },
    }
    return {"type": "message_start", "message": message}


def block(index: int, content: Event) -> Event:
    return {"type": "content_block_start", "index": index, "content_block": content}


def delta(index: int, kind: str, **fields: Any) -> Event:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


def stop(index: int) -> Event:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int, **extra: Any) -> Event:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
        **extra,
    }


PING: Event = {"type": "ping"}
STOP: Event = {"type": "message_stop"}


def text_stream() -> list[Event]:
    return [
        start(),
        block(0, {"type": "text", "text": ""}),
        PING,
        delta(0, "text_delta", text="Hello"),
        delta(0, "text_delta", text=", wörld 👋"),
        delta(0, "text_delta", text="!"),
        stop(0),
        message_delta("end_turn", 15),
        STOP,
    ]


def tool_stream() -> list[Event]:
    return [
        start(),
        block(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", text="Okay, let's check the weather."),
        stop(0),
        block(1, {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}),
        delta(1, "input_json_delta", partial_json=""),
        delta(1, "input_json_delta", partial_json='{"location":'),
        delta(1, "input_json_delta", partial_json=' "San Fra'),
        delta(1, "input_json_delta", partial_json='ncisco, CA", "unit": "fahrenheit"}'),
        stop(1),
        block(2, {"type": "tool_use", "id": "toolu_02", "name": "no_arguments", "input": {}}),
        delta(2, "input_json_delta", partial_json=""),
        stop(2),
        message_delta("tool_use", 89),
        STOP,
    ]


def thinking_stream() -> list[Event]:
    return [
        start(),
        block(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, "thinking_delta", thinking="I need to find the GCD of 1071 and 462 "),
        delta(0, "thinking_delta", thinking="using the Euclidean algorithm."),
        delta(0, "signature_delta", signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk"),
        stop(0),
        block(1, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}),
        stop(1),
        block(2, {"type": "text", "text": ""}),
        delta(2, "text_delta", text="The greatest common divisor of 1071 and 462 is **21**."),
        stop(2),
        message_delta("end_turn", 120),
        STOP,
    ]


CITATION = {
    "type": "char_location",
    "cited_text": "The grass is green.",
    "document_index": 0,
    "document_title": "My Document",
    "start_char_index": 0,
    "end_char_index": 20,
}


def citations_stream() -> list[Event]:
    return [
        start(),
        block(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", text="According to the document, "),
        stop(0),
        block(1, {"type": "text", "text": "", "citations": []}),
        delta(1, "citations_delta", citation=CITATION),
        delta(1, "text_delta", text="the grass is green"),
        delta(1, "citations_delta", citation={**CITATION, "cited_text": "Green, again."}),
        stop(1),
        message_delta("end_turn", 30),
        STOP,
    ]


SEARCH_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
    "content": [
        {
            "type": "web_search_result",
            "title": "Weather in New York City",
            "url": "https://weather.example.com/nyc",
            "encrypted_content": "Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k",
            "page_age": None,
        }
    ],
}


def server_tool_stream() -> list[Event]:
    usage = {"input_tokens": 10682, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return [
        start(),
        block(0, {"type": "text", "text": ""}),
        delta(0, "text_delta", text="I'll check the current weather in New York City for you."),
        stop(0),
        block(
            1, {"type": "server_tool_use", "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "name": "web_search", "input": {}}
        ),
        delta(1, "input_json_delta", partial_json=""),
        delta(1, "input_json_delta", partial_json='{"query":"weather NY'),
        delta(1, "input_json_delta", partial_json='C today"}'),
        stop(1),
        block(2, SEARCH_RESULT),
        stop(2),
        block(3, {"type": "text", "text": ""}),
        delta(3, "text_delta", text="It is sunny."),
        stop(3),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {**usage, "output_tokens": 510, "server_tool_use": {"web_search_requests": 1}},
        },
        STOP,
    ]


def unknown_stream() -> list[Event]:
    """What a newer API may send: unknown message keys, usage keys, block types, delta types,
    event types and ``message_delta`` keys; every one is kept where it belongs."""
    first = start(service_tier="standard", cache_creation={"ephemeral_5m_input_tokens": 0})
    first["message"]["container"] = None
    first["message"]["future_key"] = {"a": 1}
    return [
        first,
        {"type": "future_event", "payload": [1, 2]},
        block(0, {"type": "future_block", "body": "", "parts": ["x"], "level": 1}),
        delta(0, "future_delta", body="he", parts=["y"], level=2),
        delta(0, "future_delta", body="llo", parts=["z"], level=3),
        stop(0),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "pause_turn", "stop_sequence": None, "container": {"id": "c1"}},
            "usage": {"output_tokens": 7, "input_tokens": None},
            "context_management": {"applied_edits": []},
        },
        STOP,
    ]


STREAMS = {
    "text": text_stream,
    "tool_use": tool_stream,
    "thinking": thinking_stream,
    "citations": citations_stream,
    "server_tool_use": server_tool_stream,
    "unknown": unknown_stream,
}


def test_a_text_stream_is_the_message_the_api_returns() -> None:
    got = collect(sse(text_stream()))
    assert got == orjson.dumps(
        {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": "Hello, wörld 👋!"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 472,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 15,
            },
        }
    )


def test_tool_input_is_parsed_and_an_empty_one_is_an_object() -> None:
    got = orjson.loads(collect(sse(tool_stream())))
    assert got["content"] == [
        {"type": "text", "text": "Okay, let's check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "fahrenheit"},
        },
        {"type": "tool_use", "id": "toolu_02", "name": "no_arguments", "input": {}},
    ]
    assert (got["stop_reason"], got["usage"]["output_tokens"]) == ("tool_use", 89)


def test_thinking_keeps_its_signature_and_whole_blocks_stay_as_given() -> None:
    got = orjson.loads(collect(sse(thinking_stream())))
    assert got["content"] == [
        {
            "type": "thinking",
            "thinking": "I need to find the GCD of 1071 and 462 using the Euclidean algorithm.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "text", "text": "The greatest common divisor of 1071 and 462 is **21**."},
    ]


def test_citations_are_appended_to_their_block() -> None:
    got = orjson.loads(collect(sse(citations_stream())))
    assert got["content"] == [
        {"type": "text", "text": "According to the document, "},
        {
            "type": "text",
            "text": "the grass is green",
            "citations": [CITATION, {**CITATION, "cited_text": "Green, again."}],
        },
    ]


def test_server_tool_use_and_its_result_and_the_usage_of_the_last_delta() -> None:
    got = orjson.loads(collect(sse(server_tool_stream())))
    assert got["content"][1:3] == [
        {
            "type": "server_tool_use",
            "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "name": "web_search",
            "input": {"query": "weather NYC today"},
        },
        SEARCH_RESULT,
    ]
    assert got["usage"] == {
        "input_tokens": 10682,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 510,
        "server_tool_use": {"web_search_requests": 1},
    }


def test_unknown_keys_blocks_and_deltas_are_kept_in_order() -> None:
    got = collect(sse(unknown_stream()))
    assert list(orjson.loads(got)) == [
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
        "container",
        "future_key",
        "context_management",
    ]
    parsed = orjson.loads(got)
    assert parsed["content"] == [{"type": "future_block", "body": "hello", "parts": ["x", "y", "z"], "level": 3}]
    assert (parsed["stop_reason"], parsed["container"], parsed["future_key"]) == ("pause_turn", {"id": "c1"}, {"a": 1})
    assert parsed["context_management"] == {"applied_edits": []}
    assert parsed["usage"] == {  # a null count keeps the one before, as the SDK does
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 7,
        "service_tier": "standard",
        "cache_creation": {"ephemeral_5m_input_tokens": 0},
    }


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic, on the SDK's reading of unknown blocks
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_the_sdk_accumulates_the_same_message(name: str) -> None:
    """The official SDK's ``accumulate_event`` (what ``stream.get_final_message()`` returns)."""
    events = STREAMS[name]()
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    # the SDK's model adds the fields it knows with their defaults (``stop_details: null``)
    expected = {k: v for k, v in snapshot.to_dict().items() if k in events[0]["message"] or v is not None}
    got = orjson.loads(collect(sse(events)))
    if name == "unknown":  # the SDK drops deltas it does not know, and ``context_management`` (a beta)
        assert expected["content"] == [{"type": "future_block", "body": "", "parts": ["x"], "level": 1}]
        got = {k: v for k, v in got.items() if k not in ("content", "context_management")}
        expected = {k: v for k, v in expected.items() if k != "content"}
    assert got == expected


@pytest.mark.parametrize("piece", [1, 7, 64])
@pytest.mark.parametrize("framing", ["named-lf", "named-crlf", "data-only"])
def test_any_cut_and_any_framing_gives_the_same_bytes(piece: int, framing: str) -> None:
    events = thinking_stream()
    whole = collect(sse(events))
    raw = sse(events, named=framing != "data-only", end="\r\n" if framing == "named-crlf" else "\n")
    assert collect(raw, piece) == whole


def test_comments_and_data_over_several_lines_are_read() -> None:
    raw = b": keep-alive\n\n" + sse(text_stream()[:2])
    raw += b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,\ndata: '
    raw += b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    raw += sse(text_stream()[-2:])
    assert orjson.loads(collect(raw))["content"] == [{"type": "text", "text": "Hi"}]


def test_an_error_event_first_is_the_upstreams_error() -> None:
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamHTTPError) as info:
        collect(sse([event]))
    err = info.value
    assert (err.status, err.kind, err.message, err.body) == (529, ErrorKind.OVERLOADED, "Overloaded", event)
    assert err.retryable


@pytest.mark.parametrize(("etype", "status"), [("api_error", 500), ("rate_limit_error", 429), ("future_error", 500)])
def test_an_error_event_midway_fails_with_its_status(etype: str, status: int) -> None:
    events = [*text_stream()[:4], {"type": "error", "error": {"type": etype, "message": "boom"}}]
    with pytest.raises(UpstreamHTTPError) as info:
        collect(sse(events))
    assert info.value.status == status


@pytest.mark.parametrize("cut", [0, 1, 4, 7, 8])
def test_a_stream_that_ends_before_message_stop_is_unavailable(cut: int) -> None:
    with pytest.raises(UpstreamUnavailable, match="before message_stop"):
        collect(sse(text_stream()[:cut]))


@pytest.mark.parametrize(
    "raw",
    [
        b"event: message_start\ndata: {not json}\n\n",
        sse([start(), delta(3, "text_delta", text="no such block")]),
        sse([block(0, {"type": "text", "text": ""})]),
        sse([start(), block(0, {"type": "tool_use", "id": "t", "name": "n", "input": {}})])
        + sse([delta(0, "input_json_delta", partial_json='{"cut'), stop(0), message_delta("tool_use", 1), STOP]),
    ],
    ids=["not-json", "unknown-index", "block-before-start", "tool-input-not-json"],
)
def test_events_that_are_not_the_protocols_are_unavailable(raw: bytes) -> None:
    with pytest.raises(UpstreamUnavailable):
        collect(raw)


def test_with_stream_adds_the_one_key_and_changes_nothing_else() -> None:
    raw = b'{"model": "m",  "x_unknown": {"b": 1}, "messages": [{"content": "caf\\u00e9"}]} \n'
    assert with_stream(raw, orjson.loads(raw)) == raw[:-3] + b',"stream":true} \n'
    spaced = b'{"model":"m"  }'
    assert orjson.loads(with_stream(spaced, orjson.loads(spaced))) == {"model": "m", "stream": True}


@pytest.mark.parametrize("value", [b"false", b"null"])
def test_with_stream_sets_a_stream_the_client_wrote(value: bytes) -> None:
    raw = b'{"model":"m","stream":' + value + b',"max_tokens":5}'
    assert with_stream(raw, orjson.loads(raw)) == b'{"model":"m","stream":true,"max_tokens":5}'
