"""The Anthropic codec tests' documented streams (``fixtures/*.sse``), as SSE frames."""

from __future__ import annotations

from pathlib import Path

from modelgate.protocols.sse import SSEFrame, SSEParser

FIXTURES = Path(__file__).parent / "fixtures"


def frames(name: str) -> list[SSEFrame]:
    parser = SSEParser()
    return parser.feed((FIXTURES / name).read_bytes()) + parser.flush()
