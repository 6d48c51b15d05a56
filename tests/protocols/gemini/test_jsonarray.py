"""Cutting a streamed JSON array on element boundaries (``protocols.gemini.jsonarray``)."""

from __future__ import annotations

import json

import pytest

from modelgate.protocols.gemini.jsonarray import ArrayCutter

GOOGLE = b'[{\n  "a": "x]},\\"[{"\n}\n,\r\n{\n  "b": [1, {"c": 2}]\n}\n,\r\n{\n  "d": 3\n}\n]'


@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
def test_bytes_are_unchanged_and_released_on_boundaries(piece: int) -> None:
    cutter = ArrayCutter()
    released = []
    for i in range(0, len(GOOGLE), piece):
        out = cutter.feed(GOOGLE[i : i + piece])
        if out:
            released.append(out)
    released.append(cutter.flush())
    assert b"".join(released) == GOOGLE
    sent = b""
    for out in released[:-1]:
        sent += out
        assert sent.endswith((b"[", b"}", b",")), sent[-10:]


@pytest.mark.parametrize("cut", range(len(GOOGLE)))
def test_an_error_anywhere_leaves_valid_json(cut: int) -> None:
    cutter = ArrayCutter()
    released = cutter.feed(GOOGLE[:cut])
    body = released + cutter.error_tail(b'{"error": {"code": 502}}')
    parsed = json.loads(body)
    assert parsed[-1] == {"error": {"code": 502}}
    assert all("error" not in e for e in parsed[:-1])
