"""OpenAI Chat front door → OpenAI-compatible upstream: the client's bytes go up, the upstream's come back."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, UPSTREAM_KEY

USER = [{"role": "user", "content": "Hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def test_text_non_streaming(chat: openai.OpenAI, fake) -> None:
    completion = chat.chat.completions.create(model="qwen-local", messages=USER, seed=7, logprobs=False)
    assert completion.choices[0].message.content.endswith("You said: Hello there")
    assert completion.model == "qwen2.5:0.5b"  # the upstream's answer, untouched
    assert completion.id.startswith("chatcmpl-") and completion.system_fingerprint == "fp_fake0000"
    sent = fake.last_request("/v1/chat/completions")
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["body"] == {"messages": USER, "model": "qwen2.5:0.5b", "logprobs": False, "seed": 7}


def test_fields_the_translated_path_refuses_pass_through(chat: openai.OpenAI, fake) -> None:
    chat.chat.completions.create(model="qwen-local", messages=USER, n=2, logit_bias={"42": 5}, top_logprobs=2)
    body = fake.last_request("/v1/chat/completions")["body"]
    assert (body["n"], body["logit_bias"], body["top_logprobs"]) == (2, {"42": 5}, 2)


def test_bytes_are_forwarded_untouched_when_the_model_keeps_its_name(gateway, fake) -> None:
    raw = b'{ "model" : "slow-local",\n  "messages": [{"role":"user","content":"caf\\u00e9 \xe2\x98\x95"}],'
    raw += b' "x_vendor": 1 }'
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=raw,
        headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
    )
    assert r.status_code == 200
    assert fake.last_request("/v1/chat/completions")["raw_body"] == raw.decode()


def test_streaming_keeps_the_client_stream_options(chat: openai.OpenAI, fake) -> None:
    stream = chat.chat.completions.create(
        model="qwen-local", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("You said: Hello there")
    body = fake.last_request("/v1/chat/completions")["body"]
    assert body["stream_options"] == {"include_usage": True} and body["model"] == "qwen2.5:0.5b"


def test_stream_bytes_are_the_upstream_bytes(gateway, fake) -> None:
    body = {"model": "qwen-local", "messages": USER, "stream": True}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    r = httpx.post(gateway.base_url + "/v1/chat/completions", json=body, headers=headers)
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-request-id"]
    frames = r.text.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    assert all(orjson.loads(f[6:])["model"] == "qwen2.5:0.5b" for f in frames[:-2])
    assert '"usage"' not in r.text  # no include_usage asked, none added


def test_streamed_parallel_tool_calls(chat: openai.OpenAI, fake) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}, {"name": "get_weather", "input": {}}])
    with chat.chat.completions.stream(model="qwen-local", messages=USER, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.arguments for c in calls] == ['{"city":"Paris"}', "{}"]
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("base", ["/api/openai/v1", "/api/openai"])
def test_other_base_paths(gateway, fake, base: str) -> None:
    with openai.OpenAI(base_url=gateway.base_url + base, api_key=MASTER_KEY, max_retries=0) as c:
        assert c.chat.completions.create(model="qwen-local", messages=USER).choices[0].message.content


def test_upstream_error_body_passes_through(chat: openai.OpenAI, fake) -> None:
    body = {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None,
                      "code": "rate_limit_exceeded", "x_extra": 1}}  # fmt: skip
    fake.script(error={"status": 429, "body": body, "retry_after": 3})
    with pytest.raises(openai.RateLimitError) as info:
        chat.chat.completions.create(model="qwen-local", messages=USER)
    assert info.value.response.json() == body
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["x-request-id"]


def test_upstream_key_quoted_in_an_error_is_redacted(gateway, fake) -> None:
    fake.script(error={"status": 401, "message": "bad key {api_key}"})
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "qwen-local", "messages": USER},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert r.status_code == 401 and UPSTREAM_KEY not in r.text and "[redacted]" in r.text


def test_stream_broken_halfway_ends_with_an_error_chunk(gateway, fake) -> None:
    fake.script(words=40, break_after=5)
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "qwen-local", "messages": USER, "stream": True},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    frames = [f for f in r.text.split("\n\n") if f]
    assert len(frames) == 6 and "[DONE]" not in r.text
    error = orjson.loads(frames[-1][6:])["error"]
    assert error["type"] == "server_error" and error["code"] is None
