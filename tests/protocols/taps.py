"""What the answer tap tests share: real answers from the fake upstream (whole, or as far as
they got when the fake broke the connection), cut into chunks the ways a passthrough may cut
them, fed to a tap, and the tap's findings in one comparable tuple.

Scripted usage makes every count predictable: the fake reports these overrides, each
protocol in its own shape, and each tap must read back exactly the IR usage its codec would.
"""

from __future__ import annotations

import random
import re
from typing import Any

import httpx

from modelgate import ir
from modelgate.protocols.tap import AnswerTap

#: The fake's usage overrides, as a prompt directive.
USAGE = (
    '[[fake:usage {"input_tokens": 120, "output_tokens": 30, "cache_read_input_tokens": 40, '
    '"cache_creation_input_tokens": 7, "reasoning_tokens": 5}]]'
)
#: ``USAGE`` as OpenAI Chat and Gemini report it, decoded: prompt 167 = 120 + 40 + 7 of which 40
#: cached (neither reports cache writes apart, so they count as input); 5 of 30 output reasoning.
USAGE_CACHED_PROMPT = ir.Usage(input_tokens=127, output_tokens=30, cache_read_tokens=40, reasoning_tokens=5)

_FRAME_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")


def fetch(url: str, headers: dict[str, str], *, json: Any = None, content: bytes | None = None) -> bytes:
    """POST and read the whole body, or as much of it as came before the connection broke."""
    got = b""
    with httpx.stream("POST", url, json=json, content=content, headers=headers, timeout=10) as resp:
        assert resp.status_code == 200, resp.read()
        try:
            for chunk in resp.iter_raw():
                got += chunk
        except httpx.RemoteProtocolError:
            pass  # a ``[[fake:break N]]``: the body stops after N events
    return got


def sse_frames(raw: bytes) -> list[bytes]:
    """The frames of an SSE body, each with its blank line (LF or CRLF), joining back to ``raw``."""
    frames = [f for f in _FRAME_END.split(raw) if f]
    assert b"".join(frames) == raw
    return frames


def crlf(raw: bytes) -> bytes:
    """An LF-framed SSE body with CRLF line ends instead."""
    assert b"\r" not in raw
    return raw.replace(b"\n", b"\r\n")


def groupings(frames: list[bytes], seed: int = 7) -> dict[str, list[bytes]]:
    """The same frames cut into chunks on frame boundaries in several ways."""
    rng = random.Random(seed)
    grouped: list[bytes] = []
    i = 0
    while i < len(frames):
        n = rng.randint(1, 5)
        grouped.append(b"".join(frames[i : i + n]))
        i += n
    return {
        "one by one": list(frames),
        "all at once": [b"".join(frames)],
        "pairs": [b"".join(frames[i : i + 2]) for i in range(0, len(frames), 2)],
        "random groups": grouped,
    }


def feed(tap: AnswerTap, chunks: list[bytes]) -> bytes:
    """Every chunk through ``tap``; what it forwards, joined."""
    return b"".join(tap.feed(chunk) for chunk in chunks)


def seen(tap: AnswerTap) -> tuple[ir.Usage | None, bool, bool, str | None, str | None]:
    """(usage, ended, failed, stop_reason, model)."""
    return tap.usage, tap.ended, tap.failed, tap.stop_reason, tap.model


def same_everywhere(new_tap: Any, frames: list[bytes]) -> tuple[ir.Usage | None, bool, bool, str | None, str | None]:
    """Feed ``frames`` grouped every way (each to a fresh tap from ``new_tap()``): the findings
    must not depend on the cut, and every chunk must be forwarded as it is (the same object)."""
    results = {}
    for name, chunks in groupings(frames).items():
        tap = new_tap()
        for chunk in chunks:
            assert tap.feed(chunk) is chunk, name
        results[name] = seen(tap)
        if not tap.rewrites:  # handed only the ends, as a relay does: the same findings
            ends = new_tap()
            last = (None, None, None, *chunks[1:])[-3:]
            ends.ends(chunks[0] if chunks else None, (last[0], last[1], last[2]))
            results[name + ", ends only"] = seen(ends)
    first = next(iter(results.values()))
    assert all(r == first for r in results.values()), results
    return first
