"""Bad input and failing upstreams: each gets Anthropic's envelope and status, or an SSE error event."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.conftest import MAX_BODY, UPSTREAM_KEY

USER = [{"role": "user", "content": "Hello there"}]


def envelope(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    assert body["type"] == "error"
    assert body["request_id"] == r.headers["request-id"]
    return r.status_code, body["error"]["type"], body["error"]["message"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"", "request body is empty"),
        (b"[1, 2]", "Request body must be a JSON object"),
        (b'{"model": "claude-sonnet-4-6", "messages": []}', "max_tokens: Field required"),
        (
            b'{"model": "claude-sonnet-4-6", "max_tokens": "x", "messages": []}',
            "max_tokens: Input should be a valid integer",
        ),
        (b'{"model": 5, "max_tokens": 1, "messages": []}', "model: Input should be a valid string"),
        (
            b'{"model": "qwen-local", "max_tokens": 9, "messages": [{"role": "user", "content": 5}]}',
            "messages.0.content",
        ),
    ],
)
def test_bad_requests_are_400(http: httpx.Client, content: bytes, message: str) -> None:
    r = http.post("/v1/messages", content=content, headers={"content-type": "application/json"})
    status, kind, text = envelope(r)
    assert (status, kind) == (400, "invalid_request_error")
    assert message in text


def test_unknown_model_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="gpt-nothing", max_tokens=5, messages=USER)
    assert info.value.body["error"]["type"] == "not_found_error"
    assert "no provider serves model 'gpt-nothing'" in info.value.body["error"]["message"]


def test_missing_and_wrong_keys_are_401(gateway) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": USER}
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
        r = httpx.post(gateway.base_url + "/v1/messages", json=body, headers=headers)
        assert envelope(r)[:2] == (401, "authentication_error")


def test_wrong_key_beats_bad_body(gateway) -> None:
    r = httpx.post(gateway.base_url + "/v1/messages", content=b"{oops", headers={"x-api-key": "wrong"})
    assert envelope(r)[:2] == (401, "authentication_error")


def test_body_over_the_limit_is_413(http: httpx.Client, fake) -> None:
    big = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    r = http.post("/v1/messages", json=big)
    assert envelope(r)[:2] == (413, "request_too_large")
    assert fake.requests("/v1/messages") == []


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert envelope(http.get("/v1/nothing"))[:2] == (404, "not_found_error")
    assert envelope(http.get("/v1/messages"))[:2] == (405, "invalid_request_error")


@pytest.mark.parametrize(
    ("status", "kind", "exc"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (403, "permission_error", anthropic.PermissionDeniedError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (500, "api_error", anthropic.InternalServerError),
        (529, "overloaded_error", anthropic.InternalServerError),
    ],
)
@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_upstream_errors_keep_status_and_type(client, fake, model: str, status: int, kind: str, exc) -> None:
    fake.script(error={"status": status, "message": f"upstream says {status}", "retry_after": 7})
    with pytest.raises(exc) as info:
        client.messages.create(model=model, max_tokens=5, messages=USER)
    assert info.value.status_code == status
    assert info.value.body["error"]["type"] == kind
    assert info.value.body["error"]["message"] == f"upstream says {status}"
    if status == 429:
        assert info.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_provider_key_quoted_by_upstream_is_redacted(http: httpx.Client, fake, model: str) -> None:
    fake.script(error={"status": 401, "message": "invalid key {api_key}"})
    r = http.post("/v1/messages", json={"model": model, "max_tokens": 5, "messages": USER})
    assert r.status_code == 401
    assert UPSTREAM_KEY not in r.text and "[redacted]" in r.text


def test_connection_refused_is_502(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="dead-model", max_tokens=5, messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("model", ["slow-model", "slow-local"])
def test_upstream_silence_is_504(client: anthropic.Anthropic, fake, model: str) -> None:
    fake.script(delay=3)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=model, max_tokens=5, messages=USER)
    assert info.value.status_code == 504
    assert info.value.body["error"]["type"] == "timeout_error"


def last_data(text: str) -> str:
    return [line for line in text.splitlines() if line.startswith("data: ")][-1]


def sse_events(text: str) -> list[str]:
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_stream_broken_halfway_ends_with_an_error_event(http: httpx.Client, fake, model: str) -> None:
    fake.script(words=40, break_after=5)
    r = http.post("/v1/messages", json={"model": model, "max_tokens": 100, "stream": True, "messages": USER})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[0] == "message_start" and events[-1] == "error"
    assert "message_stop" not in events
    assert '"type":"api_error"' in last_data(r.text)


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "qwen-local"])
def test_stream_error_raises_in_the_sdk(client: anthropic.Anthropic, fake, model: str) -> None:
    fake.script(words=40, error={"status": 529, "after": 4, "message": "Overloaded"})
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model=model, max_tokens=100, messages=USER) as stream,
    ):
        for _ in stream:
            pass
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize("model", ["slow-model", "slow-local"])
def test_stream_silent_midway_times_out_with_an_error_event(http: httpx.Client, fake, model: str) -> None:
    fake.script(words=5, stall=2)
    r = http.post("/v1/messages", json={"model": model, "max_tokens": 100, "stream": True, "messages": USER})
    events = sse_events(r.text)
    assert events[0] == "message_start" and events[-1] == "error"
    assert '"type":"timeout_error"' in last_data(r.text)


def test_errors_before_the_stream_starts_are_plain_responses(http: httpx.Client, fake) -> None:
    fake.script(error={"status": 529, "message": "Overloaded"})
    r = http.post(
        "/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 9, "stream": True, "messages": USER}
    )
    assert envelope(r)[:2] == (529, "overloaded_error")
