"""Gemini front door → a Gemini upstream: the client's bytes go up untouched, the upstream's come
back untouched; only the key, the model in the URL and the ``key`` query parameter change."""

from __future__ import annotations

import httpx
import pytest
from google.genai import errors, types

from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX
from tests.conftest import MASTER_KEY, UPSTREAM_KEY
from tests.frontdoors.gemini_helpers import USER, WEATHER, array_chunks, post, sdk, sse_chunks, text_of

BODY = {"contents": [{"role": "user", "parts": [{"text": USER}]}]}


def test_text_through_the_sdk(gateway, fake) -> None:
    client = sdk(gateway)
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=USER)
    assert resp.text == ECHO_PREFIX + USER and resp.model_version == "gemini-2.5-flash"
    sent = fake.last_request()
    assert sent["path"] == "/v1/models/gemini-2.5-flash:generateContent"  # the client's API version is kept
    assert sent["headers"]["x-goog-api-key"] == UPSTREAM_KEY
    assert MASTER_KEY not in str(sent["headers"])
    assert sent["headers"]["user-agent"].startswith("google-genai-sdk/")  # client identity passes
    streamed = client.models.generate_content_stream(model="gemini-2.5-flash", contents=USER)
    assert "".join(c.text or "" for c in streamed) == resp.text
    assert fake.last_request()["query"] == "alt=sse"


def test_bytes_are_untouched_both_ways(gateway, fake) -> None:
    raw = b'{"contents": [{"parts": [{"text": "caf\\u00e9 <b>"}]}],  "generation_config": {"temperature": 0.25}}'
    r = post(gateway, "gemini-2.5-flash", "generateContent", raw)
    assert r.status_code == 200
    assert fake.last_request()["raw_body"].encode() == raw
    fake.reset()
    direct = httpx.post(
        fake.base_url + "/v1beta/models/gemini-2.5-flash:generateContent",
        content=raw,
        headers={"x-goog-api-key": UPSTREAM_KEY, "content-type": "application/json"},
    )
    assert r.content == direct.content  # pretty-printed, \u003c escapes and all


def test_alias_rewrites_the_url_not_the_body(gateway, fake) -> None:
    raw = b'{"contents":[{"parts":[{"text":"hi"}]}]}'
    r = post(gateway, "flash", "streamGenerateContent", raw, query="alt=sse&key=" + MASTER_KEY, headers={})
    assert r.status_code == 200, r.text
    sent = fake.last_request()
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent["query"] == "alt=sse"  # the client's key never goes upstream
    assert sent["raw_body"].encode() == raw
    assert sse_chunks(r.content)[0]["modelVersion"] == "gemini-2.5-flash"


def test_sse_stream_is_byte_exact(gateway, fake) -> None:
    r = post(gateway, "gemini-2.5-flash", "streamGenerateContent", BODY, query="alt=sse")
    fake.reset()
    direct = httpx.post(
        fake.base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json=BODY,
        headers={"x-goog-api-key": UPSTREAM_KEY},
    )
    assert r.content == direct.content and b"\r\n\r\n" in r.content
    assert r.headers["content-type"].startswith("text/event-stream")


def test_json_array_stream_is_byte_exact(gateway, fake) -> None:
    r = post(gateway, "gemini-2.5-flash", "streamGenerateContent", BODY)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=UTF-8"
    assert text_of(array_chunks(r.content)) == ECHO_PREFIX + USER
    fake.reset()
    direct = httpx.post(
        fake.base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json=BODY,
        headers={"x-goog-api-key": UPSTREAM_KEY},
    )
    assert r.content == direct.content


def test_function_call_signature_round_trip(gateway, fake) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    client = sdk(gateway)
    config = types.GenerateContentConfig(tools=[WEATHER])
    first = client.models.generate_content(model="gemini-2.5-flash", contents="Weather?", config=config)
    part = first.candidates[0].content.parts[0]
    assert part.function_call.name == "get_weather" and part.thought_signature
    answer = types.Part(function_response=types.FunctionResponse(name="get_weather", response={"output": "sunny"}))
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        first.candidates[0].content,
        types.Content(role="user", parts=[answer]),
    ]
    second = client.models.generate_content(model="gemini-2.5-flash", contents=contents, config=config)
    assert second.text == TOOL_RESULT_PREFIX + "sunny"  # the fake checked the signature it issued
    sent = fake.last_request()["body"]["contents"][1]["parts"][0]
    assert sent["functionCall"] == {"args": {"city": "Paris"}, "name": "get_weather"}


def test_gemini_3_wants_function_call_signatures(gateway, fake) -> None:
    """Google's rule for Gemini 3: the current turn's function calls must come back signed;
    ``skip_thought_signature_validator`` (what Gemini CLI sends) is accepted."""
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    answer = {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}
    contents = [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [answer]},
    ]
    r = post(gateway, "gemini-3-pro-preview", "generateContent", {"contents": contents})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    contents[1]["parts"][0] = {**call, "thoughtSignature": "skip_thought_signature_validator"}
    assert post(gateway, "gemini-3-pro-preview", "generateContent", {"contents": contents}).status_code == 200
    contents[1]["parts"][0] = {**call, "thoughtSignature": "bm90IGEgc2lnbmF0dXJl"}
    r = post(gateway, "gemini-3-pro-preview", "generateContent", {"contents": contents})
    assert (r.status_code, r.json()["error"]["message"]) == (400, "Corrupted thought signature.")


def test_thoughts_pass_through(gateway, fake) -> None:
    fake.script(thinking="pondering")
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    client = sdk(gateway)
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=USER, config=config)
    thought = resp.candidates[0].content.parts[0]
    assert (thought.thought, thought.text) == (True, "pondering")
    assert resp.usage_metadata.thoughts_token_count == 1


def test_count_tokens_is_forwarded(gateway, fake) -> None:
    client = sdk(gateway)
    result = client.models.count_tokens(model="flash", contents=USER)
    sent = fake.last_request()
    assert sent["path"] == "/v1/models/gemini-2.5-flash:countTokens"
    from modelgate.testing.fake_gemini import input_tokens

    assert result.total_tokens == input_tokens(sent["body"])


def test_a_model_named_in_the_body_follows_the_alias(gateway, fake) -> None:
    inner = {"model": "models/flash", "contents": BODY["contents"]}
    r = post(gateway, "flash", "countTokens", {"generateContentRequest": inner})
    assert r.status_code == 200, r.text
    assert fake.last_request()["body"]["generateContentRequest"]["model"] == "models/gemini-2.5-flash"
    raw = b'{"model":"models/gemini-2.5-flash","contents":[{"parts":[{"text":"x"}]}]}'
    post(gateway, "gemini-2.5-flash", "countTokens", raw)
    assert fake.last_request()["raw_body"].encode() == raw  # no alias: untouched


def test_upstream_error_body_passes_through(gateway, fake) -> None:
    fake.script(error={"status": 429, "retry_after": 41})
    r = post(gateway, "gemini-2.5-flash", "generateContent", BODY)
    assert r.status_code == 429
    fake.reset()
    fake.script(error={"status": 429, "retry_after": 41})
    direct = httpx.post(
        fake.base_url + "/v1beta/models/gemini-2.5-flash:generateContent",
        json=BODY,
        headers={"x-goog-api-key": UPSTREAM_KEY},
    )
    assert r.json() == direct.json()
    assert r.json()["error"]["details"][-1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "41s",
    }
    client = sdk(gateway)
    fake.script(error={"status": 503})
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model="gemini-2.5-flash", contents=USER)
    assert (info.value.code, info.value.status) == (503, "UNAVAILABLE")


def test_upstream_key_quoted_in_an_error_is_redacted(gateway, fake) -> None:
    fake.script(error={"status": 400, "message": "bad key {api_key}"})
    r = post(gateway, "gemini-2.5-flash", "generateContent", BODY)
    assert r.status_code == 400 and UPSTREAM_KEY not in r.text and "[redacted]" in r.text


@pytest.mark.parametrize("sse", [True, False])
def test_broken_stream_ends_with_an_error_chunk(gateway, fake, sse: bool) -> None:
    fake.script(break_after=3)
    r = post(gateway, "gemini-2.5-flash", "streamGenerateContent", BODY, query="alt=sse" if sse else "")
    assert r.status_code == 200
    chunks = sse_chunks(r.content) if sse else httpx.Response(200, content=r.content).json()
    *content, last = chunks
    assert len(content) == 3 and all("candidates" in c for c in content)
    assert last["error"]["code"] == 502 and last["error"]["status"] == "UNAVAILABLE"
