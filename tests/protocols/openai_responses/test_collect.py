"""The Responses stream collector (forced internal streaming on the passthrough path): the
event stream in, the ``response`` of its terminal event out, byte for byte as parsed; the
stream's errors raised as the upstream's; the request's ``stream`` added."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.openai_responses import ResponseCollector, with_stream

FIXTURES = Path(__file__).parent / "fixtures" / "upstream_streams"


def frames(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((FIXTURES / f"{name}.json").read_text())["frames"]
    return loaded


def sse(events: list[dict[str, Any]], *, named: bool = True) -> bytes:
    """The events as OpenAI writes them: an ``event:`` line naming each (or none), its data."""
    return b"".join(
        (b"event: %s\n" % e["type"].encode() if named else b"") + b"data: " + orjson.dumps(e) + b"\n\n" for e in events
    )


def collect(raw: bytes, piece: int | None = None) -> bytes:
    collector = ResponseCollector()
    step = piece or len(raw) or 1
    for i in range(0, len(raw), step):
        collector.feed(raw[i : i + step])
    return collector.finish()


@pytest.mark.parametrize("named", [True, False], ids=["named", "data-only"])
@pytest.mark.parametrize("piece", [None, 1, 13, 500])
@pytest.mark.parametrize("name", ["text", "function_call", "custom_tool_call", "reasoning_summary_parts"])
def test_the_terminal_events_response_is_the_answer(name: str, piece: int | None, named: bool) -> None:
    events = frames(name)
    terminal = events[-1]
    assert terminal["type"] in ("response.completed", "response.incomplete")
    answer = collect(sse(events, named=named), piece)
    assert answer == orjson.dumps(terminal["response"])  # key order kept
    assert list(orjson.loads(answer)) == list(terminal["response"])


def test_crlf_line_ends_are_read() -> None:
    events = frames("text")
    assert orjson.loads(collect(sse(events).replace(b"\n", b"\r\n"))) == events[-1]["response"]


def test_a_failed_response_raises_its_error() -> None:
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(sse(frames("failed")))
    assert (caught.value.status, caught.value.message) == (500, "The model failed to generate a response.")


def test_an_error_event_raises_its_error() -> None:
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(sse(frames("error_event")), 5)
    assert (caught.value.status, caught.value.kind) == (429, ErrorKind.RATE_LIMIT)
    assert caught.value.message == "Rate limit reached"


@pytest.mark.parametrize("name", ["cut_short", "text"])
def test_a_stream_without_its_terminal_event_is_unavailable(name: str) -> None:
    events = frames(name)
    if events[-1]["type"] == "response.completed":
        events = events[:-1]
    with pytest.raises(UpstreamUnavailable):
        collect(sse(events))
    with pytest.raises(UpstreamUnavailable):
        collect(b"")


def test_a_terminal_event_that_is_not_json_is_unavailable() -> None:
    raw = sse(frames("text")[:-1]) + b"event: response.completed\ndata: {not json\n\n"
    with pytest.raises(UpstreamUnavailable):
        collect(raw)


def test_other_events_are_not_parsed_when_named() -> None:
    """A delta the collector need not read is skipped by its event line, whatever its data."""
    raw = b"event: response.output_text.delta\ndata: {broken\n\n" + sse(frames("text")[-1:])
    assert orjson.loads(collect(raw)) == frames("text")[-1]["response"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model":"m","input":"hi"}', b'{"model":"m","input":"hi","stream":true}'),
        (b'{"model":"m","stream":false,"input":"hi"}', b'{"model":"m","stream":true,"input":"hi"}'),
    ],
)
def test_with_stream(body: bytes, expected: bytes) -> None:
    assert with_stream(body, orjson.loads(body)) == expected
