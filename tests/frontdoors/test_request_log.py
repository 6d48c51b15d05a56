"""The served gateway writes one log line per request (``modelgate serve`` wires the logger):
checked in the log of the real server process, for a whole answer, a stream and a failure."""

from __future__ import annotations

import re
import time

import anthropic
import httpx

from modelgate.testing.gateway_runner import GatewayProcess

USER = [{"role": "user", "content": "Hello there"}]


def log_lines(gateway: GatewayProcess, request_id: str, field: str = "request_id") -> list[str]:
    """The request's log lines; a stream settles just after its last byte, so wait a little."""
    deadline = time.monotonic() + 3
    while True:
        lines = [line for line in gateway.output().splitlines() if f" {field}={request_id} " in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line.partition("modelgate.request: ")[2]))


def test_a_whole_answer_writes_one_line(client: anthropic.Anthropic, gateway: GatewayProcess, fake) -> None:
    raw = client.messages.with_raw_response.create(model="sonnet", max_tokens=50, messages=USER)
    message = raw.parse()
    # A relayed answer carries the upstream's own request id, which the line records beside the
    # gateway's (the fake's ids repeat across its resets: the latest line is this request's).
    line = log_lines(gateway, raw.headers["request-id"], "upstream_request_id")[-1]
    seen = fields(line)
    assert seen["request_id"].startswith("req_") and seen["request_id"] != raw.headers["request-id"]
    assert log_lines(gateway, seen["request_id"]) == [line]
    assert " INFO modelgate.request: " in line
    assert {k: seen[k] for k in ("door", "endpoint", "model", "served", "provider", "key", "path", "status")} == {
        "door": "anthropic",
        "endpoint": "messages",
        "model": "sonnet",
        "served": "claude-sonnet-4-6",
        "provider": "anth",
        "key": "anth#0",
        "path": "passthrough",
        "status": "200",
    }
    assert seen["input_tokens"] == str(message.usage.input_tokens)
    assert seen["output_tokens"] == str(message.usage.output_tokens)
    assert seen["ended"] == "true" and seen["stop"] == "end_turn" and float(seen["latency_ms"]) > 0


def test_a_translated_stream_writes_one_line(client: anthropic.Anthropic, gateway: GatewayProcess, fake) -> None:
    with client.messages.stream(model="qwen-local", max_tokens=50, messages=USER) as stream:
        request_id = stream.response.headers["request-id"]
        final = stream.get_final_message()
    [line] = log_lines(gateway, request_id)
    seen = fields(line)
    assert (seen["path"], seen["stream"], seen["served"], seen["ended"]) == (
        "translated",
        "true",
        "qwen2.5:0.5b",
        "true",
    )
    assert seen["output_tokens"] == str(final.usage.output_tokens)
    assert float(seen["ttfb_ms"]) <= float(seen["latency_ms"])


def test_a_failure_writes_its_kind_and_the_same_request_id(http: httpx.Client, gateway: GatewayProcess) -> None:
    r = http.post("/v1/messages", json={"model": "no-such-model", "max_tokens": 5, "messages": USER})
    assert r.status_code == 404
    request_id = r.headers["request-id"]
    assert r.json()["request_id"] == request_id
    [line] = log_lines(gateway, request_id)
    seen = fields(line)
    assert (seen["status"], seen["error"], seen["attempts"], seen["model"]) == (
        "404",
        "not_found",
        "0",
        "no-such-model",
    )
