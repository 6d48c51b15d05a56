"""Bad input and failing upstreams at the OpenAI Chat front door: OpenAI's envelope
``{"error": {"message", "type", "param", "code"}}``, OpenAI's statuses, ``x-request-id``; after
the 200, a ``data: {"error": ...}`` chunk that the SDK raises."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import orjson
import pytest

from tests.conftest import MASTER_KEY, MAX_BODY, UPSTREAM_KEY

USER = [{"role": "user", "content": "Hello there"}]
PATH = "/v1/chat/completions"


@pytest.fixture
def post(gateway) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=gateway.base_url, headers=headers, timeout=30) as c:
        yield c


def envelope(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert r.headers["x-request-id"].startswith("req_")
    return body["error"]


@pytest.mark.parametrize(
    ("content", "message", "param", "code"),
    [
        (b"{not json", "We could not parse the JSON body of your request", None, None),
        (b"", "We could not parse the JSON body of your request", None, None),
        (b"[1, 2]", "The request body must be a JSON object.", None, None),
        (b'{"messages": []}', "you must provide a model parameter", None, None),
        (b'{"model": "claude-sonnet-4-6"}', "Missing required parameter: 'messages'.", "messages",
         "missing_required_parameter"),
        (b'{"model": "claude-sonnet-4-6", "messages": []}', "Invalid 'messages': empty array.", "messages",
         "empty_array"),
        (b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}], "stream": 1}',
         "Invalid type for 'stream'", "stream", "invalid_type"),
        (b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": 5}]}',
         "Invalid type for 'messages[0].content'", "messages[0].content", "invalid_type"),
        (b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}], "n": 3}',
         "n: only n=1 is supported", "n", "unsupported_value"),
    ],
)  # fmt: skip
def test_bad_requests_are_400(post: httpx.Client, fake, content: bytes, message: str, param, code) -> None:
    r = post.post(PATH, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    error = envelope(r)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert error["message"].startswith(message)
    assert fake.requests("/v1/messages") == []


def test_n_above_one_through_the_sdk(chat: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat.chat.completions.create(model="claude-sonnet-4-6", messages=USER, n=2)
    assert info.value.body == {
        "message": "n: only n=1 is supported",
        "type": "invalid_request_error",
        "param": "n",
        "code": "unsupported_value",
    }


def test_unknown_model_is_404_model_not_found(chat: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        chat.chat.completions.create(model="gpt-nothing", messages=USER)
    assert info.value.body == {
        "message": "The model `gpt-nothing` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


def test_missing_key_is_401(gateway) -> None:
    r = httpx.post(gateway.base_url + PATH, json={"model": "claude-sonnet-4-6", "messages": USER})
    assert r.status_code == 401
    error = envelope(r)
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["code"]) == ("invalid_request_error", None)


def test_wrong_key_is_401_invalid_api_key(gateway) -> None:
    with (
        openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="sk-wrong-key-1234", max_retries=0) as c,
        pytest.raises(openai.AuthenticationError) as info,
    ):
        c.chat.completions.create(model="claude-sonnet-4-6", messages=USER)
    assert info.value.body == {
        "message": "Incorrect API key provided: sk-**********1234.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


def test_wrong_key_beats_bad_body(gateway) -> None:
    r = httpx.post(gateway.base_url + PATH, content=b"{oops", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and envelope(r)["code"] == "invalid_api_key"


def test_body_over_the_limit_is_413(post: httpx.Client, fake) -> None:
    big = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    r = post.post(PATH, json=big)
    assert r.status_code == 413
    assert (envelope(r)["type"], envelope(r)["code"]) == ("invalid_request_error", "request_too_large")
    assert fake.requests("/v1/messages") == []


def test_wrong_method_answers_in_openai_envelope(post: httpx.Client) -> None:
    r = post.get(PATH)
    assert r.status_code == 405 and envelope(r)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("status", "expected_status", "etype", "code", "exc"),
    [
        (400, 400, "invalid_request_error", None, openai.BadRequestError),
        (403, 403, "permission_error", None, openai.PermissionDeniedError),
        (429, 429, "rate_limit_error", "rate_limit_exceeded", openai.RateLimitError),
        (500, 500, "server_error", None, openai.InternalServerError),
        (529, 503, "service_unavailable_error", "server_is_overloaded", openai.InternalServerError),
    ],
)
def test_anthropic_upstream_errors_are_mapped(chat, fake, status, expected_status, etype, code, exc) -> None:
    fake.script(error={"status": status, "message": f"upstream says {status}", "retry_after": 7})
    with pytest.raises(exc) as info:
        chat.chat.completions.create(model="claude-sonnet-4-6", messages=USER)
    assert info.value.status_code == expected_status
    assert info.value.body == {"message": f"upstream says {status}", "type": etype, "param": None, "code": code}
    if status in (429, 529):
        assert info.value.response.headers["retry-after"] == "7"


def test_prompt_too_long_gets_openai_code(chat: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"})
    with pytest.raises(openai.BadRequestError) as info:
        chat.chat.completions.create(model="claude-sonnet-4-6", messages=USER)
    assert info.value.code == "context_length_exceeded"


def test_provider_key_quoted_by_upstream_is_redacted(post: httpx.Client, fake) -> None:
    fake.script(error={"status": 401, "message": "invalid key {api_key}"})
    r = post.post(PATH, json={"model": "claude-sonnet-4-6", "messages": USER})
    assert r.status_code == 401 and UPSTREAM_KEY not in r.text and "[redacted]" in r.text


def test_connection_refused_is_502(chat: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        chat.chat.completions.create(model="dead-model", messages=USER)
    assert info.value.status_code == 502 and info.value.body["type"] == "server_error"


def test_upstream_silence_is_504(chat: openai.OpenAI, fake) -> None:
    fake.script(delay=3)
    with pytest.raises(openai.APIStatusError) as info:
        chat.chat.completions.create(model="slow-model", messages=USER)
    assert info.value.status_code == 504 and info.value.body["type"] == "timeout_error"


def stream_frames(r: httpx.Response) -> list[str]:
    return [f for f in r.text.split("\n\n") if f.startswith("data: ")]


def test_stream_broken_halfway_ends_with_an_error_chunk(post: httpx.Client, fake) -> None:
    fake.script(words=40, break_after=5)
    r = post.post(PATH, json={"model": "claude-sonnet-4-6", "messages": USER, "stream": True})
    assert r.status_code == 200
    frames = stream_frames(r)
    assert "[DONE]" not in r.text and '"finish_reason":"stop"' not in r.text
    error = orjson.loads(frames[-1].removeprefix("data: "))["error"]
    assert (error["type"], error["param"], error["code"]) == ("server_error", None, None)


def test_stream_error_raises_in_the_sdk(chat: openai.OpenAI, fake) -> None:
    fake.script(words=40, error={"status": 529, "after": 4, "message": "Overloaded"})
    stream = chat.chat.completions.create(model="claude-sonnet-4-6", messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert info.value.message == "Overloaded"
    assert info.value.body == {
        "message": "Overloaded",
        "type": "service_unavailable_error",
        "param": None,
        "code": "server_is_overloaded",
    }


def test_stream_silent_midway_times_out_with_an_error_chunk(post: httpx.Client, fake) -> None:
    fake.script(words=5, stall=2)
    r = post.post(PATH, json={"model": "slow-model", "messages": USER, "stream": True})
    error = orjson.loads(stream_frames(r)[-1].removeprefix("data: "))["error"]
    assert error["type"] == "timeout_error" and "[DONE]" not in r.text


def test_errors_before_the_stream_starts_are_plain_responses(post: httpx.Client, fake) -> None:
    fake.script(error={"status": 529, "message": "Overloaded"})
    r = post.post(PATH, json={"model": "claude-sonnet-4-6", "messages": USER, "stream": True})
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
    assert envelope(r)["code"] == "server_is_overloaded"
