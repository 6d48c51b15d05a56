"""Key rests and breakers shared by a fleet: two gateway processes on one Redis
(``routing/shared_redis.py``).

Both get only ``MODELGATE_REDIS_URL``, as documented (each keeps its own SQLite store). Their
configs list the provider's two keys in another order; the fake upstream answers one of them,
key A, 429 with ``retry-after: 30`` (a script matching that key). One request on instance 1
rests key A there, and instance 2 — whose own turn would come to key A on its second request —
never sends it; and a breaker one instance opens is open on the other, until a success
there closes it on both. The keys are fresh secrets, so the fingerprints this test leaves in the
shared Redis (deleted at the end) name no other test's key, and the breaker test's model is
its own.

Redis missing makes the module fail, never skip.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tests.conftest import MASTER_KEY

from modelgate.providers.keys import key_fingerprint
from modelgate.routing.shared_redis import DEFAULT_PREFIX, breaker_key
from modelgate.testing.gateway_runner import GatewayProcess, run_gateway
from modelgate.testing.runner import FakeUpstream, run_fake_upstream

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "claude-sonnet-4-6"
KEY_A = f"sk-fleet-a-{secrets.token_hex(8)}"
KEY_B = f"sk-fleet-b-{secrets.token_hex(8)}"
#: A model whose one deployment the breaker test sets aside (its upstream model, made up for it).
BREAKER_MODEL = "fleet-breaker"
BREAKER_UPSTREAM = f"claude-fleet-{secrets.token_hex(4)}"
#: The longest a rest may take from one instance to the other, seen over HTTP on a busy machine.
DELAY_BOUND = 1.0


@dataclass
class Fleet:
    one: GatewayProcess
    two: GatewayProcess
    fake: FakeUpstream


def config(fake: FakeUpstream, keys: list[str]) -> dict[str, Any]:
    return {
        "providers": [{"name": "anth", "type": "anthropic", "base_url": fake.anthropic_base_url, "api_keys": keys}],
        "models": [
            {"name": MODEL, "provider": "anth"},
            {"name": BREAKER_MODEL, "provider": "anth", "upstream_model": BREAKER_UPSTREAM},
        ],
        # One attempt per request, and one failure opens a breaker: a single request shows it.
        "router": {"attempts": 1, "health": {"failures": 1, "cooloff": 30}},
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with run_fake_upstream(in_thread=True) as fake:
        yield fake


@pytest.fixture(scope="module")
async def fleet(fake: FakeUpstream) -> AsyncIterator[Fleet]:
    redis = Redis.from_url(REDIS_URL)
    assert await redis.ping()  # type: ignore[misc]  # redis-py types ping() for both clients at once
    env = {"MODELGATE_REDIS_URL": REDIS_URL}
    try:
        with (
            run_gateway(config(fake, [KEY_A, KEY_B]), master_key=MASTER_KEY, env=env) as one,
            run_gateway(config(fake, [KEY_B, KEY_A]), master_key=MASTER_KEY, env=env) as two,
        ):
            yield Fleet(one, two, fake)
    finally:
        await redis.delete(*(f"{DEFAULT_PREFIX}rest:{key_fingerprint('anth', k)}" for k in (KEY_A, KEY_B)))
        await redis.delete(f"{DEFAULT_PREFIX}breaker:{breaker_key((BREAKER_MODEL, 'anth', BREAKER_UPSTREAM))}")
        await redis.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def healthz(http: httpx.AsyncClient, gw: GatewayProcess) -> dict[str, Any]:
    r = await http.get(f"{gw.base_url}/healthz")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def poll(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> float:
    """Seconds until ``check()`` holds (polled every 5 ms)."""
    start = time.perf_counter()
    while not await check():
        assert time.perf_counter() - start < timeout, "not seen in time"
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


async def message(http: httpx.AsyncClient, gw: GatewayProcess, model: str = MODEL) -> httpx.Response:
    headers = {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return await http.post(f"{gw.base_url}/v1/messages", json=body, headers=headers)


def keys_sent(fake: FakeUpstream, since: int) -> list[str]:
    return [r["headers"]["x-api-key"] for r in fake.requests("/v1/messages")[since:]]


async def test_a_key_rested_on_one_instance_is_never_sent_by_the_other(
    fleet: Fleet, http: httpx.AsyncClient, record_property: Callable[[str, object], None]
) -> None:
    for gw in (fleet.one, fleet.two):  # both follow the shared state before the test starts
        await poll(lambda gw=gw: _connected(http, gw))
    fleet.fake.script(error={"status": 429, "retry_after": 30}, match={"key": KEY_A}, times=100)

    before = len(fleet.fake.requests("/v1/messages"))
    r = await message(http, fleet.one)
    assert r.status_code == 200, r.text
    assert keys_sent(fleet.fake, before) == [KEY_A, KEY_B]  # A refused with 429, B at once
    answered = time.perf_counter()

    async def two_sees_it() -> bool:
        keys = (await healthz(http, fleet.two)).get("details", {}).get("keys", [])
        return any(k["id"] == "anth#1" and k["state"] == "rate_limited" for k in keys)

    await poll(two_sees_it)
    record_property("fleet_propagation_seconds", round(time.perf_counter() - answered, 4))
    assert time.perf_counter() - answered < DELAY_BOUND

    before = len(fleet.fake.requests("/v1/messages"))
    for _ in range(4):  # on its own, instance 2 would take B, then A, in turn
        r = await message(http, fleet.two)
        assert r.status_code == 200, r.text
    assert keys_sent(fleet.fake, before) == [KEY_B] * 4  # never A: one request each, no 429 met

    r = await http.get(f"{fleet.two.base_url}/admin/providers", headers={"authorization": f"Bearer {MASTER_KEY}"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["routing_state"] == {"shared": True, "backend": "redis", "connected": True}
    [anth] = report["providers"]
    assert anth["keys"] == [
        {"id": "anth#0", "state": "ok", "seconds_left": None, "remote": False},
        {"id": "anth#1", "state": "rate_limited", "seconds_left": pytest.approx(30, abs=3), "remote": True},
    ]
    assert KEY_A not in r.text and KEY_B not in r.text


async def _connected(http: httpx.AsyncClient, gw: GatewayProcess) -> bool:
    state: dict[str, Any] = (await healthz(http, gw)).get("routing_state", {})
    return state == {"shared": True, "backend": "redis", "connected": True}


async def test_a_breaker_opened_on_one_instance_is_open_on_the_other_and_a_success_there_closes_both(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    for gw in (fleet.one, fleet.two):
        await poll(lambda gw=gw: _connected(http, gw))

    async def breaker(gw: GatewayProcess) -> dict[str, Any] | None:
        deployments = (await healthz(http, gw)).get("details", {}).get("deployments", [])
        return next((d for d in deployments if d["model"] == BREAKER_MODEL), None)

    fleet.fake.script(error={"status": 529}, match={"model": BREAKER_UPSTREAM})
    r = await message(http, fleet.one, BREAKER_MODEL)
    assert r.status_code == 529, r.text  # one failure: instance 1 sets the deployment aside

    async def open_on_two() -> bool:
        return (await breaker(fleet.two) or {}).get("state") == "open"

    await poll(open_on_two, timeout=DELAY_BOUND)
    seen = await breaker(fleet.two)
    assert seen is not None and seen["remote"] is True and seen["seconds_left"] == pytest.approx(30, abs=3)
    assert (await breaker(fleet.one) or {}).get("remote") is None  # instance 1's own

    r = await message(http, fleet.two, BREAKER_MODEL)  # nowhere else to go: tried all the same
    assert r.status_code == 200, r.text  # a success: closed here, and on instance 1

    async def closed_on_one() -> bool:
        return await breaker(fleet.one) is None

    await poll(closed_on_one, timeout=DELAY_BOUND)
    assert await breaker(fleet.two) is None
