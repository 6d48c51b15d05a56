"""Shared fixtures: one fake upstream and one real gateway process for the whole run.

The gateway's config routes several model names to differently configured
providers, so that one process covers passthrough, translation, aliases,
timeouts and unreachable upstreams.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import anthropic
import httpx
import pytest

from modelgate.testing.gateway_runner import GatewayProcess, free_port, run_gateway
from modelgate.testing.runner import FakeUpstream, run_fake_upstream

if TYPE_CHECKING:
    from modelgate.app import Gateway

MASTER_KEY = "mg-test-master-key"
UPSTREAM_KEY = "sk-upstream-secret-0123456789"
MAX_BODY = 200_000


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with run_fake_upstream(require_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def fake(upstream: FakeUpstream) -> FakeUpstream:
    """The fake upstream, with no scripts and no recordings."""
    upstream.reset()
    return upstream


def gateway_config(fake: FakeUpstream) -> dict:
    def provider(name: str, kind: str, base_url: str, **extra) -> dict:
        return {"name": name, "type": kind, "base_url": base_url, "api_keys": [UPSTREAM_KEY], **extra}

    return {
        # A data directory of its own (the store, a generated master key): never ./data.
        "server": {"max_body_bytes": MAX_BODY, "stream_ping_interval": 0.4, "data_dir": tempfile.mkdtemp(prefix="mg-")},
        # Each upstream failure reaches the client as the upstream said it (the error tests
        # are about that); the router's tests build gateways that retry (test_chain_retries.py, …).
        "router": {"attempts": 1},
        "providers": [
            provider("anth", "anthropic", fake.anthropic_base_url),
            provider("local", "openai-compatible", fake.openai_base_url),
            provider("anth-slow", "anthropic", fake.anthropic_base_url, read_timeout=1.0, first_byte_timeout=1.0),
            provider("local-slow", "openai-compatible", fake.openai_base_url, read_timeout=1.0),
            provider("dead", "anthropic", f"http://127.0.0.1:{free_port()}", connect_timeout=2.0),
            provider("oai", "openai", fake.openai_base_url),
            provider("gem", "gemini", fake.base_url),
        ],
        "models": [
            {"name": "claude-sonnet-4-6", "provider": "anth", "display_name": "Claude Sonnet 4.6"},
            {"name": "claude-haiku-4-5", "provider": "anth"},
            {"name": "claude-*", "provider": "anth"},
            {"name": "sonnet", "provider": "anth", "upstream_model": "claude-sonnet-4-6"},
            {"name": "qwen-local", "provider": "local", "upstream_model": "qwen2.5:0.5b", "max_output_tokens": 4096},
            {"name": "slow-model", "provider": "anth-slow"},
            {"name": "slow-local", "provider": "local-slow"},
            {"name": "dead-model", "provider": "dead"},
            {"name": "gpt-4o", "provider": "oai"},
            {"name": "gpt-5-codex", "provider": "oai"},
            {"name": "gpt-5-mini", "provider": "oai", "api": "responses"},
            {"name": "gemini-2.5-flash", "provider": "gem", "display_name": "Gemini 2.5 Flash"},
            {"name": "flash", "provider": "gem", "upstream_model": "gemini-2.5-flash"},
            {"name": "gemini-*", "provider": "gem"},
        ],
    }


@pytest.fixture(scope="session")
def gateway(upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    with run_gateway(gateway_config(upstream), master_key=MASTER_KEY) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=gateway.base_url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Gateway]:
    """A gateway of the shared test config, built and started in this process; the fake reset."""
    from tests.pipeline.helpers import running_gateway  # the helpers import this module

    async with running_gateway(fake) as gateway:
        yield gateway


@pytest.fixture
async def ac(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``gw`` over ASGI (no socket)."""
    from tests.pipeline.helpers import asgi_client

    async with asgi_client(gw) as client:
        yield client
