"""OpenAI's documented Responses event streams → IR events: golden fixtures in
``fixtures/upstream_streams``, with Anthropic's stream order (:mod:`tests.protocols.streams`)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate import ir
from modelgate.protocols.openai_responses import StreamDecoder
from modelgate.protocols.sse import SSEFrame
from tests.protocols.streams import check_stream_order

from .helpers import as_json, check, load, names


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
