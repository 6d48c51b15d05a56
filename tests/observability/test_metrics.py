"""``GET /metrics``: the samples a scrape reads after real requests through the app, the
labels kept bounded, and the values of several worker processes added up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY, UPSTREAM_KEY, gateway_config
from tests.pipeline.helpers import (
    ANTHROPIC_HEADERS,
    anthropic_body,
    asgi_client,
    configured_gateway,
    running_gateway,
)
from tests.policy.tenancy_helpers import anthropic_headers, make_key, messages, tenant_gateway

MODEL = "claude-sonnet-4-6"


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def test_requests_streams_and_retries_are_counted(fake: FakeUpstream) -> None:
    data = {**gateway_config(fake), "router": {"attempts": 2, "backoff": 0, "jitter": 0}}
    async with configured_gateway(data) as (_, ac):
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL, stream=True), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        fake.script(error={"status": 529}, times=1)
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        r = await ac.post("/v1/messages", json=anthropic_body("no-such-model"), headers=ANTHROPIC_HEADERS)
        assert r.status_code >= 400
        samples = await scrape(ac)
        text = (await ac.get("/metrics")).text
    labels = dict(door="anthropic", endpoint="messages", model=MODEL, status_class="2xx")
    assert value(samples, "modelgate_requests_total", **labels) == 3
    assert value(samples, "modelgate_requests_total", model="other", status_class="4xx") == 1
    assert value(samples, "modelgate_errors_total", door="anthropic", kind="not_found") == 1
    assert value(samples, "modelgate_upstream_attempts_total", outcome="ok") == 3
    assert value(samples, "modelgate_upstream_attempts_total", outcome="overloaded") == 1
    assert value(samples, "modelgate_retries_total") == 1
    assert value(samples, "modelgate_fallbacks_total") == 0
    assert value(samples, "modelgate_request_duration_seconds_count", stream="true") == 1
    assert value(samples, "modelgate_request_duration_seconds_count", stream="false") == 3
    assert value(samples, "modelgate_time_to_first_byte_seconds_count", stream="true") == 1
    assert value(samples, "modelgate_tokens_total", model=MODEL, kind="input") > 0
    assert value(samples, "modelgate_tokens_total", model=MODEL, kind="output") > 0
    assert value(samples, "modelgate_cost_usd_total", model=MODEL) > 0
    assert value(samples, "modelgate_open_streams") == 0
    assert ("modelgate_ledger_queue_depth", frozenset()) in samples
    assert "req_" not in text and "#0" not in text  # neither request ids nor upstream key ids


async def test_a_key_put_to_rest_is_counted_without_its_id(fake: FakeUpstream) -> None:
    data = gateway_config(fake)
    data["providers"] = [
        {**p, "api_keys": [UPSTREAM_KEY, UPSTREAM_KEY]} if p["name"] == "anth" else p for p in data["providers"]
    ]
    async with configured_gateway(data) as (_, ac):
        fake.script(error={"status": 429, "retry_after": 20})
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        samples = await scrape(ac)
        text = (await ac.get("/metrics")).text
    assert value(samples, "modelgate_key_cooldowns_total", provider="anth", reason="rate_limited") == 1
    assert value(samples, "modelgate_upstream_attempts_total", provider="anth", outcome="rate_limit") == 1
    assert "anth#" not in text


async def test_breakers_opening_and_closing_are_counted_by_provider(fake: FakeUpstream) -> None:
    data = {**gateway_config(fake), "router": {"attempts": 1, "health": {"failures": 1, "cooloff": 0.05}}}
    async with configured_gateway(data) as (_, ac):
        fake.script(error={"status": 529}, times=1)
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 529
        samples = await scrape(ac)
        assert value(samples, "modelgate_breaker_transitions_total", provider="anth", state="open") == 1
        assert value(samples, "modelgate_breaker_transitions_total", state="closed") == 0
        await asyncio.sleep(0.1)  # past the cool-off: the next request tries it, and it answers
        r = await ac.post("/v1/messages", json=anthropic_body(MODEL), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        samples = await scrape(ac)
    assert value(samples, "modelgate_breaker_transitions_total", provider="anth", state="closed") == 1


async def test_a_limit_refusal_is_counted_by_its_limit(fake: FakeUpstream) -> None:
    async with tenant_gateway(fake, {}) as gw, asgi_client(gw) as ac:
        key = await make_key(gw, "metrics-rpm", rpm=1)
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 200
        assert (await ac.post("/v1/messages", json=messages(), headers=anthropic_headers(key))).status_code == 429
        samples = await scrape(ac)
        text = (await ac.get("/metrics")).text
    assert value(samples, "modelgate_limit_refusals_total", limit="rate_limit_rpm") == 1
    assert value(samples, "modelgate_errors_total", kind="rate_limit") == 1
    assert key not in text and "metrics-rpm" not in text


async def test_metrics_can_ask_for_the_master_key_or_be_off(fake: FakeUpstream) -> None:
    async with running_gateway(fake, metrics_auth=True) as gw, asgi_client(gw) as ac:
        assert (await ac.get("/metrics")).status_code == 401
        assert (await ac.get("/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"})).status_code == 200
    async with running_gateway(fake, metrics=False) as gw, asgi_client(gw) as ac:
        assert (await ac.get("/metrics")).status_code == 404


_WORKER = textwrap.dedent(
    """
    import sys
    from modelgate.observability.metrics import Metrics
    from modelgate.pipeline.context import RequestContext
    from modelgate.providers.keys import KeyPool
    metrics = Metrics(["m"])
    metrics.key_rested(KeyPool("anth", ["k"]), "anth#0", "rate_limited", 30.0)
    metrics.stream_opened()
    ctx = RequestContext("req_x", "anthropic", "messages", status=200, duration=0.2)
    metrics.observe(ctx)
    if sys.argv[1] == "close":
        metrics.close()
    """
)
_SCRAPER = textwrap.dedent(
    """
    import sys
    from modelgate.observability.metrics import Metrics
    sys.stdout.write(Metrics(["m"]).render().decode())
    """
)


def test_several_processes_values_are_added_up() -> None:
    env: dict[str, Any] = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="mg-prom-")}
    for end in ("close", "crash"):
        subprocess.run([sys.executable, "-c", _WORKER, end], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", _SCRAPER], env=env, check=True, capture_output=True, text=True)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(out.stdout)
        for s in family.samples
    }
    assert value(samples, "modelgate_key_cooldowns_total", provider="anth", reason="rate_limited") == 2
    assert value(samples, "modelgate_requests_total", door="anthropic", model="other", status_class="2xx") == 2
    assert value(samples, "modelgate_request_duration_seconds_count", door="anthropic", stream="false") == 2
    # livesum: the worker that closed no longer counts its open stream
    assert value(samples, "modelgate_open_streams") == 1
