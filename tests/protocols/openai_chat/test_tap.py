"""The Chat Completions answer tap and ``request_usage``, on real answers of the fake upstream
(``/v1/chat/completions``, with and without ``include_usage`` and with its server quirks)."""

from __future__ import annotations

import json

import orjson
import pytest

from modelgate import ir
from modelgate.protocols import openai_chat as codec
from modelgate.protocols import tap as tap_module
from modelgate.protocols.openai_chat import ChatTap
from modelgate.protocols.openai_chat.tap import request_usage
from modelgate.protocols.sse import SSEParser
from tests.protocols.taps import (
    USAGE,
    USAGE_CACHED_PROMPT,
    crlf,
    feed,
    fetch,
    groupings,
    same_everywhere,
    seen,
    sse_frames,
)

MODEL = "gpt-4o"
HEADERS = {"authorization": "Bearer test-key"}
INCLUDE = {"include_usage": True}


def request(prompt: str, *, stream: bool = True, options: dict | None = None) -> dict:
    body: dict = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": stream}
    if options is not None:
        body["stream_options"] = options
    return body


def answer(fake, body: dict | bytes) -> bytes:
    url = fake.openai_base_url + "/chat/completions"
    if isinstance(body, bytes):
        return fetch(url, HEADERS | {"content-type": "application/json"}, content=body)
    return fetch(url, HEADERS, json=body)


def decoded_usage(raw: bytes) -> ir.Usage:
    """The codec's own reading of a whole stream's usage (zeros when it has none)."""
    decoder, parser = codec.StreamDecoder(), SSEParser()
    events = [e for f in parser.feed(raw) + parser.flush() for e in decoder.decode(f)] + decoder.finish()
    return [e for e in events if isinstance(e, ir.MessageDelta)][-1].usage


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("framing", ["lf", "crlf"])
def test_streamed_with_include_usage(fake_upstream, framing: str) -> None:
    raw = answer(fake_upstream, request(USAGE + " hi", options=INCLUDE))
    assert decoded_usage(raw) == USAGE_CACHED_PROMPT
    if framing == "crlf":
        raw = crlf(raw)
    assert same_everywhere(ChatTap, sse_frames(raw)) == (USAGE_CACHED_PROMPT, True, False, "stop", MODEL)


def test_streamed_without_usage(fake_upstream) -> None:
    raw = answer(fake_upstream, request(USAGE + ' [[fake:tool get_time {"tz": "CET"}]]'))
    assert b'"usage"' not in raw
    assert same_everywhere(ChatTap, sse_frames(raw)) == (None, True, False, "tool_calls", MODEL)


@pytest.mark.parametrize(
    ("quirk", "usage"),
    [("no_usage", None), ("null_choices", USAGE_CACHED_PROMPT), ("usage_on_last_chunk", USAGE_CACHED_PROMPT)],
)
def test_server_quirks(fake_upstream, quirk: str, usage: ir.Usage | None) -> None:
    raw = answer(fake_upstream, request(f"{USAGE} [[fake:quirks {quirk}]] hi", options=INCLUDE))
    assert decoded_usage(raw) == (usage or ir.Usage())
    assert same_everywhere(ChatTap, sse_frames(raw)) == (usage, True, False, "stop", MODEL)


def test_usage_on_the_finish_chunk_without_include_usage(fake_upstream) -> None:
    raw = answer(fake_upstream, request(f"{USAGE} [[fake:quirks usage_on_last_chunk]] hi"))
    assert same_everywhere(ChatTap, sse_frames(raw)) == (USAGE_CACHED_PROMPT, True, False, "stop", MODEL)


def test_cut_short(fake_upstream) -> None:
    raw = answer(fake_upstream, request(USAGE + " [[fake:break 3]] hi", options=INCLUDE))
    assert len(sse_frames(raw)) == 3
    assert same_everywhere(ChatTap, sse_frames(raw)) == (None, False, False, None, MODEL)


def test_cut_after_the_finish_before_usage_and_done(fake_upstream) -> None:
    whole = sse_frames(answer(fake_upstream, request(USAGE + " hi", options=INCLUDE)))
    fake_upstream.reset()
    raw = answer(fake_upstream, request(f"{USAGE} [[fake:break {len(whole) - 2}]] hi", options=INCLUDE))
    assert sse_frames(raw) == whole[:-2]
    # The model finished, but the answer did not reach its end: no usage, no [DONE].
    assert same_everywhere(ChatTap, sse_frames(raw)) == (None, False, False, "stop", MODEL)


def test_upstream_error_frame(fake_upstream) -> None:
    raw = answer(fake_upstream, request(USAGE + " [[fake:error 503 after=3]] hi", options=INCLUDE))
    frames = sse_frames(raw)
    assert frames[-1].startswith(b'data: {"error":')
    assert same_everywhere(ChatTap, frames) == (None, False, True, None, MODEL)


def test_error_event_frame() -> None:
    """vLLM-style: an ``event: error`` frame whose data has no ``error`` member."""
    first = b'data: {"id":"c1","object":"chat.completion.chunk","model":"qwen","choices":[]}\n\n'
    tap = ChatTap()
    tap.feed(first + b'event: error\ndata: {"message":"model unloaded","code":503}\n\n')
    assert seen(tap) == (None, False, True, None, "qwen")
    assert tap.error is not None and (tap.error.status, tap.error.message) == (503, "model unloaded")


def test_done_after_an_error_is_no_normal_end() -> None:
    """vLLM: an error object mid-stream, then ``[DONE]`` with no finish reason ever sent."""
    tap = ChatTap()
    tap.feed(
        b'data: {"id":"c1","model":"qwen","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
    )
    tap.feed(b'data: {"error":{"object":"error","message":"The engine died","code":500}}\n\ndata: [DONE]\n\n')
    assert seen(tap) == (None, False, True, None, "qwen")
    assert tap.error is not None and (tap.error.status, tap.error.message) == (500, "The engine died")
    assert tap.error.protocol == "openai_chat" and tap.error.retryable


def test_text_that_looks_like_the_end_is_not_the_end(fake_upstream) -> None:
    text = 'data: [DONE] and "finish_reason":"stop" and "usage":{} and "error"'
    frames = sse_frames(answer(fake_upstream, request(f"[[fake:text {text}]]")))
    tap = ChatTap()
    for frame in frames[:-2]:  # all but the finish chunk and [DONE]
        tap.feed(frame)
    assert seen(tap) == (None, False, False, None, MODEL)


def test_only_the_frames_that_matter_are_parsed(fake_upstream, monkeypatch) -> None:
    raw = answer(fake_upstream, request("[[fake:words 200]]", options=INCLUDE))
    parsed = []
    monkeypatch.setattr("modelgate.protocols.openai_chat.tap.load", lambda d: parsed.append(d) or tap_module.load(d))
    tap = ChatTap()
    frames = sse_frames(raw)
    assert len(frames) > 200
    for frame in frames:
        tap.feed(frame)
    assert tap.ended and tap.usage is not None and tap.usage.output_tokens == 200  # read now, lazily
    chunks = [orjson.loads(d) for d in parsed]
    # The first chunk (for the model), the finish chunk and the usage chunk; [DONE] is no JSON.
    assert len(chunks) == 3
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[1]["choices"][0]["finish_reason"] == "stop" and chunks[2]["choices"] == []
    assert tap.ended and tap.usage is not None and tap.usage.output_tokens == 200


def test_whole_answer(fake_upstream) -> None:
    raw = answer(fake_upstream, request(USAGE + " [[fake:max_tokens]] hi", stream=False))
    assert codec.decode_response(orjson.loads(raw)).usage == USAGE_CACHED_PROMPT
    tap = ChatTap()
    tap.whole(raw)
    assert seen(tap) == (USAGE_CACHED_PROMPT, True, False, "length", MODEL)


def test_whole_answer_without_usage_and_errors(fake_upstream) -> None:
    raw = answer(fake_upstream, request("[[fake:quirks no_usage]] hi", stream=False))
    tap = ChatTap()
    tap.whole(raw)
    assert seen(tap) == (None, True, False, "stop", MODEL)
    tap = ChatTap()
    tap.whole(b'{"error":{"message":"boom","type":"server_error","param":null,"code":null}}')
    assert seen(tap) == (None, False, True, None, None)


# --------------------------------------------------------------------------- request_usage


def test_request_usage_splices_the_option_in_and_keeps_every_other_byte() -> None:
    raw = b' {\n  "model": "gpt-4o",\n  "messages": [{"role": "user", "content": "h\\u00e9"}],\n  "stream": true\n}'
    out = request_usage(raw, json.loads(raw))
    assert (
        out
        == b' {"stream_options":{"include_usage":true},\n  "model": "gpt-4o",' + raw[len(b' {\n  "model": "gpt-4o",') :]
    )
    assert json.loads(out) == {**json.loads(raw), "stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    ("options", "merged"),
    [
        ({"include_obfuscation": False}, {"include_obfuscation": False, "include_usage": True}),
        ({"include_usage": False}, {"include_usage": True}),
        (None, {"include_usage": True}),
    ],
)
def test_request_usage_merges_into_stream_options(options, merged) -> None:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": options,
        "messages": [{"role": "user", "content": "é"}],
    }
    out = request_usage(json.dumps(body).encode(), body)
    assert out == orjson.dumps({**body, "stream_options": merged})
    assert list(orjson.loads(out)) == ["model", "stream", "stream_options", "messages"]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-4o", "messages": []},
        {"model": "gpt-4o", "messages": [], "stream": False},
        {"model": "gpt-4o", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
        {"model": "gpt-4o", "messages": [], "stream": True, "stream_options": "yes"},  # the upstream refuses it
    ],
)
def test_request_usage_adds_nothing(body) -> None:
    assert request_usage(orjson.dumps(body), body) is None


# --------------------------------------------------------------------------- hiding


@pytest.mark.parametrize("quirk", [None, "null_choices", "usage_on_last_chunk", "no_usage"])
@pytest.mark.parametrize("framing", ["lf", "crlf"])
def test_hidden_usage_leaves_the_stream_the_client_asked_for(fake_upstream, quirk: str | None, framing: str) -> None:
    prompt = f"{USAGE} {f'[[fake:quirks {quirk}]]' if quirk else ''} [[fake:thinking hmm]] hi"
    prompt += ' [[fake:text fine]] [[fake:tool get_time {"tz": "CET"}]]'
    body = request(prompt)
    raw_request = orjson.dumps(body)
    plain = answer(fake_upstream, raw_request)
    fake_upstream.reset()  # the same ids again
    asked = request_usage(raw_request, body)
    assert asked is not None and orjson.loads(asked)["stream_options"] == INCLUDE
    with_usage = answer(fake_upstream, asked)
    if framing == "crlf":
        plain, with_usage = crlf(plain), crlf(with_usage)
    if quirk in (None, "null_choices"):
        assert with_usage != plain
    expected = None if quirk == "no_usage" else USAGE_CACHED_PROMPT
    for name, chunks in groupings(sse_frames(with_usage)).items():
        tap = ChatTap(hide_usage=True)
        assert feed(tap, chunks) == plain, name
        assert seen(tap) == (expected, True, False, "tool_calls", MODEL), name


def test_hidden_usage_in_other_spellings() -> None:
    """A server writing JSON with spaces (``, "usage": null``), or usage first in the object."""
    head = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}

    def frame(obj) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    plain = [frame(c) for c in chunks] + [b"data: [DONE]\n\n"]
    sent = [frame({**c, "usage": None}) for c in chunks[:1]] + [frame({"usage": None, **chunks[1]})]
    sent += [frame({**head, "choices": None, "usage": usage}), b"data: [DONE]\n\n"]
    assert b', "usage": null}' in sent[0] and b'{"usage": null, ' in sent[1]
    for chunks_cut in groupings(sent).values():
        tap = ChatTap(hide_usage=True)
        assert feed(tap, chunks_cut) == b"".join(plain)
        assert seen(tap) == (ir.Usage(input_tokens=9, output_tokens=2), True, False, "stop", "m")


def test_a_chunk_holding_only_the_usage_chunk_forwards_nothing() -> None:
    tap = ChatTap(hide_usage=True)
    usage_only = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    assert tap.feed(usage_only) == b""
    assert tap.usage == ir.Usage(input_tokens=3, output_tokens=1)
    assert ChatTap().feed(usage_only) is usage_only  # not hiding: forwarded as it is
