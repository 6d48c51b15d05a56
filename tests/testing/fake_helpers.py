"""Shared helpers for the fake upstream tests."""

from __future__ import annotations

from typing import Any

import httpx

from modelgate.protocols.sse import SSEFrame, SSEParser

ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer test-key"}


async def sse_frames(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> list[SSEFrame]:
    """POST and parse the whole event stream (raises if the connection breaks)."""
    parser = SSEParser()
    frames: list[SSEFrame] = []
    async with client.stream("POST", url, json=body, headers=headers) as resp:
        assert resp.status_code == 200, await resp.aread()
        async for chunk in resp.aiter_raw():
            frames.extend(parser.feed(chunk))
    return frames + parser.flush()
