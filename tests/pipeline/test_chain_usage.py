"""The chain in process: usage and the end of an answer, recorded for every protocol,
streamed and not, passthrough and translated (split from test_chain.py)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    GEMINI_HEADERS,
    OPENAI_HEADERS,
    SCRIPTED_USAGE,
    USAGE,
    RequestLogLines,
    Settlements,
    anthropic_body,
    chat_body,
    gemini_body,
    responses_body,
)

# --------------------------------------------------------------------------- usage and the end, every protocol


def generation(door: str, model: str, mode: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path, body, headers) of a generation; ``mode`` is ``whole``, ``sse`` or (Gemini) ``array``."""
    stream = mode != "whole"
    if door == "anthropic":
        return "/v1/messages", anthropic_body(model, stream=stream), ANTHROPIC_HEADERS
    if door == "openai_chat":
        return "/v1/chat/completions", chat_body(model, stream=stream), OPENAI_HEADERS
    if door == "openai_responses":
        return "/v1/responses", responses_body(model, stream=stream), OPENAI_HEADERS
    method = {"whole": "generateContent", "sse": "streamGenerateContent?alt=sse", "array": "streamGenerateContent"}
    return f"/v1beta/models/{model}:{method[mode]}", gemini_body(), GEMINI_HEADERS


USAGE_CASES = [
    # door, model, passthrough, stop reason as recorded (the protocol's own word on the passthrough path)
    ("anthropic", "claude-sonnet-4-6", True, "end_turn"),
    ("anthropic", "qwen-local", False, "end_turn"),
    ("openai_chat", "qwen-local", True, "stop"),
    ("openai_chat", "gpt-4o", True, "stop"),
    ("openai_chat", "claude-sonnet-4-6", False, "end_turn"),
    ("openai_responses", "gpt-4o", True, "completed"),
    ("openai_responses", "gpt-5-mini", True, "completed"),
    ("openai_responses", "claude-sonnet-4-6", False, "end_turn"),
    ("gemini", "gemini-2.5-flash", True, "STOP"),
    ("gemini", "claude-sonnet-4-6", False, "end_turn"),
]


@pytest.mark.parametrize(
    ("door", "model", "passthrough", "stop", "mode"),
    [
        (*case, mode)
        for case in USAGE_CASES
        for mode in (("whole", "sse", "array") if case[0] == "gemini" else ("whole", "sse"))
    ],
)
async def test_usage_and_the_end_are_recorded(
    ac: httpx.AsyncClient,
    settled: Settlements,
    request_log: RequestLogLines,
    fake,
    door: str,
    model: str,
    passthrough: bool,
    stop: str,
    mode: str,
) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    path, body, headers = generation(door, model, mode)
    r = await ac.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert settled == [(settled.only, False)]
    ctx = settled.only
    assert ctx.attempt is not None and ctx.attempt.passthrough is passthrough
    assert (ctx.usage, ctx.ended, ctx.stop_reason, ctx.error) == (SCRIPTED_USAGE, True, stop, None)
    assert (ctx.tap is not None) is passthrough
    assert (ctx.first_byte is not None) is (mode != "whole")
    line = request_log.of(ctx.request_id)
    assert (line["input_tokens"], line["output_tokens"], line["ended"], line["stream"]) == (
        37,
        5,
        True,
        mode != "whole",
    )
    assert line["path"] == ("passthrough" if passthrough else "translated")


async def test_a_chat_stream_without_stream_options_hides_the_usage_it_asked_for(
    ac: httpx.AsyncClient, settled: Settlements, fake, upstream
) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    r = await ac.post("/v1/chat/completions", json=chat_body("qwen-local", stream=True), headers=OPENAI_HEADERS)
    assert r.status_code == 200
    sent = fake.last_request("/v1/chat/completions")
    assert sent["body"]["stream_options"] == {"include_usage": True}  # the gateway asked
    ctx = settled.only
    assert (ctx.usage, ctx.ended) == (SCRIPTED_USAGE, True)  # and learned it
    assert b'"usage"' not in r.content  # neither the usage chunk nor "usage":null reached the client

    # What the upstream itself sends a client that did not ask (same ids: the fake starts over).
    fake.reset()
    fake.script(text="one two three four five", usage=USAGE)
    async with httpx.AsyncClient(timeout=10) as direct:
        d = await direct.post(
            upstream.openai_base_url + "/chat/completions",
            json=chat_body("qwen2.5:0.5b", stream=True),
            headers={"authorization": f"Bearer {UPSTREAM_KEY}"},
        )
    assert d.status_code == 200 and d.content.endswith(b"data: [DONE]\n\n")
    assert r.content == d.content


async def test_a_chat_stream_that_asked_for_usage_gets_it(ac: httpx.AsyncClient, settled: Settlements, fake) -> None:
    fake.script(text="one two three four five", usage=USAGE)
    body = chat_body("qwen-local", stream=True, stream_options={"include_usage": True})
    r = await ac.post("/v1/chat/completions", json=body, headers=OPENAI_HEADERS)
    frames = [orjson.loads(f[6:]) for f in r.text.split("\n\n") if f.startswith("data: {")]
    assert frames[-1]["choices"] == [] and frames[-1]["usage"]["prompt_tokens"] == 37
    assert all("usage" in f for f in frames)  # "usage": null on the others, as the client asked
    assert settled.only.usage == SCRIPTED_USAGE
