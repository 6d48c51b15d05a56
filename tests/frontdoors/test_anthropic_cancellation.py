"""A client that goes away cancels the upstream request, streaming or not, on both paths."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import MASTER_KEY

USER = [{"role": "user", "content": "Hello there"}]
MODELS = ["claude-sonnet-4-6", "qwen-local"]


def wait_for_record(fake, predicate, timeout: float = 3.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in fake.requests() if r["path"] in ("/v1/messages", "/v1/chat/completions")]
        if records and predicate(records[-1]):
            return records[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"upstream record never matched: {records[-1:] if records else 'none'}")
        time.sleep(0.05)


@pytest.mark.parametrize("model", MODELS)
def test_completed_requests_are_not_marked_disconnected(http: httpx.Client, fake, model: str) -> None:
    assert http.post("/v1/messages", json={"model": model, "max_tokens": 50, "messages": USER}).status_code == 200
    record = wait_for_record(fake, lambda r: r["status"] == 200)
    assert record["disconnected"] is False


@pytest.mark.parametrize("model", MODELS)
def test_leaving_a_stream_cancels_the_upstream_stream(gateway, fake, model: str) -> None:
    fake.script(words=50, stall=0.3)
    body = {"model": model, "max_tokens": 100, "stream": True, "messages": USER}
    with httpx.stream("POST", gateway.base_url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}) as r:
        assert next(r.iter_lines()) == "event: message_start"
    wait_for_record(fake, lambda r: r["disconnected"])


@pytest.mark.parametrize("model", MODELS)
def test_leaving_before_the_answer_cancels_the_upstream_request(gateway, fake, model: str) -> None:
    fake.script(delay=5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.base_url + "/v1/messages",
            json={"model": model, "max_tokens": 50, "messages": USER},
            headers={"x-api-key": MASTER_KEY},
            timeout=0.5,
        )
    wait_for_record(fake, lambda r: r["disconnected"])
