"""The Chat Completions stream collector (forced internal streaming on the passthrough path):
``chat.completion.chunk`` frames in, the ``chat.completion`` the non-streamed API returns out;
the request's ``stream`` and ``stream_options`` added."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.openai_chat import CompletionCollector, with_stream
from tests.protocols.streams import sse_body

HEAD = {"id": "chatcmpl-9x", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-2024-08-06"}
TAIL = {"service_tier": "default", "system_fingerprint": "fp_abc"}
USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any) -> dict[str, Any]:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**HEAD, **TAIL, "choices": [choice], "usage": None, **extra}


def usage_chunk() -> dict[str, Any]:
    return {**HEAD, **TAIL, "choices": [], "usage": USAGE}


def collect(raw: bytes, piece: int | None = None) -> dict[str, Any]:
    collector = CompletionCollector()
    step = piece or len(raw) or 1
    for i in range(0, len(raw), step):
        collector.feed(raw[i : i + step])
    answer: dict[str, Any] = orjson.loads(collector.finish())
    return answer


def completion(message: dict[str, Any], finish: str, *, usage: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-9x",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        out["usage"] = USAGE
    return {**out, **TAIL}


TEXT = [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"content": "The capital"}),
    chunk({"content": ' of France is "Paris".\n'}),
    chunk({}, "stop"),
    usage_chunk(),
    "[DONE]",
]
TOOLS = [
    chunk(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ],
            "refusal": None,
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    chunk(
        {"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}]}
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
    chunk({}, "tool_calls"),
    usage_chunk(),
    "[DONE]",
]


@pytest.mark.parametrize("piece", [None, 1, 7, 64])
def test_text_is_joined_and_usage_read(piece: int | None) -> None:
    answer = collect(sse_body(TEXT), piece)
    message = {"role": "assistant", "content": 'The capital of France is "Paris".\n', "refusal": None}
    assert answer == completion(message, "stop")
    assert list(answer) == [
        "id",
        "object",
        "created",
        "model",
        "choices",
        "usage",
        "service_tier",
        "system_fingerprint",
    ]


@pytest.mark.parametrize("piece", [None, 3, 50])
def test_tool_calls_are_collected_by_index(piece: int | None) -> None:
    answer = collect(sse_body(TOOLS), piece)
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    assert answer == completion(
        {"role": "assistant", "content": None, "refusal": None, "tool_calls": calls}, "tool_calls"
    )


def test_a_refusal_is_joined_and_content_stays_null() -> None:
    frames = [
        chunk({"role": "assistant", "refusal": "I can't "}),
        chunk({"refusal": "help."}),
        chunk({}, "stop"),
        "[DONE]",
    ]
    answer = collect(sse_body(frames))
    message = {"role": "assistant", "content": None, "refusal": "I can't help."}
    assert answer == completion(message, "stop", usage=False)  # no usage chunk: no usage


def test_logprobs_annotations_reasoning_and_several_choices() -> None:
    lp = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    first = chunk({"role": "assistant", "content": "Hi"})
    first["choices"][0]["logprobs"] = {"content": [lp], "refusal": None}
    second = chunk({"content": "!", "reasoning_content": "short"})
    second["choices"][0]["logprobs"] = {"content": [{**lp, "token": "!"}], "refusal": None}
    other = chunk({"role": "assistant", "content": "Yo"}, index=1)
    cite = {"type": "url_citation", "url_citation": {"url": "https://example.com", "title": "Ex"}}
    frames = [first, other, second, chunk({"annotations": [cite]}), chunk({}, "stop"), chunk({}, "length", index=1)]
    answer = collect(sse_body([*frames, usage_chunk(), "[DONE]"]))
    zero, one = answer["choices"]
    assert zero["message"] == {
        "role": "assistant",
        "content": "Hi!",
        "refusal": None,
        "reasoning_content": "short",
        "annotations": [cite],
    }
    assert zero["logprobs"] == {"content": [lp, {**lp, "token": "!"}], "refusal": None}
    assert (zero["finish_reason"], one["index"], one["message"]["content"], one["finish_reason"]) == (
        "stop",
        1,
        "Yo",
        "length",
    )


def test_crlf_lines_and_usage_on_the_finish_chunk_are_read() -> None:
    frames = [chunk({"content": "ok"}), chunk({}, "stop", usage=USAGE), "[DONE]"]
    answer = collect(sse_body(frames).replace(b"\n", b"\r\n"))
    assert answer["usage"] == USAGE and answer["choices"][0]["message"]["content"] == "ok"


def test_ollamas_whole_argument_objects_are_written_as_json() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    answer = collect(sse_body([chunk({"role": "assistant", "tool_calls": [call]}), chunk({}, "tool_calls"), "[DONE]"]))
    assert answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'


def test_the_legacy_function_call_is_joined() -> None:
    frames = [
        chunk({"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": ""}}),
        chunk({"function_call": {"arguments": '{"a":'}}),
        chunk({"function_call": {"arguments": " 1}"}}),
        chunk({}, "function_call"),
        "[DONE]",
    ]
    message = collect(sse_body(frames))["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "function_call": {"name": "f", "arguments": '{"a": 1}'},
    }


@pytest.mark.parametrize(
    "frames",
    [
        [chunk({"content": "x"}), {"error": {"message": "Slow down", "type": "rate_limit_error", "code": None}}],
        [chunk({"content": "x"}), {"error": {"message": "Slow down", "type": "requests", "code": "429"}}],
    ],
    ids=["openai", "code-as-status"],
)
def test_an_error_frame_raises_the_upstreams_error(frames: list[Any]) -> None:
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(sse_body(frames))
    assert (caught.value.status, caught.value.kind, caught.value.message) == (429, ErrorKind.RATE_LIMIT, "Slow down")


def test_an_error_event_line_raises_the_upstreams_error() -> None:
    raw = sse_body([chunk({"content": "x"})]) + b'event: error\ndata: {"message": "model unloaded", "code": 503}\n\n'
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(raw)
    assert caught.value.status == 503 and caught.value.message == "model unloaded"


@pytest.mark.parametrize("cut", range(len(TEXT)))
def test_a_stream_cut_before_done_is_unavailable(cut: int) -> None:
    with pytest.raises(UpstreamUnavailable):
        collect(sse_body(TEXT[:cut]))


def test_done_without_a_finish_reason_is_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable):
        collect(sse_body([chunk({"content": "x"}), "[DONE]"]))


def test_a_chunk_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable):
        collect(sse_body([chunk({"content": "x"})]) + b"data: {not json\n\n" + sse_body([chunk({}, "stop"), "[DONE]"]))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"model":"m","messages":[]}',
            b'{"stream":true,"stream_options":{"include_usage":true},"model":"m","messages":[]}',
        ),
        (b'{"model":"m","stream":false}', b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}'),
        (
            b'{"stream_options":{"include_obfuscation":false},"model":"m"}',
            b'{"stream_options":{"include_obfuscation":false,"include_usage":true},"model":"m","stream":true}',
        ),
        (
            b'{"model":"m","stream_options":null}',
            b'{"model":"m","stream_options":{"include_usage":true},"stream":true}',
        ),
    ],
    ids=["spliced", "stream-false", "options-merged", "options-null"],
)
def test_with_stream(body: bytes, expected: bytes) -> None:
    assert with_stream(body, orjson.loads(body)) == expected
