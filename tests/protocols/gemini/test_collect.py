"""The Gemini stream collector (forced internal streaming): ``streamGenerateContent?alt=sse``
streams shaped as Google writes them (``data: {…}\\r\\n\\r\\n``, each frame a whole
``GenerateContentResponse``), collected into the ``GenerateContentResponse`` the non-streamed
``generateContent`` returns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgate.errors import ErrorKind, UpstreamHTTPError, UpstreamUnavailable
from modelgate.protocols.gemini import ResponseCollector

Chunk = dict[str, Any]
FIXTURES = Path(__file__).parent / "fixtures" / "upstream_streams"
MODEL = "gemini-2.5-flash"
RID = "Yx8uaf3hLp-vz7IPrOmN4Qc"


def sse(chunks: list[Any], end: bytes = b"\r\n") -> bytes:
    """The chunks as Google streams them with ``alt=sse``: one ``data:`` line each."""
    return b"".join(b"data: " + orjson.dumps(c) + end + end for c in chunks)


def collect(raw: bytes, piece: int | None = None) -> Any:
    """``raw`` fed whole (as the relay reads it) or ``piece`` bytes at a time; the answer parsed."""
    collector = ResponseCollector()
    if piece is None:
        collector.feed(raw)
    else:
        for i in range(0, len(raw), piece):
            collector.feed(raw[i : i + piece])
    return orjson.loads(collector.finish())


def usage(prompt: int = 9, out: int | None = None, thoughts: int | None = None) -> dict[str, Any]:
    u: dict[str, Any] = {"promptTokenCount": prompt}
    if out is not None:
        u["candidatesTokenCount"] = out
    u["totalTokenCount"] = prompt + (out or 0) + (thoughts or 0)
    u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts is not None:
        u["thoughtsTokenCount"] = thoughts
    return u


def chunk(parts: list[Chunk], finish: str | None = None, u: dict[str, Any] | None = None, **extra: Any) -> Chunk:
    candidate: Chunk = {"content": {"parts": parts, "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate.update(extra)
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": u or usage(), "modelVersion": MODEL, "responseId": RID}


def whole(parts: list[Chunk], finish: str = "STOP", u: dict[str, Any] | None = None, **extra: Any) -> Chunk:
    """The non-streamed answer: its candidate's fields as ``generateContent`` lays them."""
    candidate: Chunk = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, **extra, "index": 0}
    return {"candidates": [candidate], "usageMetadata": u or usage(), "modelVersion": MODEL, "responseId": RID}


TEXT = [
    chunk([{"text": "The capital"}]),
    chunk([{"text": " of France is"}]),
    chunk([{"text": " Paris."}], "STOP", usage(9, 7)),
]
THOUGHTS = [
    chunk([{"text": "**Locating", "thought": True}]),
    chunk([{"text": " the capital**", "thought": True}]),
    chunk([{"text": "Paris"}]),
    chunk([{"text": "."}]),
    chunk([{"text": "", "thoughtSignature": "CiQB0e2Kb1"}], "STOP", usage(9, 2, 30)),
]
CALLS = [
    chunk([{"text": "Let me check.", "thought": True}]),
    chunk(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CsUBAdHtim9"},
            {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
        ],
        "STOP",
        usage(20, 12, 40),
    ),
]


@pytest.mark.parametrize("piece", [None, 1, 7, 64])
def test_text_pieces_are_joined_with_the_last_usage(piece: int | None) -> None:
    assert collect(sse(TEXT), piece) == whole([{"text": "The capital of France is Paris."}], u=usage(9, 7))


@pytest.mark.parametrize("piece", [None, 3])
def test_thoughts_and_text_stay_apart_and_the_signature_lands_on_the_text(piece: int | None) -> None:
    got = collect(sse(THOUGHTS), piece)
    assert got == whole(
        [
            {"text": "**Locating the capital**", "thought": True},
            {"text": "Paris.", "thoughtSignature": "CiQB0e2Kb1"},
        ],
        u=usage(9, 2, 30),
    )


def test_function_calls_are_kept_in_order_with_their_signature() -> None:
    got = collect(sse(CALLS))
    assert got["candidates"][0]["content"]["parts"] == [
        {"text": "Let me check.", "thought": True},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CsUBAdHtim9"},
        {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
    ]
    assert got["usageMetadata"] == usage(20, 12, 40)


def test_text_after_a_signed_part_or_a_call_starts_a_part_of_its_own() -> None:
    stream = [
        chunk([{"text": "A", "thoughtSignature": "s1"}]),
        chunk([{"text": "B"}]),
        chunk([{"functionCall": {"name": "f", "args": {}}}]),
        chunk([{"text": "C"}, {"text": "D"}]),
        chunk([{"text": ""}], "STOP"),  # an empty last part carrying nothing
    ]
    parts = collect(sse(stream))["candidates"][0]["content"]["parts"]
    assert parts == [
        {"text": "A", "thoughtSignature": "s1"},
        {"text": "B"},
        {"functionCall": {"name": "f", "args": {}}},
        {"text": "CD"},
    ]


def test_candidate_metadata_comes_from_the_last_chunk_carrying_it() -> None:
    ratings = [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}]
    citations = {"citationSources": [{"startIndex": 0, "endIndex": 5, "uri": "https://example.org"}]}
    grounding = {"webSearchQueries": ["capital of france"], "groundingChunks": [{"web": {"uri": "https://x"}}]}
    stream = [
        chunk([{"text": "Par"}], safetyRatings=[{"category": "X", "probability": "LOW"}]),
        chunk([{"text": "is"}], safetyRatings=ratings, citationMetadata=citations),
        chunk([], "STOP", usage(9, 1), groundingMetadata=grounding),
    ]
    got = collect(sse(stream))
    assert got == whole(
        [{"text": "Paris"}],
        u=usage(9, 1),
        safetyRatings=ratings,
        citationMetadata=citations,
        groundingMetadata=grounding,
    )
    assert list(got["candidates"][0]) == [
        "content",
        "finishReason",
        "safetyRatings",
        "citationMetadata",
        "groundingMetadata",
        "index",
    ]


def test_candidates_are_collected_per_index() -> None:
    def two(a: str, b: str, finish: str | None = None) -> Chunk:
        first, second = chunk([{"text": a}], finish)["candidates"][0], chunk([{"text": b}], finish)["candidates"][0]
        second["index"] = 1
        return {"candidates": [second, first], "modelVersion": MODEL}

    got = collect(sse([two("a", "x"), two("b", "y", "STOP")]))
    assert [c["content"]["parts"] for c in got["candidates"]] == [[{"text": "ab"}], [{"text": "xy"}]]
    assert [c["index"] for c in got["candidates"]] == [0, 1]


def test_prompt_feedback_and_a_blocked_prompt() -> None:
    feedback = {"blockReason": "SAFETY", "safetyRatings": [{"category": "X", "probability": "HIGH"}]}
    blocked = {"promptFeedback": feedback, "usageMetadata": usage(8), "modelVersion": MODEL, "responseId": RID}
    assert collect(sse([blocked])) == blocked
    first = {**chunk([{"text": "Hi"}]), "promptFeedback": {"safetyRatings": []}}
    got = collect(sse([first, chunk([{"text": "!"}], "STOP")]))
    assert got["promptFeedback"] == {"safetyRatings": []} and got["candidates"][0]["content"]["parts"] == [
        {"text": "Hi!"}
    ]


def test_unknown_fields_and_snake_case_are_kept_as_they_came() -> None:
    stream = [
        {"candidates": [{"content": {"parts": [{"text": "a"}], "role": "model"}, "index": 0}], "x_new": 1},
        {
            "candidates": [
                {"content": {"parts": [{"text": "b", "thought_signature": "sig"}]}, "finish_reason": "STOP", "index": 0}
            ],
            "x_new": 2,
            "model_version": MODEL,
        },
    ]
    got = collect(sse(stream, b"\n"))
    assert got == {
        "candidates": [
            {
                "content": {"parts": [{"text": "ab", "thought_signature": "sig"}], "role": "model"},
                "finish_reason": "STOP",
                "index": 0,
            }
        ],
        "x_new": 2,
        "model_version": MODEL,
    }


ERROR = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}


@pytest.mark.parametrize("at", [0, 2])
def test_an_error_frame_raises_the_upstreams_error(at: int) -> None:
    raw = sse([*TEXT[:at], ERROR])
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(raw)
    err = caught.value
    assert (err.status, err.kind, err.protocol, err.body) == (503, ErrorKind.OVERLOADED, "gemini", ERROR)
    quota = {"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED", "details": []}}
    with pytest.raises(UpstreamHTTPError) as caught:
        collect(sse([quota]))
    assert (caught.value.status, caught.value.kind) == (429, ErrorKind.RATE_LIMIT)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        sse(TEXT[:2]),  # no finishReason: cut short
        sse(TEXT)[:-30],  # cut inside the last frame
        b"data: not json\r\n\r\n",
        sse([[1, 2]]),
        sse([{"candidates": {"index": 0}}]),
        sse([{"candidates": [{"content": {"parts": ["text"]}, "finishReason": "STOP"}]}]),
    ],
    ids=["empty", "no-finish-reason", "cut-in-a-frame", "not-json", "not-an-object", "bad-candidates", "bad-part"],
)
def test_a_stream_that_did_not_end_or_is_not_the_protocols_is_unavailable(raw: bytes) -> None:
    with pytest.raises(UpstreamUnavailable):
        collect(raw)


def test_a_last_frame_without_its_blank_line_and_comments_are_read() -> None:
    raw = b": keep-alive\n\n" + sse(TEXT, b"\n").rstrip(b"\n")
    assert collect(raw)["candidates"][0]["content"]["parts"] == [{"text": "The capital of France is Paris."}]


@pytest.mark.parametrize(
    "name",
    sorted(p.stem for p in FIXTURES.glob("*.json")),
)
def test_the_codec_fixture_streams(name: str) -> None:
    """Every upstream stream fixture of the codec: collected, or refused as the decoder refuses it."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    frames = fixture.get("frames")
    raw = sse(frames) if isinstance(frames, list) else str(fixture.get("raw", "")).encode()
    ended = isinstance(frames, list) and any(
        "error" not in f
        and (
            any(c.get("finishReason") for c in f.get("candidates", []))
            or (not f.get("candidates") and f.get("promptFeedback", {}).get("blockReason"))
        )
        for f in frames
        if isinstance(f, dict)
    )
    if not ended or any(isinstance(f, dict) and "error" in f for f in frames or []):
        with pytest.raises((UpstreamHTTPError, UpstreamUnavailable)):
            collect(raw)
        return
    got = collect(raw)
    texts = [
        p.get("text", "")
        for f in frames
        for c in f.get("candidates", [])
        for p in c.get("content", {}).get("parts", [])
        if "text" in p
    ]
    collected = [p.get("text", "") for c in got.get("candidates", []) for p in c["content"].get("parts", [])]
    assert "".join(collected) == "".join(texts)


def streamed(response: Chunk) -> list[Chunk]:
    """A whole answer as Gemini streams it: one chunk per piece of a part (text cut in two, a
    signature on its last piece), running usage, the candidate's other fields on the last chunk."""
    candidates = response.get("candidates")
    if not candidates:
        return [response]
    [candidate] = candidates
    content = candidate["content"]
    pieces: list[Chunk] = []
    for part in content.get("parts", []):
        text = part.get("text")
        if isinstance(text, str) and len(text) > 1:
            half = len(text) // 2
            pieces.append({**{k: v for k, v in part.items() if k != "thoughtSignature"}, "text": text[:half]})
            pieces.append({**part, "text": text[half:]})
        else:
            pieces.append(part)
    running = {"promptTokenCount": response["usageMetadata"]["promptTokenCount"]}
    top = {k: v for k, v in response.items() if k not in ("candidates", "usageMetadata")}
    chunks = [
        {"candidates": [{"content": {"parts": [p], "role": "model"}, "index": 0}], "usageMetadata": running, **top}
        for p in pieces
    ]
    last = {k: v for k, v in candidate.items() if k != "content"}
    if chunks:
        chunks[-1]["candidates"][0].update(last)
    else:
        chunks = [{"candidates": [{"content": content, **last}], **top}]
    chunks[-1]["usageMetadata"] = response["usageMetadata"]
    return chunks


@pytest.mark.parametrize("name", sorted(p.stem for p in (FIXTURES.parent / "upstream_responses").glob("*.json")))
@pytest.mark.parametrize("piece", [None, 5])
def test_each_non_streamed_fixture_streamed_collects_back_to_itself(name: str, piece: int | None) -> None:
    response = json.loads((FIXTURES.parent / "upstream_responses" / f"{name}.json").read_text())["response"]
    assert collect(sse(streamed(response)), piece) == response
