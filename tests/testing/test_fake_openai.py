"""The fake upstream's OpenAI Chat Completions side, over real HTTP."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from fake_helpers import OPENAI_HEADERS, sse_frames

from modelgate.testing import run_fake_upstream
from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX, estimate_tokens

MODEL = "gpt-4o"


def client(fake) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def chunks(frames) -> list:
    assert frames[-1].data == "[DONE]"
    assert all(f.event is None for f in frames)
    return [json.loads(f.data) for f in frames[:-1]]


def test_non_streaming(fake_upstream):
    messages = [{"role": "system", "content": "sys"}, *user("Hi there")]
    resp = client(fake_upstream).chat.completions.create(model=MODEL, messages=messages)
    assert resp.object == "chat.completion" and resp.model == MODEL and resp.id.startswith("chatcmpl-")
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == ECHO_PREFIX + "Hi there"
    assert choice.finish_reason == "stop" and choice.message.tool_calls is None
    u = resp.usage
    assert u.prompt_tokens == estimate_tokens([messages, None])
    assert u.completion_tokens == len(choice.message.content.split())
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert u.prompt_tokens_details.cached_tokens == 0 and u.completion_tokens_details.reasoning_tokens == 0


async def test_stream_with_usage(fake_upstream, http):
    text = "multi  byte: äöü 漢字 🎉 ok"
    body = {"model": MODEL, "messages": user(text), "stream": True, "stream_options": {"include_usage": True}}
    data = chunks(await sse_frames(http, fake_upstream.openai_base_url + "/chat/completions", body, OPENAI_HEADERS))
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == data[0]["id"] for c in data)
    assert data[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    content = [c for c in data[1:-2]]
    assert len(content) > 3 and all(c["choices"][0]["finish_reason"] is None for c in content)
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert streamed == ECHO_PREFIX + text
    last = data[-2]
    assert last["choices"][0]["delta"] == {} and last["choices"][0]["finish_reason"] == "stop"
    assert all("usage" in c and c["usage"] is None for c in data[:-1])
    assert data[-1]["choices"] == [] and data[-1]["usage"]["completion_tokens"] == len(streamed.split())


async def test_stream_without_include_usage_has_no_usage_field(fake_upstream, http):
    body = {"model": MODEL, "messages": user("x"), "stream": True}
    data = chunks(await sse_frames(http, fake_upstream.openai_base_url + "/chat/completions", body, OPENAI_HEADERS))
    assert all("usage" not in c for c in data) and data[-1]["choices"][0]["finish_reason"] == "stop"


async def test_tool_call_stream_and_round_trip(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/chat/completions"
    prompt = '[[fake:tool get_weather {"city": "Paris", "unit": "celsius"}]] [[fake:tool get_time {"tz": "CET"}]]'
    body = {"model": MODEL, "messages": user(prompt), "stream": True}
    data = chunks(await sse_frames(http, url, body, OPENAI_HEADERS))
    first = data[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    header = first["tool_calls"][0]
    assert header["index"] == 0 and header["type"] == "function" and header["id"].startswith("call_")
    assert header["function"] == {"name": "get_weather", "arguments": ""}
    calls: dict[int, dict] = {}
    for c in data:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            entry = calls.setdefault(tc["index"], {"id": tc.get("id"), "name": tc["function"].get("name"), "args": []})
            entry["args"].append(tc["function"].get("arguments", ""))
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert len(calls[0]["args"]) >= 3  # "" then several pieces
    assert json.loads("".join(calls[0]["args"])) == {"city": "Paris", "unit": "celsius"}
    assert json.loads("".join(calls[1]["args"])) == {"tz": "CET"}
    assert data[-1]["choices"][0]["finish_reason"] == "tool_calls"

    messages = [
        *user(prompt),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": calls[0]["id"], "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C, sunny"},
    ]
    resp = client(fake_upstream).chat.completions.create(model=MODEL, messages=messages)
    assert resp.choices[0].message.content == TOOL_RESULT_PREFIX + "18C, sunny"
    assert resp.choices[0].finish_reason == "stop"


def test_tool_call_from_queue_non_streaming(fake_upstream):
    fake_upstream.script(tool_calls=[{"name": "lookup", "input": {"q": "x"}, "id": "call_fixed"}])
    msg = client(fake_upstream).chat.completions.create(model=MODEL, messages=user("go")).choices[0]
    assert msg.finish_reason == "tool_calls" and msg.message.content is None
    call = msg.message.tool_calls[0]
    assert (call.id, call.type, call.function.name, json.loads(call.function.arguments)) == (
        "call_fixed",
        "function",
        "lookup",
        {"q": "x"},
    )


def test_sdk_stream_helper_accumulates(fake_upstream):
    with client(fake_upstream).chat.completions.stream(model=MODEL, messages=user("abc def")) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == ECHO_PREFIX + "abc def"


def test_thinking_counts_as_reasoning_tokens(fake_upstream):
    resp = client(fake_upstream).chat.completions.create(
        model=MODEL, messages=user("[[fake:thinking one two three]] hi")
    )
    assert resp.usage.completion_tokens_details.reasoning_tokens == 3
    assert resp.choices[0].message.content == ECHO_PREFIX + "hi"


async def test_quirks(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/chat/completions"
    body = {"model": MODEL, "messages": user("[[fake:thinking deep thought]] hi"), "stream": True}
    body["stream_options"] = {"include_usage": True}
    fake_upstream.script(quirks=["no_usage"], thinking="x")
    data = chunks(await sse_frames(http, url, body, OPENAI_HEADERS))
    assert all("usage" not in c for c in data) and data[-1]["choices"][0]["finish_reason"] == "stop"

    fake_upstream.script(quirks=["null_choices"])
    data = chunks(await sse_frames(http, url, body, OPENAI_HEADERS))
    assert data[-1]["choices"] is None and data[-1]["usage"]["total_tokens"] > 0

    fake_upstream.configure(quirks=["reasoning_content"])
    data = chunks(await sse_frames(http, url, body, OPENAI_HEADERS))
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in data if c["choices"])
    assert reasoning == "deep thought"
    resp = await http.post(url, json={**body, "stream": False}, headers=OPENAI_HEADERS)
    assert resp.json()["choices"][0]["message"]["reasoning_content"] == "deep thought"

    fake_upstream.script(quirks=["usage_on_last_chunk"])
    data = chunks(await sse_frames(http, url, {**body, "stream_options": None}, OPENAI_HEADERS))
    assert data[-1]["choices"][0]["finish_reason"] == "stop" and data[-1]["usage"]["completion_tokens"] > 0

    resp = await http.post(url, json={**body, "stream": False}, headers=OPENAI_HEADERS)
    assert "usage" in resp.json()
    fake_upstream.script(quirks=["no_usage"])
    resp = await http.post(url, json={**body, "stream": False}, headers=OPENAI_HEADERS)
    assert "usage" not in resp.json()


def test_quirks_from_the_command_line():
    with run_fake_upstream(quirks=["no_usage"]) as fake:
        resp = client(fake).chat.completions.create(model=MODEL, messages=user("x"))
        assert resp.usage is None


@pytest.mark.parametrize(
    ("status", "etype", "exc"),
    [
        (400, "invalid_request_error", openai.BadRequestError),
        (401, "invalid_request_error", openai.AuthenticationError),
        (404, "invalid_request_error", openai.NotFoundError),
        (429, "requests", openai.RateLimitError),
        (500, "server_error", openai.InternalServerError),
        (503, "server_error", openai.InternalServerError),
    ],
)
def test_error_envelopes(fake_upstream, status, etype, exc):
    fake_upstream.script(error={"status": status})
    with pytest.raises(exc) as info:
        client(fake_upstream).chat.completions.create(model=MODEL, messages=user("x"))
    body = info.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == etype and info.value.status_code == status
    assert info.value.response.headers["x-request-id"].startswith("req_")


async def test_auth_and_validation(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/chat/completions"
    body = {"model": MODEL, "messages": user("x")}
    missing = await http.post(url, json=body)
    assert missing.status_code == 401 and "didn't provide an API key" in missing.json()["error"]["message"]
    fake_upstream.configure(require_key="sk-right-key-1234")
    wrong = await http.post(url, json=body, headers={"authorization": "Bearer sk-wrong-key-9876"})
    assert wrong.status_code == 401
    err = wrong.json()["error"]
    assert err["code"] == "invalid_api_key" and "sk-wrong-key-9876" not in err["message"] and "9876" in err["message"]
    good = {"authorization": "Bearer sk-right-key-1234"}
    assert (await http.post(url, json=body, headers=good)).status_code == 200
    no_msgs = await http.post(url, json={"model": MODEL}, headers=good)
    assert no_msgs.status_code == 400 and no_msgs.json()["error"]["param"] == "messages"
    unknown = await http.post(fake_upstream.openai_base_url + "/nope", json=body, headers=good)
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "Invalid URL (POST /v1/nope)"


async def test_in_stream_error_and_break(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/chat/completions"
    body = {"model": MODEL, "messages": user("x"), "stream": True}
    fake_upstream.script(error={"status": 500, "after": 2, "message": "boom"})
    frames = await sse_frames(http, url, body, OPENAI_HEADERS)
    assert json.loads(frames[-1].data) == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": None}
    }
    assert len(frames) == 3
    fake_upstream.script(break_after=2)
    with pytest.raises(httpx.RemoteProtocolError):
        await sse_frames(http, url, body, OPENAI_HEADERS)


def test_max_tokens_gives_length(fake_upstream):
    resp = client(fake_upstream).chat.completions.create(model=MODEL, max_completion_tokens=2, messages=user("x"))
    assert resp.choices[0].message.content == "Hello from" and resp.choices[0].finish_reason == "length"


def test_models(fake_upstream):
    models = client(fake_upstream).models.list()
    assert MODEL in {m.id for m in models.data}
    assert client(fake_upstream).models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client(fake_upstream).models.retrieve("nope")
