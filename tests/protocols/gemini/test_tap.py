"""The Gemini answer tap, on real answers of the fake upstream: ``:generateContent``, and
``:streamGenerateContent`` with ``?alt=sse`` (SSE) and without (a JSON array, cut into chunks
by :class:`ArrayCutter` as the passthrough cuts it)."""

from __future__ import annotations

import json

import pytest

from modelgate import ir
from modelgate.protocols import gemini as codec
from modelgate.protocols import tap as tap_module
from modelgate.protocols.gemini import GeminiTap
from modelgate.protocols.gemini.jsonarray import ArrayCutter
from modelgate.protocols.gemini.upstream_response import decode_usage
from modelgate.protocols.sse import SSEParser
from tests.protocols.taps import USAGE, USAGE_CACHED_PROMPT, fetch, same_everywhere, seen, sse_frames

MODEL = "gemini-2.5-flash"
HEADERS = {"x-goog-api-key": "test-key"}
#: What every chunk but the last says: the prompt so far, nothing generated yet.
PROMPT_ONLY = ir.Usage(input_tokens=127, cache_read_tokens=40)


def answer(fake, prompt: str, method: str = "streamGenerateContent", query: str = "") -> bytes:
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    url = f"{fake.base_url}/v1beta/models/{MODEL}:{method}" + (f"?{query}" if query else "")
    return fetch(url, HEADERS, json=body)


def sse_answer(fake, prompt: str) -> bytes:
    raw = answer(fake, prompt, query="alt=sse")
    assert raw.startswith(b"data: {") and b"\r\n\r\n" in raw  # Google frames SSE with CRLF
    return raw


def array_chunks(raw: bytes, piece: int, *, whole: bool = True) -> list[bytes]:
    """``raw`` read ``piece`` bytes at a time and cut on element boundaries by ``ArrayCutter``
    (flushed at the end only when the body ended normally)."""
    cutter = ArrayCutter()
    chunks = [cutter.feed(raw[i : i + piece]) for i in range(0, len(raw), piece)]
    if whole:
        chunks.append(cutter.flush())
    chunks = [c for c in chunks if c]
    assert b"".join(chunks) == raw or not whole
    return chunks


def sse_findings(raw: bytes) -> tuple:
    """The findings on ``raw`` (CRLF as sent) and on the same frames with LF line ends."""
    crlf = same_everywhere(lambda: GeminiTap(sse=True), sse_frames(raw))
    lf = same_everywhere(lambda: GeminiTap(sse=True), sse_frames(raw.replace(b"\r\n", b"\n")))
    assert crlf == lf
    return crlf


def array_findings(raw: bytes, *, whole: bool = True) -> tuple:
    """The findings whatever the size of the reads behind the cutter's chunks (one element per
    chunk, several, the whole body at once)."""
    results = []
    for piece in (1, 7, 64, 500, len(raw)):
        tap = GeminiTap(sse=False)
        for chunk in array_chunks(raw, piece, whole=whole):
            assert tap.feed(chunk) is chunk
        results.append(seen(tap))
    assert all(r == results[0] for r in results), results
    return results[0]


def test_sse_stream(fake_upstream) -> None:
    raw = sse_answer(fake_upstream, USAGE + " [[fake:words 12]]")
    decoder, parser = codec.StreamDecoder(), SSEParser()
    events = [e for f in parser.feed(raw) for e in decoder.decode(f)] + decoder.finish()
    assert [e for e in events if isinstance(e, ir.MessageDelta)][-1].usage == USAGE_CACHED_PROMPT
    assert sse_findings(raw) == (USAGE_CACHED_PROMPT, True, False, "STOP", MODEL)


def test_array_stream(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + ' [[fake:tool get_time {"tz": "CET"}]]')
    assert raw.startswith(b"[{") and raw.endswith(b"}\n]")
    assert decode_usage(json.loads(raw)[-1]["usageMetadata"]) == USAGE_CACHED_PROMPT
    assert array_findings(raw) == (USAGE_CACHED_PROMPT, True, False, "STOP", MODEL)


def test_max_tokens(fake_upstream) -> None:
    raw = sse_answer(fake_upstream, USAGE + " [[fake:max_tokens]] hi")
    assert sse_findings(raw) == (USAGE_CACHED_PROMPT, True, False, "MAX_TOKENS", MODEL)


def test_cut_short(fake_upstream) -> None:
    raw = sse_answer(fake_upstream, USAGE + " [[fake:break 3]] hi")
    assert len(sse_frames(raw)) == 3
    assert sse_findings(raw) == (PROMPT_ONLY, False, False, None, MODEL)
    fake_upstream.reset()
    raw = answer(fake_upstream, USAGE + " [[fake:break 3]] hi")
    assert not raw.endswith(b"]")
    assert array_findings(raw, whole=False) == (PROMPT_ONLY, False, False, None, MODEL)


def test_upstream_error(fake_upstream) -> None:
    raw = sse_answer(fake_upstream, USAGE + " [[fake:error 503 after=2]] hi")
    assert sse_frames(raw)[-1].startswith(b'data: {"error": {"code": 503')
    assert sse_findings(raw) == (PROMPT_ONLY, False, True, None, MODEL)
    fake_upstream.reset()
    raw = answer(fake_upstream, USAGE + " [[fake:error 503 after=2]] hi")
    assert raw.endswith(b"}\n]") and json.loads(raw)[-1]["error"]["code"] == 503
    assert array_findings(raw) == (PROMPT_ONLY, False, True, None, MODEL)


def test_error_as_the_first_element(fake_upstream) -> None:
    raw = answer(fake_upstream, "[[fake:error 429 after=0]] hi")
    assert array_findings(raw) == (None, False, True, None, None)
    tap = GeminiTap(sse=False)
    tap.feed(raw)
    assert tap.error is not None and (tap.error.status, tap.error.kind, tap.error.protocol) == (
        429,
        "rate_limit",
        "gemini",
    )


def test_blocked_prompt() -> None:
    frame = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": MODEL,
    }
    raw = b"data: " + json.dumps(frame).encode() + b"\r\n\r\n"
    assert sse_findings(raw) == (ir.Usage(input_tokens=9), True, False, "PROHIBITED_CONTENT", MODEL)


def test_usage_is_decoded_lazily_and_only_the_last_chunk_is_parsed(fake_upstream, monkeypatch) -> None:
    raw = sse_answer(fake_upstream, USAGE + " [[fake:words 60]]")
    parsed: list[bytes] = []
    monkeypatch.setattr("modelgate.protocols.gemini.tap.load", lambda d: parsed.append(d) or tap_module.load(d))
    frames = sse_frames(raw)
    assert len(frames) == 60
    tap = GeminiTap(sse=True)
    for frame in frames[:10]:
        tap.feed(frame)
    assert parsed == []  # ten chunks, no parsing
    assert tap.usage == PROMPT_ONLY and tap.model == MODEL  # now the tenth and the first are read
    assert len(parsed) == 2
    assert tap.usage == PROMPT_ONLY and tap.model == MODEL and len(parsed) == 2  # once only
    for frame in frames[10:]:
        tap.feed(frame)
    assert len(parsed) == 2  # the chunks at the end are kept, not read yet
    # Read when asked: the finishing chunk, which also carries the final usage.
    assert seen(tap) == (USAGE_CACHED_PROMPT, True, False, "STOP", MODEL) and len(parsed) == 3


@pytest.mark.parametrize("sse", [True, False])
def test_the_last_usage_wins_even_after_the_finish(sse: bool) -> None:
    def usage(prompt: int, candidates: int) -> dict:
        return {"promptTokenCount": prompt, "candidatesTokenCount": candidates}

    elements = [
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": usage(5, 1), "modelVersion": "m1"},
        {"candidates": [{"content": {"parts": []}, "finishReason": "STOP"}], "usageMetadata": usage(5, 2)},
        {"usageMetadata": usage(6, 3), "modelVersion": "m2"},
    ]
    if sse:
        chunks = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in elements]
    else:
        chunks = [b"[" + json.dumps(elements[0]).encode(), b",\n" + json.dumps(elements[1]).encode()]
        chunks.append(b",\n" + json.dumps(elements[2]).encode() + b"]")
    tap = GeminiTap(sse=sse)
    for chunk in chunks:
        tap.feed(chunk)
    assert seen(tap) == (ir.Usage(input_tokens=6, output_tokens=3), True, False, "STOP", "m1")


def test_whole_answer(fake_upstream) -> None:
    raw = answer(fake_upstream, USAGE + " hi", method="generateContent")
    assert codec.decode_response(json.loads(raw)).usage == USAGE_CACHED_PROMPT
    tap = GeminiTap(sse=True)
    tap.whole(raw)
    assert seen(tap) == (USAGE_CACHED_PROMPT, True, False, "STOP", MODEL)


def test_whole_error_body() -> None:
    tap = GeminiTap(sse=False)
    tap.whole(b'{\n  "error": {\n    "code": 503,\n    "message": "overloaded",\n    "status": "UNAVAILABLE"\n  }\n}')
    assert seen(tap) == (None, False, True, None, None)


def test_findings_decode_the_kept_usage(fake_upstream) -> None:
    """What settlement reads in one call is what the attributes say (Gemini decodes lazily)."""
    raw = sse_answer(fake_upstream, USAGE + " [[fake:words 20]]")
    tap = GeminiTap(sse=True)
    for frame in sse_frames(raw):
        tap.feed(frame)
    usage, ended, stop_reason, failed, error = tap.findings()
    assert usage == USAGE_CACHED_PROMPT and (ended, stop_reason, failed, error) == (True, "STOP", False, None)
