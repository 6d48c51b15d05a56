"""The request log of a real gateway process, called with the Anthropic SDK: each request leaves
one record in the store with what an operator needs, a streamed one its time to first token."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from modelgate.store import Database, RequestRecord, RequestStore, default_url
from modelgate.testing.gateway_runner import GatewayProcess, run_gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, gateway_config


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mg-records-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def process(upstream: FakeUpstream, data_dir: Path) -> Iterator[GatewayProcess]:
    config = gateway_config(upstream)
    config["server"] = {**config["server"], "data_dir": str(data_dir)}
    config["tenancy"] = {"ledger_flush_seconds": 0.05}
    with run_gateway(config, master_key=MASTER_KEY) as gw:
        yield gw


def record_of(data_dir: Path, session_id: str) -> RequestRecord:
    """The one record of the session ``session_id`` (each test names its own), once the
    gateway's writer has written it (within seconds)."""

    async def read() -> list[RequestRecord]:
        async with Database(default_url(data_dir)) as db:
            return await RequestStore(db).list(session_id=session_id)

    deadline = time.monotonic() + 10
    while True:
        found = asyncio.run(read())
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"records of {session_id}: {found}"
            return found[0]
        time.sleep(0.05)


def sdk(gw: GatewayProcess, session_id: str) -> anthropic.Anthropic:
    headers = {"x-claude-code-session-id": session_id}
    return anthropic.Anthropic(base_url=gw.base_url, api_key=MASTER_KEY, max_retries=0, default_headers=headers)


def test_a_request_through_the_sdk_leaves_one_record(
    process: GatewayProcess, data_dir: Path, fake: FakeUpstream
) -> None:
    fake.script(tool_calls=[{"name": "Bash", "input": {"command": "ls"}}])
    with sdk(process, "sdk-whole") as client:
        raw = client.messages.with_raw_response.create(
            model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    message = raw.parse()
    rec = record_of(data_dir, "sdk-whole")
    assert (rec.key_id, rec.door, rec.endpoint, rec.model, rec.served_model, rec.provider) == (
        None,
        "anthropic",
        "messages",
        "sonnet",
        "claude-sonnet-4-6",
        "anth",
    )
    assert (rec.stream, rec.status, rec.stop_reason, rec.tool_calls, rec.session_id) == (
        False,
        200,
        "tool_use",
        1,
        "sdk-whole",
    )
    assert rec.user_agent is not None and rec.user_agent.startswith("Anthropic/Python")
    assert rec.client_ip == "127.0.0.1"
    assert (rec.input_tokens, rec.output_tokens) == (message.usage.input_tokens, message.usage.output_tokens)
    assert [(a["provider"], a["model"], a["status"], a["passthrough"]) for a in rec.attempts] == [
        ("anth", "claude-sonnet-4-6", 200, True)
    ]
    assert rec.attempts[0]["upstream_request_id"] == raw.headers["request-id"]


def test_a_streamed_request_records_its_time_to_first_token(
    process: GatewayProcess, data_dir: Path, fake: FakeUpstream
) -> None:
    fake.script(words=40, stall=0.01)
    with (
        sdk(process, "sdk-stream") as client,
        client.messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        final = stream.get_final_message()
    rec = record_of(data_dir, "sdk-stream")
    assert (rec.stream, rec.status, rec.stop_reason, rec.output_tokens) == (
        True,
        200,
        "end_turn",
        final.usage.output_tokens,
    )
    assert rec.ttft_ms is not None and rec.ttft_ms < rec.latency_ms
    assert rec.latency_ms - rec.ttft_ms >= 300  # 40 words, 10 ms apart, after the first byte
