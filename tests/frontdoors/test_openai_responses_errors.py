"""Responses front door: bad input, failing upstreams and refused transports, in OpenAI's envelope."""

from __future__ import annotations

import base64
import os
import socket

import httpx
import openai
import pytest

from tests.conftest import MASTER_KEY, MAX_BODY

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def envelope(r: httpx.Response) -> dict:
    assert r.headers["x-request-id"].startswith("req_")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize(
    ("content", "param", "code", "message"),
    [
        (b"{not json", None, None, "We could not parse the JSON body"),
        (b'{"input": "x"}', "model", "missing_required_parameter", "Missing required parameter: 'model'."),
        (b'{"model": 5, "input": "x"}', "model", "invalid_type", "Invalid type for 'model'"),
        (b'{"model": "claude-sonnet-4-6"}', "input", "missing_required_parameter", "'input'"),
        (b'{"model": "claude-sonnet-4-6", "input": 5}', "input", "invalid_type", "Invalid type for 'input'"),
        (
            b'{"model": "claude-sonnet-4-6", "input": "x", "max_output_tokens": 8}',
            "max_output_tokens",
            "integer_below_min_value",
            "Expected a value >= 16, but got 8 instead.",
        ),
        (
            b'{"model": "claude-sonnet-4-6", "input": "x", "previous_response_id": "resp_1"}',
            "previous_response_id",
            "unsupported_parameter",
            "served without stored responses",
        ),
        (
            b'{"model": "qwen-local", "input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}',
            "tools[0].type",
            "unsupported_value",
            "'file_search' run on OpenAI's servers",
        ),
        (
            b'{"model": "claude-sonnet-4-6", "input": [{"role": "user", "content": '
            b'[{"type": "input_image", "file_id": "file-1"}]}]}',
            "input[0].content[0].file_id",
            "unsupported_parameter",
            "uploaded files cannot be resolved",
        ),
        (
            b'{"model": "claude-sonnet-4-6", "input": [{"type": "item_reference", "id": "msg_1"}]}',
            "input[0]",
            "unsupported_parameter",
            "item references cannot be resolved",
        ),
        (
            b'{"model": "claude-sonnet-4-6", "input": "x", "stream": "yes"}',
            "stream",
            "invalid_type",
            "Invalid type for 'stream'",
        ),
    ],
)
def test_bad_requests_are_400(gateway, content: bytes, param, code, message: str) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    r = httpx.post(gateway.base_url + "/v1/responses", content=content, headers=headers)
    assert r.status_code == 400, r.text
    err = envelope(r)
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)
    assert message in err["message"]


def test_unknown_model_is_404(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        oai.responses.create(model="gpt-nothing", input="x")
    assert info.value.body == {
        "message": "The model `gpt-nothing` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


def test_missing_and_wrong_keys_are_401(gateway) -> None:
    body = {"model": "claude-sonnet-4-6", "input": "x"}
    missing = httpx.post(gateway.base_url + "/v1/responses", json=body)
    assert missing.status_code == 401 and "didn't provide an API key" in envelope(missing)["message"]
    wrong = httpx.post(gateway.base_url + "/v1/responses", json=body, headers={"authorization": "Bearer sk-wrong-1234"})
    assert wrong.status_code == 401 and envelope(wrong)["code"] == "invalid_api_key"
    assert "sk-wrong-1234" not in wrong.text


def test_body_over_the_limit_is_413(gateway, fake) -> None:
    big = {"model": "claude-sonnet-4-6", "input": "x" * MAX_BODY}
    r = httpx.post(gateway.base_url + "/v1/responses", json=big, headers=AUTH)
    assert r.status_code == 413 and envelope(r)["type"] == "invalid_request_error"
    assert fake.requests("/v1/messages") == []


@pytest.mark.parametrize(
    ("status", "exc", "etype"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (429, openai.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error"),
        (529, openai.InternalServerError, "service_unavailable_error"),
    ],
)
def test_anthropic_errors_are_mapped(oai: openai.OpenAI, fake, status: int, exc: type, etype: str) -> None:
    fake.script(error={"status": status, "retry_after": 2})
    with pytest.raises(exc) as info:
        oai.responses.create(model="claude-sonnet-4-6", input="x")
    assert info.value.status_code == (503 if status == 529 else status)
    assert info.value.body["type"] == etype and info.value.response.headers["retry-after"] == "2"


def test_context_overflow_gets_openai_code(oai: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"})
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model="claude-sonnet-4-6", input="x")
    assert info.value.body["code"] == "context_length_exceeded"


def test_broken_translated_stream_ends_with_response_failed(oai: openai.OpenAI, fake) -> None:
    fake.script(break_after=5)
    with oai.responses.create(model="claude-sonnet-4-6", input="hello there", stream=True) as stream:
        events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    assert "response.completed" not in [e.type for e in events]
    failed = events[-1].response
    assert failed.status == "failed" and failed.id == events[0].response.id and failed.error.code == "server_error"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_in_stream_upstream_error_becomes_response_failed(oai: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 429, "after": 3, "message": "Number of request tokens has exceeded your limit"})
    with oai.responses.create(model="claude-sonnet-4-6", input="hello", stream=True) as stream:
        events = list(stream)
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "rate_limit_exceeded"
    assert "exceeded your limit" in events[-1].response.error.message


def test_translated_stream_whose_first_event_is_an_error_fails_before_it_starts(oai: openai.OpenAI, fake) -> None:
    fake.script(error={"status": 500, "after": 0, "message": "boom"})
    with pytest.raises(openai.InternalServerError) as info:
        oai.responses.create(model="qwen-local", input="hello", stream=True)
    assert info.value.status_code == 500
    assert info.value.body == {"message": "boom", "type": "server_error", "param": None, "code": None}


def test_websocket_handshake_is_refused_with_426(gateway) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /v1/responses HTTP/1.1\r\nHost: {gateway.host}:{gateway.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {MASTER_KEY}\r\n\r\n"
    )
    with socket.create_connection((gateway.host, gateway.port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = sock.recv(65536).decode(errors="replace")
    assert head.startswith("HTTP/1.1 426 ")
    assert "websocket_not_supported" in head


def test_plain_get_is_426_and_stored_responses_are_404(gateway) -> None:
    r = httpx.get(gateway.base_url + "/v1/responses", headers=AUTH)
    assert r.status_code == 426 and envelope(r)["code"] == "websocket_not_supported"
    for method, path in (("GET", "/v1/responses/resp_1"), ("DELETE", "/v1/responses/resp_1")):
        r = httpx.request(method, gateway.base_url + path, headers=AUTH)
        assert r.status_code == 404 and envelope(r)["message"] == "Response with id 'resp_1' not found."
    r = httpx.post(gateway.base_url + "/v1/responses/resp_1/cancel", headers=AUTH)
    assert r.status_code == 404
    assert httpx.get(gateway.base_url + "/v1/responses/resp_1").status_code == 401


def test_compact_errors(oai: openai.OpenAI, fake) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.responses.compact(model="gpt-nothing", input="x")
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.compact(model="claude-sonnet-4-6", input="x", previous_response_id="resp_1")
    assert info.value.body["param"] == "previous_response_id"
    fake.script(error={"status": 529})
    with pytest.raises(openai.InternalServerError) as overloaded:
        oai.responses.compact(model="claude-sonnet-4-6", input="x")
    assert overloaded.value.status_code == 503
