"""The fake upstream over real HTTP: the Anthropic side, recording, control API and lifecycles."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import orjson
import pytest
from fake_helpers import ANTHROPIC_HEADERS, sse_frames

from modelgate.testing import create_app, run_fake_upstream
from modelgate.testing.reply import ECHO_PREFIX, TOOL_RESULT_PREFIX, estimate_tokens, sign

MODEL = "claude-haiku-4-5-20251001"


def client(fake, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.base_url, api_key="test-key", max_retries=0, **kw)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------- answers


def test_non_streaming_echo_and_usage(fake_upstream):
    messages = user("Hello, how are you?")
    msg = client(fake_upstream).messages.create(model=MODEL, max_tokens=200, messages=messages, system="Be brief.")
    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.id.startswith("msg_01")
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == ECHO_PREFIX + "Hello, how are you?"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens == estimate_tokens(["Be brief.", messages, None])
    assert msg.usage.output_tokens == len(msg.content[0].text.split())
    assert msg.usage.cache_read_input_tokens == 0 and msg.usage.cache_creation_input_tokens == 0


async def test_stream_event_order_and_exact_text(fake_upstream, http):
    text = "  Grüße,\n\tworld — 日本語 😀  end  "
    body = {"model": MODEL, "max_tokens": 500, "messages": user(text)}
    frames = await sse_frames(
        http, fake_upstream.base_url + "/v1/messages", {**body, "stream": True}, ANTHROPIC_HEADERS
    )
    kinds = [f.event for f in frames]
    deltas = kinds.count("content_block_delta")
    assert deltas > 3
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(f.data) for f in frames]
    assert all(d["type"] == f.event for d, f in zip(data, frames, strict=True))
    streamed = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    resp = await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert streamed == resp.json()["content"][0]["text"] == ECHO_PREFIX + text.strip()
    start, delta = data[0]["message"], data[-2]
    assert start["usage"]["input_tokens"] == resp.json()["usage"]["input_tokens"]
    assert start["usage"]["output_tokens"] == 1
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == resp.json()["usage"]["output_tokens"]
    assert set(delta["usage"]) >= {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}


def test_sdk_stream_accumulates(fake_upstream):
    with client(fake_upstream).messages.stream(model=MODEL, max_tokens=100, messages=user("stream me")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == ECHO_PREFIX + "stream me"


async def test_tool_directive_round_trip(fake_upstream, http):
    prompt = 'Please run it. [[fake:tool Bash {"command": "echo hi", "nested": {"a": [1, 2]}}]]'
    url = fake_upstream.base_url + "/v1/messages"
    first = {"model": MODEL, "max_tokens": 100, "messages": user(prompt), "stream": True}
    frames = await sse_frames(http, url, first, ANTHROPIC_HEADERS)
    data = [json.loads(f.data) for f in frames]
    assert [d["type"] for d in data][:3] == ["message_start", "content_block_start", "ping"]
    block = data[1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "Bash" and block["input"] == {}
    assert block["id"].startswith("toolu_01")
    pieces = [d["delta"]["partial_json"] for d in data if d["type"] == "content_block_delta"]
    assert pieces[0] == "" and len(pieces) >= 3
    assert json.loads("".join(pieces)) == {"command": "echo hi", "nested": {"a": [1, 2]}}
    assert [d["index"] for d in data if d["type"] == "content_block_stop"] == [0]
    assert data[-2]["delta"]["stop_reason"] == "tool_use"

    # The tool result comes back: the directive must not fire again.
    follow = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [
            *user(prompt),
            {"role": "assistant", "content": [{**block, "input": {"command": "echo hi", "nested": {"a": [1, 2]}}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "hi\n"}]},
        ],
    }
    resp = await http.post(url, json=follow, headers=ANTHROPIC_HEADERS)
    assert resp.status_code == 200
    assert resp.json()["content"] == [{"type": "text", "text": TOOL_RESULT_PREFIX + "hi\n"}]
    assert resp.json()["stop_reason"] == "end_turn"


def test_tool_call_from_queue_with_text(fake_upstream):
    fake_upstream.script(text="Let me check.", tool_calls=[{"name": "get_weather", "input": {"city": "Paris"}}])
    msg = client(fake_upstream).messages.create(model=MODEL, max_tokens=100, messages=user("weather?"))
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    assert msg.content[0].text == "Let me check."
    assert msg.content[1].name == "get_weather" and msg.content[1].input == {"city": "Paris"}
    assert msg.stop_reason == "tool_use"
    # The queue is consumed: the next request gets the default answer.
    again = client(fake_upstream).messages.create(model=MODEL, max_tokens=100, messages=user("again"))
    assert again.content[0].text == ECHO_PREFIX + "again"


def test_parallel_tool_directives_stream_indexes(fake_upstream):
    prompt = '[[fake:text On it.]] [[fake:tool A {}]] [[fake:tool B {"x": 1}]]'
    with client(fake_upstream).messages.stream(model=MODEL, max_tokens=100, messages=user(prompt)) as stream:
        final = stream.get_final_message()
    assert [(b.type, getattr(b, "name", None)) for b in final.content] == [
        ("text", None),
        ("tool_use", "A"),
        ("tool_use", "B"),
    ]
    assert final.content[2].input == {"x": 1}


async def test_thinking_stream_and_signature_check(fake_upstream, http):
    url = fake_upstream.base_url + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 100, "messages": user("[[fake:thinking I should greet.]] hi"), "stream": True}
    frames = await sse_frames(http, url, body, ANTHROPIC_HEADERS)
    data = [json.loads(f.data) for f in frames]
    assert data[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    block0 = [d["delta"] for d in data if d["type"] == "content_block_delta" and d["index"] == 0]
    assert [d["type"] for d in block0][-1] == "signature_delta"
    assert {d["type"] for d in block0[:-1]} == {"thinking_delta"}
    thinking = "".join(d["thinking"] for d in block0[:-1])
    assert thinking == "I should greet."
    assert block0[-1]["signature"] == sign(thinking)
    assert [d["content_block"]["type"] for d in data if d["type"] == "content_block_start"] == ["thinking", "text"]

    history = [
        *user("hi"),
        {"role": "assistant", "content": [{"type": "thinking", "thinking": thinking, "signature": sign(thinking)}]},
        *user("and now?"),
    ]
    ok = await http.post(url, json={"model": MODEL, "max_tokens": 50, "messages": history}, headers=ANTHROPIC_HEADERS)
    assert ok.status_code == 200
    history[1]["content"][0]["thinking"] += " (edited)"
    bad = await http.post(url, json={"model": MODEL, "max_tokens": 50, "messages": history}, headers=ANTHROPIC_HEADERS)
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages.1.content.0: Invalid `signature` in `thinking` block",
    }


def test_thinking_enabled_gives_a_thinking_block(fake_upstream):
    msg = client(fake_upstream).messages.create(
        model=MODEL, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}, messages=user("hi")
    )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].signature == sign(msg.content[0].thinking)


@pytest.mark.parametrize(
    ("model", "thinking", "max_tokens", "problem"),
    [
        ("claude-haiku-4-5", {"type": "adaptive"}, 2000, "'adaptive' is not supported"),
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 500}, 2000, "greater than or equal to 1024"),
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 4000}, 2000, "must be greater than"),
    ],
)
def test_thinking_rules_are_enforced(fake_upstream, model, thinking, max_tokens, problem):
    with pytest.raises(anthropic.BadRequestError) as info:
        client(fake_upstream).messages.create(
            model=model, max_tokens=max_tokens, thinking=thinking, messages=user("hi")
        )
    assert problem in info.value.body["error"]["message"]
    ok = client(fake_upstream).messages.create(
        model="claude-sonnet-4-6", max_tokens=2000, thinking={"type": "adaptive"}, messages=user("hi")
    )
    assert ok.content[0].type == "thinking"


def test_max_tokens_and_stop_sequences(fake_upstream):
    c = client(fake_upstream)
    cut = c.messages.create(model=MODEL, max_tokens=3, messages=user("one two three four"))
    assert cut.content[0].text == "Hello from the"
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    forced = c.messages.create(model=MODEL, max_tokens=100, messages=user("[[fake:max_tokens]] x"))
    assert forced.stop_reason == "max_tokens"
    stopped = c.messages.create(model=MODEL, max_tokens=100, stop_sequences=["upstream"], messages=user("x"))
    assert stopped.content[0].text == "Hello from the fake "
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "upstream"


def test_usage_overrides_and_headers(fake_upstream):
    fake_upstream.script(
        usage={"input_tokens": 7, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50},
        headers={"anthropic-ratelimit-requests-remaining": "99"},
    )
    raw = client(fake_upstream).messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=user("x"))
    msg = raw.parse()
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        7,
        1000,
        50,
    )
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "99"
    assert raw.headers["request-id"].startswith("req_011C")


def test_count_tokens_matches_messages(fake_upstream):
    c = client(fake_upstream)
    kwargs = {
        "model": MODEL,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "t", "description": "d", "input_schema": {"type": "object"}}],
        "messages": user("count me"),
    }
    counted = c.messages.count_tokens(**kwargs)
    msg = c.messages.create(max_tokens=100, **kwargs)
    assert counted.input_tokens == msg.usage.input_tokens > 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "etype", "exc"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (401, "authentication_error", anthropic.AuthenticationError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (404, "not_found_error", anthropic.NotFoundError),
        (413, "request_too_large", anthropic.APIStatusError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.APIStatusError),
    ],
)
def test_error_envelopes(fake_upstream, status, etype, exc):
    fake_upstream.script(error={"status": status})
    with pytest.raises(exc) as info:
        client(fake_upstream).messages.create(model=MODEL, max_tokens=10, messages=user("x"))
    err = info.value
    assert err.status_code == status
    body = err.response.json()
    assert body["type"] == "error" and body["error"]["type"] == etype and body["error"]["message"]
    assert body["request_id"] == err.response.headers["request-id"]
    assert ("retry-after" in err.response.headers) == (status == 429)


async def test_error_directive_with_retry_after_and_key_quote(fake_upstream, http):
    url = fake_upstream.base_url + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": user("[[fake:error 429 retry_after=7 slow down]]")}
    resp = await http.post(url, json=body, headers=ANTHROPIC_HEADERS)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "7"
    assert resp.json()["error"] == {"type": "rate_limit_error", "message": "slow down"}
    fake_upstream.script(error={"status": 401, "message": "invalid key {api_key}"})
    resp = await http.post(url, json={**body, "messages": user("x")}, headers=ANTHROPIC_HEADERS)
    assert resp.json()["error"]["message"] == "invalid key test-key"


async def test_in_stream_error(fake_upstream, http):
    fake_upstream.script(error={"status": 529, "after": 3})
    body = {"model": MODEL, "max_tokens": 10, "messages": user("x"), "stream": True}
    frames = await sse_frames(http, fake_upstream.base_url + "/v1/messages", body, ANTHROPIC_HEADERS)
    assert [f.event for f in frames] == ["message_start", "content_block_start", "ping", "error"]
    assert json.loads(frames[-1].data)["error"] == {"type": "overloaded_error", "message": "Overloaded"}


async def test_validation_and_auth(fake_upstream, http):
    url = fake_upstream.base_url + "/v1/messages"
    no_max = await http.post(url, json={"model": MODEL, "messages": user("x")}, headers=ANTHROPIC_HEADERS)
    assert no_max.status_code == 400
    assert no_max.json()["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert no_max.json()["request_id"].startswith("req_")
    body = {"model": MODEL, "max_tokens": 5, "messages": user("x")}
    missing = await http.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    no_version = await http.post(url, json=body, headers={"x-api-key": "k"})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    fake_upstream.configure(require_key="right")
    wrong = await http.post(url, json=body, headers=ANTHROPIC_HEADERS)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    bearer = await http.post(url, json=body, headers={"authorization": "Bearer right", "anthropic-version": "x"})
    assert bearer.status_code == 200
    fake_upstream.configure(max_body_bytes=10)
    big = await http.post(url, json=body, headers={**ANTHROPIC_HEADERS, "x-api-key": "right"})
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    fake_upstream.script(text="the control API is not limited by max_body_bytes")


def test_bad_directive_is_a_400(fake_upstream):
    with pytest.raises(anthropic.BadRequestError, match="unknown directive"):
        client(fake_upstream).messages.create(model=MODEL, max_tokens=10, messages=user("[[fake:nope]]"))


# --------------------------------------------------------------------------- failure modes


async def test_break_drops_the_connection(fake_upstream, http):
    body = {"model": MODEL, "max_tokens": 100, "messages": user("[[fake:break 3]] x"), "stream": True}
    got: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream(
            "POST", fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS
        ) as r:
            async for chunk in r.aiter_raw():
                got.append(chunk)
    events = b"".join(got).count(b"\n\n")
    assert events == 3
    rec = fake_upstream.last_request("/v1/messages")
    assert rec["broken"] is True
    # The server is fine afterwards.
    fine = await http.post(
        fake_upstream.base_url + "/v1/messages",
        json={**body, "stream": False, "messages": user("x")},
        headers=ANTHROPIC_HEADERS,
    )
    assert fine.status_code == 200


async def test_break_non_streaming(fake_upstream, http):
    fake_upstream.script(break_after=0)
    body = {"model": MODEL, "max_tokens": 100, "messages": user("x")}
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)


async def test_end_after_ends_a_stream_cleanly_before_its_end(fake_upstream, http):
    fake_upstream.script(end_after=3)
    body = {"model": MODEL, "max_tokens": 100, "messages": user("a b c d"), "stream": True}
    r = await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200
    assert r.content.count(b"\n\n") == 3 and b"message_stop" not in r.content
    assert fake_upstream.last_request("/v1/messages")["broken"] is False


async def test_end_after_cuts_a_whole_answer_in_half(fake_upstream, http):
    fake_upstream.script(end_after=0)
    body = {"model": MODEL, "max_tokens": 100, "messages": user("a b c d")}
    r = await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert r.status_code == 200 and r.content.startswith(b'{"id":"msg_01')
    with pytest.raises(ValueError):
        r.json()


@pytest.mark.parametrize("stream", [False, True])
async def test_body_answers_a_page_instead(fake_upstream, http, stream):
    fake_upstream.script(body="<html>Down for maintenance</html>")
    body = {"model": MODEL, "max_tokens": 100, "messages": user("x"), "stream": stream}
    r = await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert (r.status_code, r.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert r.text == "<html>Down for maintenance</html>"
    fake_upstream.script(body='{"half": ')
    url = fake_upstream.base_url + "/v1/chat/completions"
    r = await http.post(url, json={"model": "m", "messages": user("x")}, headers={"authorization": "Bearer k"})
    assert (r.status_code, r.headers["content-type"], r.text) == (200, "application/json", '{"half": ')


async def test_delay_and_stall(fake_upstream, http):
    fake_upstream.script(delay=0.3)
    body = {"model": MODEL, "max_tokens": 100, "messages": user("a b")}
    t0 = time.monotonic()
    await http.post(fake_upstream.base_url + "/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert time.monotonic() - t0 >= 0.3
    fake_upstream.script(stall=0.05, text="one two")
    t0 = time.monotonic()
    frames = await sse_frames(
        http, fake_upstream.base_url + "/v1/messages", {**body, "stream": True}, ANTHROPIC_HEADERS
    )
    assert time.monotonic() - t0 >= 0.05 * (len(frames) - 1)


# --------------------------------------------------------------------------- catalog, recording, control


async def test_models_in_both_shapes(fake_upstream, http):
    url = fake_upstream.base_url + "/v1/models"
    anth = (await http.get(url, headers=ANTHROPIC_HEADERS, params={"limit": 2})).json()
    assert set(anth) == {"data", "has_more", "first_id", "last_id"} and anth["has_more"] is True
    assert [set(m) for m in anth["data"]] == [{"type", "id", "display_name", "created_at"}] * 2
    nxt = (await http.get(url, headers=ANTHROPIC_HEADERS, params={"limit": 2, "after_id": anth["last_id"]})).json()
    assert nxt["first_id"] not in {m["id"] for m in anth["data"]}
    one = (await http.get(f"{url}/{anth['first_id']}", headers=ANTHROPIC_HEADERS)).json()
    assert one["id"] == anth["first_id"]
    oai = (await http.get(url, headers={"authorization": "Bearer k"})).json()
    assert oai["object"] == "list" and all(m["object"] == "model" for m in oai["data"])
    page = client(fake_upstream).models.list(limit=1000)
    assert all("claude" in m.id for m in page.data)


async def test_recording_keeps_headers_and_bytes(fake_upstream, http):
    raw = b'{"model":"%s",  "max_tokens":10,"messages":[{"role":"user","content":"x"}],"zzz_unknown":{"b":1,"a":2}}' % (
        MODEL.encode()
    )
    headers = {**ANTHROPIC_HEADERS, "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}
    resp = await http.post(fake_upstream.base_url + "/v1/messages?beta=true", content=raw, headers=headers)
    assert resp.status_code == 200
    rec = fake_upstream.last_request("/v1/messages")
    assert rec["method"] == "POST" and rec["query"] == "beta=true" and rec["protocol"] == "anthropic"
    assert rec["headers"]["anthropic-beta"] == headers["anthropic-beta"]
    assert rec["raw_body"].encode() == raw
    assert rec["body"]["zzz_unknown"] == {"b": 1, "a": 2}
    assert rec["status"] == 200
    fake_upstream.reset()
    assert fake_upstream.requests() == []


async def test_control_api_validation_and_queue(fake_upstream, http):
    bad = await http.post(fake_upstream.base_url + "/_fake/script", json={"txet": "typo"})
    assert bad.status_code == 400 and "txet" in bad.json()["error"]
    fake_upstream.script({"text": "only for haiku", "match": {"model": "haiku-4-5-x"}}, {"text": "second", "times": 2})
    assert [p["remaining"] for p in fake_upstream.pending()] == [1, 2]
    c = client(fake_upstream)
    assert c.messages.create(model=MODEL, max_tokens=10, messages=user("x")).content[0].text == "second"
    assert c.messages.create(model="claude-haiku-4-5-x", max_tokens=10, messages=user("x")).content[0].text == (
        "only for haiku"
    )
    assert c.messages.create(model=MODEL, max_tokens=10, messages=user("x")).content[0].text == "second"
    assert fake_upstream.pending() == []
    health = await http.get(fake_upstream.base_url + "/_fake/health")
    assert health.json() == {"ok": True}
    assert (await http.head(fake_upstream.base_url + "/")).status_code == 200


def test_thread_mode_and_require_key():
    with run_fake_upstream(in_thread=True, require_key="sekrit") as fake:
        with pytest.raises(anthropic.AuthenticationError):
            client(fake).messages.create(model=MODEL, max_tokens=10, messages=user("x"))
        ok = anthropic.Anthropic(base_url=fake.base_url, api_key="sekrit", max_retries=0)
        assert ok.messages.create(model=MODEL, max_tokens=10, messages=user("x")).stop_reason == "end_turn"


async def test_in_process_asgi_app():
    app = create_app()
    app.script(text="in process")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as c:
        body = {"model": MODEL, "max_tokens": 10, "messages": user("x")}
        resp = await c.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert resp.json()["content"][0]["text"] == "in process"
    assert app.requests("/v1/messages")[0]["body"] == body
    assert orjson.loads(app.state.records[0].body) == body


async def test_coalesced_stream_has_the_same_events(fake_upstream, http):
    body = {"model": MODEL, "max_tokens": 100, "messages": user("same events please"), "stream": True}
    url = fake_upstream.base_url + "/v1/messages"
    normal = await sse_frames(http, url, body, ANTHROPIC_HEADERS)
    fake_upstream.configure(coalesce_stream=True)
    coalesced = await sse_frames(http, url, body, ANTHROPIC_HEADERS)
    strip = [(f.event, f.data) for f in normal[1:]]
    assert [(f.event, f.data) for f in coalesced[1:]] == strip
