"""Gemini front door → Anthropic and OpenAI-compatible upstreams: translation through the IR.

Driven through the official google-genai SDK where it can see the difference, and raw HTTP
for the wire itself (framing, key order, the JSON-array stream).
"""

from __future__ import annotations

import base64

import pytest
from google.genai import types

from modelgate.accounting.tokens import estimate_request_tokens
from modelgate.protocols import gemini as codec
from modelgate.testing import fake_anthropic
from modelgate.testing.reply import AUTO_THINKING, ECHO_PREFIX, TOOL_RESULT_PREFIX, sign
from tests.conftest import UPSTREAM_KEY
from tests.frontdoors.gemini_helpers import USER, WEATHER, array_chunks, parts_of, post, sdk, sse_chunks, text_of

BODY = {"contents": [{"role": "user", "parts": [{"text": USER}]}]}


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_text_non_streaming(gateway, fake, model: str) -> None:
    config = types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.5, max_output_tokens=300)
    client = sdk(gateway)
    resp = client.models.generate_content(model=model, contents=USER, config=config)
    assert resp.text == ECHO_PREFIX + USER
    assert resp.model_version == model
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    u = resp.usage_metadata
    assert u.candidates_token_count == len((ECHO_PREFIX + USER).split())
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count
    if model.startswith("claude"):
        sent = fake.last_request("/v1/messages")
        assert sent["headers"]["x-api-key"] == UPSTREAM_KEY
        body = sent["body"]
        assert body["system"] == [{"type": "text", "text": "Be brief."}]
        assert (body["max_tokens"], body["temperature"]) == (300, 0.5)
        assert u.prompt_token_count == fake_anthropic.input_tokens(body)
    else:
        body = fake.last_request("/v1/chat/completions")["body"]
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_raw_response_shape(gateway, fake) -> None:
    r = post(gateway, "claude-sonnet-4-6", "generateContent", BODY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["candidates", "usageMetadata", "modelVersion", "responseId"]
    assert body["candidates"] == [
        {"content": {"parts": [{"text": ECHO_PREFIX + USER}], "role": "model"}, "finishReason": "STOP", "index": 0}
    ]
    assert list(body["usageMetadata"]) == ["promptTokenCount", "candidatesTokenCount", "totalTokenCount"]
    assert body["modelVersion"] == "claude-sonnet-4-6" and body["responseId"].startswith("msg_")


def test_default_max_tokens_and_model_cap(gateway, fake) -> None:
    post(gateway, "claude-sonnet-4-6", "generateContent", BODY)
    assert fake.last_request("/v1/messages")["body"]["max_tokens"] == codec.DEFAULT_MAX_TOKENS
    post(gateway, "qwen-local", "generateContent", BODY)
    assert fake.last_request("/v1/chat/completions")["body"]["max_tokens"] == 4096  # the model's configured cap


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_sse_stream_framing_and_last_chunk(gateway, fake, model: str) -> None:
    r = post(gateway, model, "streamGenerateContent", BODY, query="alt=sse")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(r.content)
    assert len(chunks) > 3
    assert text_of(chunks) == ECHO_PREFIX + USER
    assert all(c["modelVersion"] == model and c["responseId"] == chunks[0]["responseId"] for c in chunks)
    *head, last = chunks
    assert all("finishReason" not in c["candidates"][0] for c in head)
    assert last["candidates"][0]["finishReason"] == "STOP" and last["candidates"][0]["content"]["parts"][0]["text"]
    assert last["usageMetadata"]["candidatesTokenCount"] == len((ECHO_PREFIX + USER).split())


def test_sdk_stream_matches_non_stream(gateway, fake) -> None:
    client = sdk(gateway)
    chunks = list(client.models.generate_content_stream(model="claude-sonnet-4-6", contents=USER))
    whole = client.models.generate_content(model="claude-sonnet-4-6", contents=USER)
    assert "".join(c.text or "" for c in chunks) == whole.text
    assert chunks[-1].usage_metadata.total_token_count == whole.usage_metadata.total_token_count
    assert fake.requests("/v1/messages")[0]["body"]["stream"] is True


def test_json_array_stream_without_alt_sse(gateway, fake) -> None:
    r = post(gateway, "claude-sonnet-4-6", "streamGenerateContent", BODY)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=UTF-8"
    chunks = array_chunks(r.content)
    assert text_of(chunks) == ECHO_PREFIX + USER
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_function_calling_round_trip(gateway, fake, model: str) -> None:
    calls = [{"name": "get_weather", "input": {"city": "Paris"}}, {"name": "get_weather", "input": {"city": "Tokyo"}}]
    fake.script(tool_calls=calls)
    client = sdk(gateway)
    config = types.GenerateContentConfig(tools=[WEATHER])
    first = client.models.generate_content(model=model, contents="Weather?", config=config)
    if model == "qwen-local":
        return _openai_round_trip(client, first, fake, config)
    sent_tools = fake.last_request("/v1/messages")["body"]["tools"]
    assert sent_tools[0]["input_schema"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert first.candidates[0].finish_reason == types.FinishReason.STOP  # Gemini says STOP after calls
    fcs = first.function_calls
    assert [f.args for f in fcs] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert all(f.id.startswith("toolu_") and f.name == "get_weather" for f in fcs)
    answers = [
        types.Part(
            function_response=types.FunctionResponse(
                id=f.id, name=f.name, response={"output": f"sunny in {f.args['city']}"}
            )
        )
        for f in fcs
    ]
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        first.candidates[0].content,
        types.Content(role="user", parts=answers),
    ]
    second = client.models.generate_content(model="claude-sonnet-4-6", contents=contents, config=config)
    assert second.text.startswith(TOOL_RESULT_PREFIX)
    messages = fake.last_request("/v1/messages")["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["id"] for b in messages[1]["content"]] == [f.id for f in fcs]
    results = messages[2]["content"]
    assert [(b["type"], b["tool_use_id"]) for b in results] == [("tool_result", f.id) for f in fcs]
    assert results[0]["content"] == [{"type": "text", "text": '{"output":"sunny in Paris"}'}]


def _openai_round_trip(client, first, fake, config) -> None:
    fn = fake.last_request("/v1/chat/completions")["body"]["tools"][0]["function"]
    assert fn["parameters"] == {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fcs = first.function_calls
    assert [f.args["city"] for f in fcs] == ["Paris", "Tokyo"] and all(f.id.startswith("call_") for f in fcs)
    answers = [
        types.Part(function_response=types.FunctionResponse(id=f.id, name=f.name, response={"output": "ok"}))
        for f in fcs
    ]
    contents = ["Weather?", first.candidates[0].content, types.Content(role="user", parts=answers)]
    second = client.models.generate_content(model="qwen-local", contents=contents, config=config)
    assert second.text.startswith(TOOL_RESULT_PREFIX)
    messages = fake.last_request("/v1/chat/completions")["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in messages[2:]] == [f.id for f in fcs]


def test_function_responses_without_ids_match_by_name_and_order(gateway, fake) -> None:
    """As Gemini CLI and REST clients send them: calls without ids, one response content each."""
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
                ],
            },
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "rain"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"error": "down"}}}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": {"type": "OBJECT"}}]}],
    }
    r = post(gateway, "claude-sonnet-4-6", "generateContent", body)
    assert r.status_code == 200, r.text
    messages = fake.last_request("/v1/messages")["body"]["messages"]
    ids = [b["id"] for b in messages[1]["content"]]
    assert ids == ["gmcall_1_0", "gmcall_1_1"]
    assert [(b["tool_use_id"], b.get("is_error", False)) for b in messages[2]["content"]] == [
        ("gmcall_1_0", False),
        ("gmcall_1_1", True),
    ]
    assert fake.last_request("/v1/messages")["body"]["tools"][0]["input_schema"] == {"type": "object"}
    assert "gmcall" not in r.text  # answers never show the made-up ids


def test_thinking_travels_in_the_signature_of_the_call(gateway, fake) -> None:
    """Anthropic refuses a tool-use continuation whose thinking block is missing: the gateway packs it
    into the function call's thoughtSignature, which Gemini clients send back as they got it."""
    fake.script(thinking="I should look it up", tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    client = sdk(gateway)
    config = types.GenerateContentConfig(
        tools=[WEATHER], thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
    )
    first = client.models.generate_content(model="claude-sonnet-4-6", contents="Weather?", config=config)
    assert fake.last_request("/v1/messages")["body"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    parts = first.candidates[0].content.parts
    assert (parts[0].thought, parts[0].text) == (True, "I should look it up")
    assert parts[1].function_call.name == "get_weather" and parts[1].thought_signature
    call = parts[1].function_call
    answer = types.Part(
        function_response=types.FunctionResponse(id=call.id, name=call.name, response={"output": "sun"})
    )
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather?")]),
        first.candidates[0].content,  # the SDK re-encodes the signature bytes (url-safe base64)
        types.Content(role="user", parts=[answer]),
    ]
    second = client.models.generate_content(model="claude-sonnet-4-6", contents=contents, config=config)
    assert second.text.startswith(TOOL_RESULT_PREFIX)  # the Anthropic fake verified the signature
    sent = fake.last_request("/v1/messages")["body"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}  # still thinking on the second turn
    assistant = sent["messages"][1]["content"]
    assert assistant[0] == {
        "type": "thinking",
        "thinking": "I should look it up",
        "signature": sign("I should look it up"),
    }
    assert [b["type"] for b in assistant] == ["thinking", "tool_use"]


def test_streamed_tool_call_is_one_whole_part(gateway, fake) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "A long city name to split in pieces"}}])
    r = post(
        gateway,
        "claude-sonnet-4-6",
        "streamGenerateContent",
        {**BODY, "tools": [{"functionDeclarations": [{"name": "get_weather"}]}]},
        query="alt=sse",
    )
    chunks = sse_chunks(r.content)
    calls = [p["functionCall"] for p in parts_of(chunks) if "functionCall" in p]
    assert len(calls) == 1 and calls[0]["args"] == {"city": "A long city name to split in pieces"}
    assert calls[0]["id"].startswith("toolu_") and list(calls[0]) == ["id", "name", "args"]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "functionCall" in chunks[-1]["candidates"][0]["content"]["parts"][0]


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_image_inline_data(gateway, fake, model: str) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    contents = [types.Part.from_bytes(data=png, mime_type="image/png"), "What is this?"]
    client = sdk(gateway)
    client.models.generate_content(model=model, contents=contents)
    data = base64.b64encode(png).decode()
    if model.startswith("claude"):
        content = fake.last_request("/v1/messages")["body"]["messages"][0]["content"]
        assert content[0] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        assert content[1] == {"type": "text", "text": "What is this?"}
    else:
        content = fake.last_request("/v1/chat/completions")["body"]["messages"][0]["content"]
        assert content[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def test_response_schema_becomes_structured_output(gateway, fake) -> None:
    schema = types.Schema(
        type="OBJECT",
        properties={
            "name": types.Schema(type="STRING", nullable=True),
            "tags": types.Schema(type="ARRAY", items=types.Schema(type="STRING")),
        },
        property_ordering=["name", "tags"],
    )
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema)
    fake.script(text='{"name": "x", "tags": []}')
    client = sdk(gateway)
    resp = client.models.generate_content(model="claude-sonnet-4-6", contents=USER, config=config)
    assert resp.text == '{"name": "x", "tags": []}'
    fmt = fake.last_request("/v1/messages")["body"]["output_config"]["format"]
    assert fmt == {
        "type": "json_schema",
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": ["string", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
    }


def test_response_json_schema_as_written(gateway, fake) -> None:
    schema = {"type": "object", "properties": {"route": {"type": "string", "enum": ["flash", "pro"]}}}
    body = {**BODY, "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema}}
    assert post(gateway, "claude-sonnet-4-6", "generateContent", body).status_code == 200
    assert fake.last_request("/v1/messages")["body"]["output_config"]["format"] == {
        "type": "json_schema",
        "schema": schema,
    }


@pytest.mark.parametrize(
    ("thinking", "sent_thinking", "effort"),
    [
        ({"thinkingBudget": 4096, "includeThoughts": True}, {"type": "enabled", "budget_tokens": 4096}, None),
        ({"thinkingBudget": 99999}, {"type": "enabled", "budget_tokens": 8191}, None),  # fitted below max_tokens
        ({"thinkingBudget": -1}, {"type": "adaptive"}, None),
        ({"thinkingBudget": 0}, {"type": "disabled"}, None),
        ({"thinkingLevel": "HIGH", "includeThoughts": True}, {"type": "adaptive"}, "high"),
        ({"thinkingLevel": "minimal"}, {"type": "disabled"}, None),
    ],
)
def test_thinking_config_mapped(gateway, fake, thinking: dict, sent_thinking: dict, effort: str | None) -> None:
    body = {**BODY, "generationConfig": {"thinkingConfig": thinking}}
    r = post(gateway, "claude-sonnet-4-6", "generateContent", body)
    assert r.status_code == 200, r.text
    sent = fake.last_request("/v1/messages")["body"]
    assert sent["thinking"] == sent_thinking
    assert sent.get("output_config", {}).get("effort") == effort
    parts = r.json()["candidates"][0]["content"]["parts"]
    thought = [p for p in parts if p.get("thought")]
    if sent_thinking["type"] == "disabled":
        assert not thought
    elif thinking.get("includeThoughts"):
        assert thought == [{"text": AUTO_THINKING, "thought": True}]
    else:  # thought, but not shown
        assert not thought
    # Anthropic counts thinking inside output_tokens without splitting it out: no thoughtsTokenCount
    assert "thoughtsTokenCount" not in r.json()["usageMetadata"]


def test_thoughts_stream_as_thought_parts(gateway, fake) -> None:
    fake.script(thinking="step one, step two")
    body = {**BODY, "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}
    chunks = sse_chunks(post(gateway, "claude-sonnet-4-6", "streamGenerateContent", body, query="alt=sse").content)
    assert text_of(chunks, thoughts=True) == "step one, step two"
    assert text_of(chunks) == ECHO_PREFIX + USER
    thought_chunks = [c for c in chunks if c["candidates"][0]["content"]["parts"][0].get("thought")]
    assert thought_chunks and chunks.index(thought_chunks[-1]) < len(chunks) - 1


def test_usage_metadata_counts_cache_and_thoughts(gateway, fake) -> None:
    fake.script(
        thinking="a b c",
        usage={
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 50,
            "output_tokens": 20,
        },
    )
    usage = post(gateway, "claude-sonnet-4-6", "generateContent", BODY).json()["usageMetadata"]
    # Anthropic reports thinking inside output_tokens and does not split it out: all 20 are candidates
    assert usage == {
        "promptTokenCount": 160,
        "candidatesTokenCount": 20,
        "totalTokenCount": 180,
        "cachedContentTokenCount": 100,
    }


@pytest.mark.parametrize(
    ("directive", "reason"), [("[[fake:max_tokens]]", "MAX_TOKENS"), ("[[fake:stop refusal]]", "SAFETY")]
)
def test_finish_reasons(gateway, fake, directive: str, reason: str) -> None:
    body = {"contents": [{"parts": [{"text": f"hi {directive}"}]}]}
    assert post(gateway, "claude-sonnet-4-6", "generateContent", body).json()["candidates"][0]["finishReason"] == reason


def test_count_tokens_asks_anthropic(gateway, fake) -> None:
    client = sdk(gateway)
    result = client.models.count_tokens(model="claude-sonnet-4-6", contents=USER)
    sent = fake.last_request("/v1/messages/count_tokens")["body"]
    assert result.total_tokens == fake_anthropic.input_tokens(sent)
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": USER}]}]


def test_count_tokens_local_estimate(gateway, fake) -> None:
    inner = {
        "model": "models/qwen-local",
        "contents": BODY["contents"],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather"}]}],
    }
    r = post(gateway, "qwen-local", "countTokens", {"generateContentRequest": inner})
    assert r.status_code == 200, r.text
    expected = estimate_request_tokens(codec.decode_count_request({"generateContentRequest": inner}))
    assert r.json() == {"totalTokens": expected}
    assert not fake.requests()  # nothing went upstream


def test_snake_case_rest_body(gateway, fake) -> None:
    """Google's REST docs write field names in snake_case; the server accepts both."""
    body = {
        "system_instruction": {"parts": [{"text": "You are a cat."}]},
        "contents": [{"parts": [{"inline_data": {"mime_type": "image/jpeg", "data": "AAAA"}}, {"text": "Caption"}]}],
        "generation_config": {"max_output_tokens": 50, "stop_sequences": ["Title"]},
    }
    assert post(gateway, "claude-sonnet-4-6", "generateContent", body).status_code == 200
    sent = fake.last_request("/v1/messages")["body"]
    assert sent["system"] == [{"type": "text", "text": "You are a cat."}]
    assert (sent["max_tokens"], sent["stop_sequences"]) == (50, ["Title"])
    assert sent["messages"][0]["content"][0]["source"]["media_type"] == "image/jpeg"


def test_api_prefix_and_v1(gateway, fake) -> None:
    for path in ("/api/gemini/v1beta", "/api/gemini/v1", "/v1"):
        import httpx

        r = httpx.post(
            f"{gateway.base_url}{path}/models/claude-sonnet-4-6:generateContent",
            json=BODY,
            headers={"x-goog-api-key": "mg-test-master-key"},
        )
        assert r.status_code == 200, (path, r.text)
        assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == ECHO_PREFIX + USER
