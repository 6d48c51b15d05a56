"""The IR stream collector (forced internal streaming on the translated path): IR events in,
the ``ir.Response`` a provider's ``complete`` would have returned out, whatever protocol the
events were decoded from."""

from __future__ import annotations

import orjson
import pytest

from modelgate import ir
from modelgate.errors import UpstreamTimeout, UpstreamUnavailable
from modelgate.protocols import anthropic as codec
from modelgate.protocols.collect import ResponseCollector
from modelgate.protocols.sse import SSEParser
from tests.protocols.anthropic.test_collect import STREAMS, sse

USAGE = ir.Usage(input_tokens=12, output_tokens=34, cache_read_tokens=5)


def collected(*batches: list[ir.StreamEvent]) -> ir.Response:
    collector = ResponseCollector()
    for batch in batches:
        collector.add(batch)
    return collector.response()


def test_blocks_are_filled_by_their_deltas() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("msg_1", "m", ir.Usage(input_tokens=12)),
        ir.BlockStart(0, ir.ThinkingBlock("", origin="anthropic")),
        ir.BlockDelta(0, "thinking", "Let me "),
        ir.Ping(),
        ir.BlockDelta(0, "thinking", "think."),
        ir.BlockDelta(0, "signature", "sig-1"),
        ir.BlockStop(0),
        ir.BlockStart(1, ir.TextBlock("")),
        ir.BlockDelta(1, "text", "It is "),
        ir.BlockDelta(1, "citation", {"type": "char_location", "cited_text": "x"}),
        ir.BlockDelta(1, "text", "sunny."),
        ir.BlockStop(1),
        ir.BlockStart(2, ir.ToolUseBlock("toolu_1", "get_weather")),
        ir.BlockDelta(2, "input_json", ""),
        ir.BlockDelta(2, "input_json", '{"city": "Pa'),
        ir.BlockDelta(2, "input_json", 'ris"}'),
        ir.BlockStop(2),
        ir.BlockStart(3, ir.ToolUseBlock("toolu_2", "no_arguments")),
        ir.BlockStop(3),
        ir.MessageDelta("tool_use", USAGE),
        ir.MessageStop(),
    ]
    got = collected(events[:5], events[5:11], events[11:])  # batches as upstream reads cut them
    assert got == ir.Response(
        "msg_1",
        "m",
        [
            ir.ThinkingBlock("Let me think.", signature="sig-1", origin="anthropic"),
            ir.TextBlock("It is sunny.", citations=[{"type": "char_location", "cited_text": "x"}]),
            ir.ToolUseBlock("toolu_1", "get_weather", {"city": "Paris"}),
            ir.ToolUseBlock("toolu_2", "no_arguments", {}),
        ],
        "tool_use",
        USAGE,
    )


def test_a_block_header_with_text_keeps_it_and_a_signature_on_text_is_kept() -> None:
    """Gemini's decoder may open a block with its first text, and put a signature on text."""
    got = collected(
        [
            ir.MessageStart("m1", "gemini-2.5-flash", ir.Usage()),
            ir.BlockStart(0, ir.TextBlock("Hel")),
            ir.BlockDelta(0, "text", "lo"),
            ir.BlockDelta(0, "signature", "thought-sig"),
            ir.BlockStop(0),
            ir.MessageDelta("end_turn", USAGE, "END"),
            ir.MessageStop(),
        ]
    )
    assert got.content == [ir.TextBlock("Hello", signature="thought-sig")]
    assert (got.stop_reason, got.stop_sequence, got.usage) == ("end_turn", "END", USAGE)


def test_a_stream_error_raises_its_error() -> None:
    error = UpstreamTimeout("upstream anth sent nothing for 1 s")
    collector = ResponseCollector()
    collector.add([ir.MessageStart("m1", "m", ir.Usage()), ir.BlockStart(0, ir.TextBlock(""))])
    with pytest.raises(UpstreamTimeout) as info:
        collector.add([ir.BlockDelta(0, "text", "Hi"), ir.StreamError(error)])
    assert info.value is error


@pytest.mark.parametrize("cut", [0, 1, 3, 4])
def test_a_stream_without_its_end_is_unavailable(cut: int) -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("m1", "m", ir.Usage()),
        ir.BlockStart(0, ir.TextBlock("")),
        ir.BlockDelta(0, "text", "Hi"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn", USAGE),
        ir.MessageStop(),
    ]
    with pytest.raises(UpstreamUnavailable):
        collected(events[:cut])


def test_tool_input_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable, match="not JSON"):
        collected(
            [
                ir.MessageStart("m1", "m", ir.Usage()),
                ir.BlockStart(0, ir.ToolUseBlock("t", "n")),
                ir.BlockDelta(0, "input_json", '{"cut'),
                ir.MessageDelta("tool_use", USAGE),
                ir.MessageStop(),
            ]
        )


# (server tool blocks have no IR form: the translated path refuses them either way)
@pytest.mark.parametrize("name", sorted(set(STREAMS) - {"unknown", "server_tool_use"}))
def test_an_anthropic_stream_collects_to_what_complete_decodes(name: str) -> None:
    """The codec's stream decoder, then this collector: the same IR answer as the codec's
    ``decode_response`` of the message the non-streamed API returns for the same events."""
    events = STREAMS[name]()
    raw = sse(events)
    decoder, parser = codec.StreamDecoder(), SSEParser()
    batch = [e for frame in parser.feed(raw) + parser.flush() for e in decoder.decode(frame)] + decoder.finish()
    collector = codec.MessageCollector()
    collector.feed(raw)
    assert collected(batch) == codec.decode_response(orjson.loads(collector.finish()))
