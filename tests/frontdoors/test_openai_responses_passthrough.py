"""Responses front door → an ``openai``-kind provider: the client's bytes go up, the upstream's come back."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from modelgate.protocols.sse import SSEParser
from tests.conftest import MASTER_KEY, UPSTREAM_KEY

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }
]


def sse(body: bytes) -> list[dict]:
    parser = SSEParser()
    frames = parser.feed(body) + parser.flush()
    data = [json.loads(f.data) for f in frames]
    assert [f.event for f in frames] == [d["type"] for d in data]
    return data


def test_text_non_streaming_is_forwarded_untouched(oai: openai.OpenAI, fake) -> None:
    resp = oai.responses.create(
        model="gpt-4o", input="Hello there", instructions="Be brief.", metadata={"k": "v"}, store=False
    )
    assert resp.output_text.endswith("You said: Hello there") and resp.status == "completed"
    assert resp.model == "gpt-4o" and resp.metadata == {"k": "v"} and resp.instructions == "Be brief."
    sent = fake.last_request("/v1/responses")
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["body"] == {
        "input": "Hello there",
        "instructions": "Be brief.",
        "metadata": {"k": "v"},
        "model": "gpt-4o",
        "store": False,
    }


def test_stream_bytes_and_event_order(gateway, fake) -> None:
    body = {"model": "gpt-5-codex", "input": "[[fake:thinking hmm]] hi", "stream": True}
    body |= {"reasoning": {"effort": "low", "summary": "auto"}, "include": ["reasoning.encrypted_content"]}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.stream("POST", gateway.base_url + "/v1/responses", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"].startswith("req_")
        raw = r.read()
    data = sse(raw)
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    kinds = [d["type"] for d in data]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * kinds.count("response.output_text.delta"),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert data[7]["item"]["encrypted_content"].startswith("gAAAAB")
    assert fake.last_request("/v1/responses")["raw_body"] == json.dumps(body, separators=(",", ":"))
    fake.reset()  # the same request straight to the fake gets the very same bytes
    direct = {"authorization": f"Bearer {UPSTREAM_KEY}"}
    assert httpx.post(fake.openai_base_url + "/responses", json=body, headers=direct).content == raw


def test_sdk_stream_helper_with_tool_call(oai: openai.OpenAI, fake) -> None:
    fake.script(tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    with oai.responses.stream(model="gpt-4o", input="weather?", tools=TOOLS) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
    follow = [
        {"role": "user", "content": "weather?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = oai.responses.create(model="gpt-4o", input=follow, tools=TOOLS)
    assert second.output_text.endswith("sunny")
    assert fake.last_request("/v1/responses")["body"]["input"][1]["call_id"] == call.call_id


def test_codex_headers_are_forwarded_and_credentials_replaced(gateway, fake) -> None:
    headers = {
        "authorization": f"Bearer {MASTER_KEY}",
        "session_id": "sess-1",
        "originator": "codex_cli_rs",
        "openai-beta": "responses=experimental",
        "x-codex-turn-metadata": "{}",
        "x-api-key": MASTER_KEY,
        "cookie": "secret=1",
    }
    body = {"model": "gpt-5-codex", "input": "hi", "store": False, "client_metadata": {"a": "b"}}
    r = httpx.post(gateway.base_url + "/v1/responses", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    sent = fake.last_request("/v1/responses")["headers"]
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["session_id"] == "sess-1" and sent["originator"] == "codex_cli_rs"
    assert sent["openai-beta"] == "responses=experimental" and sent["x-codex-turn-metadata"] == "{}"
    assert "x-api-key" not in sent and "cookie" not in sent


def test_base_url_without_v1(gateway, fake) -> None:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    for path in ("/responses", "/api/openai/v1/responses", "/api/openai/responses"):
        r = httpx.post(gateway.base_url + path, json={"model": "gpt-4o", "input": "x"}, headers=headers)
        assert r.status_code == 200 and r.json()["object"] == "response", path


def test_compact_is_forwarded(oai: openai.OpenAI, fake) -> None:
    items = [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}]
    resp = oai.responses.compact(model="gpt-5-codex", input=items, instructions="sys")
    assert resp.object == "response.compaction" and resp.output[-1].type == "compaction"
    assert fake.last_request("/v1/responses/compact")["body"] == {
        "input": items,
        "instructions": "sys",
        "model": "gpt-5-codex",
    }


def test_upstream_errors_pass_through(oai: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 429, "retry_after": 7, "message": "Rate limit reached for gpt-4o"})
    with pytest.raises(openai.RateLimitError) as info:
        oai.responses.create(model="gpt-4o", input="x")
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.body == {
        "message": "Rate limit reached for gpt-4o",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(openai.BadRequestError) as bad:
        oai.responses.create(model="gpt-4o", input="x", max_output_tokens=5)
    assert bad.value.body["code"] == "integer_below_min_value"  # the upstream's own validation


def test_broken_stream_ends_with_response_failed_for_the_same_response(oai: openai.OpenAI, fake) -> None:
    fake.script(break_after=4)
    with oai.responses.create(model="gpt-4o", input="hello", stream=True) as stream:
        events = list(stream)
    assert [e.type for e in events[:4]] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    failed = events[-1]
    assert failed.type == "response.failed" and len(events) == 5
    assert failed.sequence_number == 4 and failed.response.id == events[0].response.id
    assert failed.response.status == "failed" and failed.response.error.code == "server_error"


def test_failed_upstream_stream_passes_as_is(oai: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 429, "after": 3, "message": "slow down"})
    with oai.responses.create(model="gpt-4o", input="hello", stream=True) as stream:
        events = list(stream)
    assert [e.type for e in events][-1] == "response.failed" and len(events) == 4
    assert events[-1].response.error.code == "rate_limit_exceeded"
