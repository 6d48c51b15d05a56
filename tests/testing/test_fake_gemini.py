"""The fake upstream's Gemini side, over real HTTP: the google-genai SDK and raw bytes."""

from __future__ import annotations

import json

import httpx
import pytest
from google import genai
from google.genai import errors, types

from modelgate.testing import run_fake_upstream
from modelgate.testing.fake_gemini import MODELS, input_tokens
from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX, sign

MODEL = "gemini-2.5-flash"
BODY = {"contents": [{"role": "user", "parts": [{"text": "Hi there"}]}]}
KEY = {"x-goog-api-key": "test-key"}


def client(fake) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.base_url))


def url(fake, method: str, model: str = MODEL, query: str = "") -> str:
    return f"{fake.base_url}/v1beta/models/{model}:{method}" + (f"?{query}" if query else "")


def post(fake, method: str, body, model: str = MODEL, query: str = "", headers=KEY) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url(fake, method, model, query), content=content, headers=headers)


def sse(raw: bytes) -> list[dict]:
    assert raw.endswith(b"\r\n\r\n")
    return [json.loads(f.removeprefix(b"data: ")) for f in raw[:-4].split(b"\r\n\r\n")]


def test_non_streaming_with_the_sdk(fake_upstream) -> None:
    c = client(fake_upstream)
    resp = c.models.generate_content(model=MODEL, contents="Hi there", config={"system_instruction": "sys"})
    assert resp.text == ECHO_PREFIX + "Hi there" and resp.model_version == MODEL
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    sent = fake_upstream.last_request()
    assert sent["protocol"] == "gemini" and sent["path"] == f"/v1/models/{MODEL}:generateContent"
    u = resp.usage_metadata
    assert u.prompt_token_count == input_tokens(sent["body"])
    assert u.candidates_token_count == len((ECHO_PREFIX + "Hi there").split())
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count


def test_wire_format_is_googles(fake_upstream) -> None:
    r = post(fake_upstream, "generateContent", {"contents": [{"parts": [{"text": "a <b> & é"}]}]})
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.content.startswith(b'{\n  "candidates": [\n')  # pretty-printed
    assert b"\\u003cb\\u003e" in r.content and "é".encode() in r.content
    body = r.json()
    assert list(body) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert list(body["candidates"][0]) == ["content", "finishReason", "index"]


def test_sse_stream(fake_upstream) -> None:
    r = post(fake_upstream, "streamGenerateContent", BODY, query="alt=sse")
    assert r.headers["content-type"] == "text/event-stream"
    assert b'": "' in r.content and b"\n\n" not in r.content.replace(b"\r\n\r\n", b"")
    chunks = sse(r.content)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == ECHO_PREFIX + "Hi there"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP" and "candidatesTokenCount" in last["usageMetadata"]
    assert len({c["responseId"] for c in chunks}) == 1


def test_json_array_stream(fake_upstream) -> None:
    r = post(fake_upstream, "streamGenerateContent", BODY)
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    raw = r.content
    assert raw.startswith(b"[{\n") and raw.endswith(b"}\n]") and b"}\n,\r\n{\n" in raw
    chunks = json.loads(raw)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_sdk_stream(fake_upstream) -> None:
    c = client(fake_upstream)
    text = "".join(ch.text or "" for ch in c.models.generate_content_stream(model=MODEL, contents="Hi there"))
    assert text == ECHO_PREFIX + "Hi there"
    assert fake_upstream.last_request()["query"] == "alt=sse"


def test_thinking_shows_only_with_include_thoughts(fake_upstream) -> None:
    c = client(fake_upstream)
    hidden = c.models.generate_content(model=MODEL, contents="Hi [[fake:thinking deep thought]]")
    assert all(not p.thought for p in hidden.candidates[0].content.parts)
    assert hidden.usage_metadata.thoughts_token_count == 2
    assert hidden.candidates[0].content.parts[0].thought_signature  # a text part signed after thinking
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    shown = c.models.generate_content(model=MODEL, contents="Hi [[fake:thinking deep thought]]", config=config)
    first = shown.candidates[0].content.parts[0]
    assert (first.thought, first.text) == (True, "deep thought")
    auto = c.models.generate_content(model=MODEL, contents="Hi", config=config)
    assert auto.candidates[0].content.parts[0].thought  # includeThoughts alone makes the fake think


def test_streamed_signature_comes_on_a_last_empty_part(fake_upstream) -> None:
    chunks = sse(
        post(
            fake_upstream,
            "streamGenerateContent",
            {"contents": [{"parts": [{"text": "x [[fake:thinking t]]"}]}]},
            query="alt=sse",
        ).content
    )
    last = chunks[-1]["candidates"][0]
    assert last["content"]["parts"] == [{"text": "", "thoughtSignature": sign("gemini-text:" + ECHO_PREFIX + "x")}]
    assert last["finishReason"] == "STOP"


def test_function_calls(fake_upstream) -> None:
    fake_upstream.script(tool_calls=[{"name": "a", "input": {"x": 1}}, {"name": "b", "input": {}}])
    r = post(fake_upstream, "generateContent", BODY).json()
    parts = r["candidates"][0]["content"]["parts"]
    assert parts == [
        {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": sign("gemini-call:a")},
        {"functionCall": {"name": "b", "args": {}}},
    ]
    assert r["candidates"][0]["finishReason"] == "STOP"


def test_function_response_round_trip(fake_upstream) -> None:
    contents = [
        {"role": "user", "parts": [{"text": "go"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "a", "args": {}}, "thoughtSignature": sign("gemini-call:a")}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {"output": "done"}}}]},
    ]
    r = post(fake_upstream, "generateContent", {"contents": contents})
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == TOOL_RESULT_PREFIX + "done"


@pytest.mark.parametrize(
    ("model", "signature", "status", "message"),
    [
        ("gemini-2.5-flash", None, 200, None),
        ("gemini-3-pro-preview", None, 400, "Function call is missing a thought_signature in functionCall parts."),
        ("gemini-3-pro-preview", "skip_thought_signature_validator", 200, None),
        ("gemini-3-pro-preview", "url-safe", 200, None),
        ("gemini-2.5-flash", "c29tZXRoaW5nIGVsc2U=", 400, "Corrupted thought signature."),
    ],
)
def test_signature_rules(fake_upstream, model: str, signature: str | None, status: int, message: str | None) -> None:
    call: dict = {"functionCall": {"name": "a", "args": {}}}
    if signature == "url-safe":  # google-genai re-encodes signatures url-safe: still the same bytes
        signature = sign("gemini-call:a").replace("+", "-").replace("/", "_")
    if signature:
        call["thoughtSignature"] = signature
    contents = [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [call]},
        {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {"output": "done"}}}]},
    ]
    r = post(fake_upstream, "generateContent", {"contents": contents}, model=model)
    assert r.status_code == status, r.text
    if message:
        assert r.json()["error"]["message"].startswith(message)


def test_earlier_turns_are_not_checked_on_gemini_3(fake_upstream) -> None:
    contents = [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]},
        {"role": "model", "parts": [{"text": "ok"}]},
        {"role": "user", "parts": [{"text": "next question"}]},
    ]
    assert (
        post(fake_upstream, "generateContent", {"contents": contents}, model="gemini-3-pro-preview").status_code == 200
    )


def test_signatures_not_verified_when_configured_off(fake_upstream) -> None:
    fake_upstream.configure(verify_signatures=False)
    contents = [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}, "thoughtSignature": "AAAA"}]},
    ]
    assert post(fake_upstream, "generateContent", {"contents": contents}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "query", "status", "name"),
    [
        ({}, "", 403, "PERMISSION_DENIED"),
        ({"authorization": "Bearer some-token"}, "", 401, "UNAUTHENTICATED"),
        ({}, "key=right", 200, None),
        ({"x-goog-api-key": "wrong"}, "", 400, "INVALID_ARGUMENT"),
    ],
)
def test_auth(headers: dict, query: str, status: int, name: str | None) -> None:
    with run_fake_upstream(in_thread=True, require_key="right") as fake:
        r = post(fake, "generateContent", BODY, query=query, headers=headers)
    assert r.status_code == status
    if name:
        assert r.json()["error"]["status"] == name
    if status == 400:
        assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "Invalid JSON payload received. Unexpected token."),
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({**BODY, "stream": True}, 'Invalid JSON payload received. Unknown name "stream": Cannot find field.'),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
    ],
)
def test_validation(fake_upstream, body, message: str) -> None:
    r = post(fake_upstream, "generateContent", body)
    assert (r.status_code, r.json()["error"]["message"]) == (400, message)


def test_snake_case_is_accepted(fake_upstream) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}], "generation_config": {"max_output_tokens": 3}}
    r = post(fake_upstream, "generateContent", body).json()
    assert r["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_scripted_errors(fake_upstream) -> None:
    c = client(fake_upstream)
    fake_upstream.script(error={"status": 429, "retry_after": 7})
    with pytest.raises(errors.ClientError) as info:
        c.models.generate_content(model=MODEL, contents="x")
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in info.value.details["error"][
        "details"
    ]
    fake_upstream.script(error={"status": 503})
    with pytest.raises(errors.ServerError) as info:
        c.models.generate_content(model=MODEL, contents="x")
    assert info.value.message == "The model is overloaded. Please try again later."


@pytest.mark.parametrize("alt", ["alt=sse", ""])
def test_stream_error_after_events(fake_upstream, alt: str) -> None:
    fake_upstream.script(error={"status": 500, "after": 2})
    r = post(fake_upstream, "streamGenerateContent", BODY, query=alt)
    chunks = sse(r.content) if alt else json.loads(r.content)
    assert len(chunks) == 3 and chunks[-1]["error"]["status"] == "INTERNAL"


def test_break_leaves_the_body_incomplete(fake_upstream) -> None:
    fake_upstream.script(break_after=2)
    with pytest.raises(httpx.HTTPError):
        post(fake_upstream, "streamGenerateContent", BODY, query="alt=sse")
    assert fake_upstream.last_request()["broken"]


def test_count_tokens(fake_upstream) -> None:
    c = client(fake_upstream)
    result = c.models.count_tokens(model=MODEL, contents="Hello")
    assert result.total_tokens == input_tokens(fake_upstream.last_request()["body"])
    inner = {"model": f"models/{MODEL}", **BODY, "systemInstruction": {"parts": [{"text": "s"}]}}
    r = post(fake_upstream, "countTokens", {"generateContentRequest": inner}).json()
    assert r["totalTokens"] == input_tokens(inner)
    fake_upstream.script(usage={"input_tokens": 99}, match={"protocol": "gemini", "endpoint": "count_tokens"})
    assert post(fake_upstream, "countTokens", BODY).json()["totalTokens"] == 99


def test_models(fake_upstream) -> None:
    c = client(fake_upstream)
    assert [m.name for m in c.models.list()] == [f"models/{m[0]}" for m in MODELS]
    assert c.models.get(model=MODEL).display_name == "Gemini 2.5 Flash"
    r = httpx.get(fake_upstream.base_url + "/v1beta/models", params={"pageSize": 2}, headers=KEY).json()
    assert len(r["models"]) == 2 and r["nextPageToken"] == "2"
    missing = httpx.get(fake_upstream.base_url + "/v1beta/models/nope", headers=KEY)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_scripts_match_the_gemini_protocol(fake_upstream) -> None:
    fake_upstream.script(text="for anthropic", match={"protocol": "anthropic"})
    fake_upstream.script(text="for gemini", match={"protocol": "gemini", "endpoint": "generateContent"})
    r = post(fake_upstream, "generateContent", BODY).json()
    assert r["candidates"][0]["content"]["parts"][0]["text"] == "for gemini"
