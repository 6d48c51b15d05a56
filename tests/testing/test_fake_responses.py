"""The fake upstream's OpenAI Responses side, over real HTTP, through the ``openai`` SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from fake_helpers import OPENAI_HEADERS, sse_frames

from modelgate.testing.fake_responses import encrypt
from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX, estimate_tokens

MODEL = "gpt-5-codex"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def client(fake) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test-key", max_retries=0)


def events(frames) -> list[dict]:
    data = [json.loads(f.data) for f in frames]
    assert [f.event for f in frames] == [d["type"] for d in data]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    return data


def test_non_streaming_text(fake_upstream):
    resp = client(fake_upstream).responses.create(model=MODEL, input="Hi there", instructions="Be brief.")
    assert resp.object == "response" and resp.id.startswith("resp_") and resp.status == "completed"
    assert resp.model == MODEL and resp.instructions == "Be brief."
    assert resp.output_text == ECHO_PREFIX + "Hi there"
    [item] = resp.output
    assert item.type == "message" and item.role == "assistant" and item.id.startswith("msg_")
    assert item.content[0].type == "output_text" and item.content[0].annotations == []
    u = resp.usage
    assert u.input_tokens == estimate_tokens(["Be brief.", "Hi there", None])
    assert u.output_tokens == len(resp.output_text.split()) and u.total_tokens == u.input_tokens + u.output_tokens
    assert u.input_tokens_details.cached_tokens == 0 and u.output_tokens_details.reasoning_tokens == 0
    sent = fake_upstream.last_request("/v1/responses")
    assert sent["protocol"] == "openai" and sent["headers"]["authorization"] == "Bearer test-key"


async def test_stream_event_sequence(fake_upstream, http):
    body = {"model": MODEL, "input": "multi byte äöü 漢字", "stream": True}
    data = events(await sse_frames(http, fake_upstream.openai_base_url + "/responses", body, OPENAI_HEADERS))
    kinds = [d["type"] for d in data]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [d["delta"] for d in data if d["type"] == "response.output_text.delta"]
    assert len(deltas) > 3 and "".join(deltas) == ECHO_PREFIX + "multi byte äöü 漢字"
    assert data[0]["response"]["status"] == "in_progress" and data[0]["response"]["usage"] is None
    final = data[-1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "".join(deltas)
    assert final["usage"]["output_tokens"] == len("".join(deltas).split())


def test_sdk_stream_helper(fake_upstream):
    with client(fake_upstream).responses.stream(model=MODEL, input="abc def") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == ECHO_PREFIX + "abc def"


async def test_function_call_stream_and_round_trip(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/responses"
    prompt = '[[fake:tool get_weather {"city": "Paris", "unit": "celsius"}]]'
    data = events(
        await sse_frames(http, url, {"model": MODEL, "input": prompt, "tools": TOOLS, "stream": True}, OPENAI_HEADERS)
    )
    added = next(d for d in data if d["type"] == "response.output_item.added")
    assert added["item"]["type"] == "function_call" and added["item"]["arguments"] == ""
    assert added["item"]["status"] == "in_progress" and added["item"]["call_id"].startswith("call_")
    pieces = [d["delta"] for d in data if d["type"] == "response.function_call_arguments.delta"]
    assert len(pieces) >= 2 and json.loads("".join(pieces)) == {"city": "Paris", "unit": "celsius"}
    done = next(d for d in data if d["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == "".join(pieces)
    call = data[-1]["response"]["output"][0]

    follow = [
        {"role": "user", "content": prompt},
        call,
        {"type": "function_call_output", "call_id": call["call_id"], "output": "18C, sunny"},
    ]
    resp = client(fake_upstream).responses.create(model=MODEL, input=follow, tools=TOOLS)
    assert resp.output_text == TOOL_RESULT_PREFIX + "18C, sunny"


def test_reasoning_summary_and_encrypted_content(fake_upstream):
    c = client(fake_upstream)
    plain = c.responses.create(model=MODEL, input="[[fake:thinking one two three]] hi")
    assert plain.output[0].type == "reasoning" and plain.output[0].summary == []
    assert plain.output[0].encrypted_content is None and plain.usage.output_tokens_details.reasoning_tokens == 3
    full = c.responses.create(
        model=MODEL,
        input="[[fake:thinking one two three]] hi",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    )
    reasoning = full.output[0]
    assert reasoning.summary[0].text == "one two three" and reasoning.encrypted_content == encrypt("one two three")
    auto = c.responses.create(model=MODEL, input="hi", reasoning={"effort": "medium"})
    assert auto.output[0].type == "reasoning" and auto.output[1].type == "message"

    fake_upstream.configure(verify_signatures=True)
    good = {"type": "reasoning", "id": reasoning.id, "summary": [], "encrypted_content": reasoning.encrypted_content}
    assert c.responses.create(model=MODEL, input=[good, {"role": "user", "content": "again"}]).status == "completed"
    with pytest.raises(openai.BadRequestError) as info:
        c.responses.create(
            model=MODEL, input=[{**good, "encrypted_content": "gAAAABnope"}, {"role": "user", "content": "x"}]
        )
    assert "could not be verified" in info.value.body["message"]


async def test_reasoning_summary_stream(fake_upstream, http):
    body = {
        "model": MODEL,
        "input": "[[fake:thinking deep thought]] hi",
        "reasoning": {"effort": "high", "summary": "detailed"},
        "stream": True,
    }
    data = events(await sse_frames(http, fake_upstream.openai_base_url + "/responses", body, OPENAI_HEADERS))
    kinds = [d["type"] for d in data]
    assert kinds[2:5] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
    ]
    assert "".join(d["delta"] for d in data if d["type"] == "response.reasoning_summary_text.delta") == "deep thought"
    i = kinds.index("response.reasoning_summary_part.done")
    assert kinds[i - 1] == "response.reasoning_summary_text.done" and kinds[i + 1] == "response.output_item.done"
    assert data[i + 2]["type"] == "response.output_item.added" and data[i + 2]["output_index"] == 1


def test_custom_tool_call(fake_upstream):
    tools = [{"type": "custom", "name": "apply_patch", "description": "Apply a patch"}]
    fake_upstream.script(tool_calls=[{"name": "apply_patch", "input": {"input": "*** Begin Patch"}}])
    resp = client(fake_upstream).responses.create(model=MODEL, input="patch it", tools=tools)
    [item] = resp.output
    assert item.type == "custom_tool_call" and item.name == "apply_patch" and item.input == "*** Begin Patch"


def test_max_output_tokens_makes_it_incomplete(fake_upstream):
    resp = client(fake_upstream).responses.create(model=MODEL, input="x", max_output_tokens=16, store=False)
    assert resp.status == "completed"
    fake_upstream.script(words=40)
    resp = client(fake_upstream).responses.create(model=MODEL, input="x", max_output_tokens=16)
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete" and resp.usage.output_tokens == 16


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": "x"}, "model", "missing_required_parameter"),
        ({"model": MODEL}, "input", "missing_required_parameter"),
        ({"model": MODEL, "input": "x", "max_output_tokens": 5}, "max_output_tokens", "integer_below_min_value"),
        ({"model": MODEL, "input": "x", "previous_response_id": "resp_1"}, "previous_response_id", None),
        ({"model": MODEL, "input": "x", "frobnicate": 1}, "frobnicate", "unknown_parameter"),
    ],
)
async def test_validation(fake_upstream, http, body, param, code):
    resp = await http.post(fake_upstream.openai_base_url + "/responses", json=body, headers=OPENAI_HEADERS)
    assert resp.status_code == 400 and resp.headers["x-request-id"].startswith("req_")
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert code is None or err["code"] == code


async def test_auth(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/responses"
    missing = await http.post(url, json={"model": MODEL, "input": "x"})
    assert missing.status_code == 401 and "didn't provide an API key" in missing.json()["error"]["message"]
    fake_upstream.configure(require_key="sk-right-key-1234")
    wrong = await http.post(url, json={"model": MODEL, "input": "x"}, headers={"authorization": "Bearer sk-wrong-9876"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("status", "exc"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_error_envelopes(fake_upstream, status, exc):
    fake_upstream.script(error={"status": status}, match={"endpoint": "responses"})
    with pytest.raises(exc) as info:
        client(fake_upstream).responses.create(model=MODEL, input="x")
    assert set(info.value.response.json()["error"]) == {"message", "type", "param", "code"}


async def test_in_stream_failure_and_break(fake_upstream, http):
    url = fake_upstream.openai_base_url + "/responses"
    body = {"model": MODEL, "input": "x", "stream": True}
    fake_upstream.script(error={"status": 429, "after": 3, "message": "slow down"})
    data = events(await sse_frames(http, url, body, OPENAI_HEADERS))
    assert len(data) == 4 and data[-1]["type"] == "response.failed"
    assert data[-1]["response"]["status"] == "failed"
    assert data[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    fake_upstream.script(break_after=3)
    with pytest.raises(httpx.RemoteProtocolError):
        await sse_frames(http, url, body, OPENAI_HEADERS)


def test_compact(fake_upstream):
    items = [
        {"role": "user", "content": "first"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"role": "user", "content": "second"},
    ]
    resp = client(fake_upstream).responses.compact(model=MODEL, input=items, instructions="sys")
    assert resp.object == "response.compaction"
    assert [o.type for o in resp.output] == ["message", "message", "compaction"]
    assert resp.output[-1].encrypted_content == encrypt("Compacted 3 items.")
    assert fake_upstream.last_request("/v1/responses/compact")["body"]["instructions"] == "sys"
    fake_upstream.script(error={"status": 500}, match={"endpoint": "responses.compact"})
    with pytest.raises(openai.InternalServerError):
        client(fake_upstream).responses.compact(model=MODEL, input=items)
