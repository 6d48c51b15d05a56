"""Shared helpers for the Gemini front door tests: an SDK client and raw-wire readers."""

from __future__ import annotations

import json
from typing import Any

import httpx
from google import genai
from google.genai import types

from tests.conftest import MASTER_KEY

USER = "Hello there"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
        )
    ]
)


def sdk(gateway, api_version: str | None = None) -> genai.Client:
    """The official SDK pointed at the gateway (google-genai 3 uses ``/v1`` unless told otherwise)."""
    options = types.HttpOptions(base_url=gateway.base_url, api_version=api_version, timeout=30_000)
    return genai.Client(api_key=MASTER_KEY, http_options=options)


def url(gateway, model: str, method: str, query: str = "", version: str = "v1beta") -> str:
    return f"{gateway.base_url}/{version}/models/{model}:{method}" + (f"?{query}" if query else "")


def post(gateway, model: str, method: str, body: Any, query: str = "", **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {"x-goog-api-key": MASTER_KEY})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        url(gateway, model, method, query), content=content, headers={"content-type": "application/json", **headers}
    )


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    """Google's SSE framing: ``data: {json}\\r\\n\\r\\n`` frames, nothing else."""
    assert raw.endswith(b"\r\n\r\n"), raw[-80:]
    frames = raw[: -len(b"\r\n\r\n")].split(b"\r\n\r\n")
    assert all(f.startswith(b"data: ") and b"\n" not in f for f in frames), frames
    return [json.loads(f[len(b"data: ") :]) for f in frames]


def array_chunks(raw: bytes) -> list[dict[str, Any]]:
    """Google's JSON-array framing: ``[{…}`` then ``\\n,\\r\\n{…}`` …, closed by ``\\n]``."""
    assert raw.startswith(b"[{") and raw.endswith(b"\n]"), raw[:20] + raw[-20:]
    elements = json.loads(raw)
    assert raw.count(b"\n,\r\n") == len(elements) - 1
    return elements


def text_of(chunks: list[dict[str, Any]], *, thoughts: bool = False) -> str:
    return "".join(
        p.get("text", "")
        for c in chunks
        for cand in c.get("candidates", [])
        for p in cand.get("content", {}).get("parts", [])
        if bool(p.get("thought")) == thoughts
    )


def parts_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for c in chunks for cand in c.get("candidates", []) for p in cand.get("content", {}).get("parts", [])]
