"""A fleet: two gateway processes on one PostgreSQL store and one Redis, as an operator runs them.

Both processes get only ``MODELGATE_DATABASE_URL`` and ``MODELGATE_REDIS_URL`` in their
environment, as documented. The store is a fresh database made for this module inside the
local server (``postgresql://postgres@127.0.0.1:5432``) and dropped at the end: the gateway
takes only a URL, and no URL form sets a schema through SQLAlchemy's asyncpg dialect
(``?options=-csearch_path=…`` reaches ``asyncpg.connect`` as an unknown ``options``
argument). It is migrated with ``modelgate db upgrade``, as the docs say to. Counters live
in Redis under the gateway's fixed prefix ``mg:``; every scope the tests touch is named by
a fresh key id, and those are deleted at the end.

What is shown, each across the two instances:

* one key's requests-per-minute limit: requests alternate between A and B, and the one
  after the limit is refused wherever it lands;
* one budget: spent on A, refused on B; and a budget that both spend in turn is admitted
  while it has a remainder and not once more;
* a key made in the store (or with ``modelgate keys create``) is accepted by both, and a
  revocation refused by both, within the key cache's refresh delay (measured); one made or
  revoked through an instance's admin API takes effect there at once;
* distinct client addresses are counted fleet-wide, and a quarantine decided by one
  instance reaches the other within the same delay; a released key works again.

PostgreSQL or Redis missing makes the module fail, never skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from modelgate.store import Budget
from modelgate.testing.gateway_runner import GatewayProcess, run_gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.tenancy.helpers import Keys, process_config, wait_for_status

SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: The instances' key cache refresh period (seconds).
REFRESH = 0.5
#: The longest a key change may take to reach an instance: one refresh period, plus the
#: refresh's own query and this side's polling (every 10 ms, over HTTP) on a busy machine.
DELAY_BOUND = REFRESH + 0.5
#: Distinct client addresses at which the fleet quarantines a key.
QUARANTINE_IPS = 3
MODEL = "claude-sonnet-4-6"


@dataclass
class Fleet:
    a: GatewayProcess
    b: GatewayProcess
    keys: Keys
    redis: Redis
    env: dict[str, str]

    @property
    def urls(self) -> list[str]:
        return [self.a.base_url, self.b.base_url]


async def on_server(sql: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def modelgate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``modelgate ARGS`` as an operator runs it, with ``env``; it must succeed."""
    cmd = [sys.executable, "-m", "modelgate", *args]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
async def fleet(upstream: FakeUpstream) -> AsyncIterator[Fleet]:
    database = f"mg_fleet_{secrets.token_hex(6)}"
    url = f"{SERVER}/{database}"
    redis = Redis.from_url(REDIS_URL)
    # Redis must be there (no skip); redis-py types ping() for its sync and async clients at once.
    assert await redis.ping()  # type: ignore[misc]
    await on_server(f'CREATE DATABASE "{database}"')
    env = {"MODELGATE_DATABASE_URL": url, "MODELGATE_REDIS_URL": REDIS_URL}
    keys = Keys(url)
    try:
        modelgate(env, "db", "upgrade")
        tenancy = {"trusted_proxies": ["127.0.0.1"], "quarantine_ips": QUARANTINE_IPS}
        config = process_config(upstream, refresh=REFRESH, tenancy=tenancy)
        with (
            run_gateway(config, master_key=MASTER_KEY, env=env) as a,
            run_gateway(config, master_key=MASTER_KEY, env=env) as b,
        ):
            yield Fleet(a, b, keys, redis, env)
    finally:
        ids = [key.id for key in await keys.tenants.list_keys()]
        await keys.close()
        for key_id in ids:
            stale = [k async for k in redis.scan_iter(match=f"mg:?:key:{key_id}:*", count=1000)]
            if stale:
                await redis.delete(*stale)
        await redis.aclose()
        await on_server(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def new_key(fleet: Fleet, name: str, **attrs: Any) -> str:
    """A key written into the store, once both instances accept it."""
    secret = await fleet.keys.create(name, **attrs)
    await wait_for_status(fleet.urls, secret, 200)
    return secret


async def message(
    http: httpx.AsyncClient, gw: GatewayProcess, key: str, *, client_ip: str | None = None
) -> httpx.Response:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if client_ip is not None:
        headers["x-forwarded-for"] = client_ip  # believed: the socket's peer is a trusted proxy
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    return await http.post(f"{gw.base_url}/v1/messages", json=body, headers=headers)


async def usage(http: httpx.AsyncClient, gw: GatewayProcess, key: str) -> dict[str, Any]:
    r = await http.get(f"{gw.base_url}/v1/usage", headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def sees_spend(http: httpx.AsyncClient, gw: GatewayProcess, key: str, spent: float) -> dict[str, Any]:
    """``gw``'s ``/v1/usage`` once its first window shows ``spent`` (settlement is off the request path)."""
    deadline = time.monotonic() + 10
    while True:
        body = await usage(http, gw, key)
        used = body["windows"][0]["used_usd"]
        if used == pytest.approx(spent, abs=2e-6) or time.monotonic() > deadline:
            assert used == pytest.approx(spent, abs=2e-6), body
            return body


def error_of(r: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    """The Anthropic envelope's error of a refusal."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"].get("code") == code, body
    error: dict[str, Any] = body["error"]
    return error


# --------------------------------------------------------------------------- limits and budgets


async def test_one_rpm_limit_holds_across_both_instances(fleet: Fleet, http: httpx.AsyncClient) -> None:
    secret = await new_key(fleet, "fleet-rpm", rpm=4)
    for gw in (fleet.a, fleet.b, fleet.a, fleet.b):
        r = await message(http, gw, secret)
        assert r.status_code == 200, r.text
    for gw in (fleet.a, fleet.b):  # the fifth and sixth, wherever they land
        r = await message(http, gw, secret)
        error = error_of(r, 429, "rate_limit_rpm")
        assert error["type"] == "rate_limit_error"
        assert error["message"].startswith("modelgate: key 'fleet-rpm' reached its requests per minute of 4;")
        assert r.headers["anthropic-ratelimit-requests-limit"] == "4"
        assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert 1 <= int(r.headers["retry-after"]) <= 60
    r = await http.post(
        f"{fleet.b.base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {secret}"},
    )
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_rpm"
    assert r.headers["x-ratelimit-limit-requests"] == "4" and r.headers["x-ratelimit-remaining-requests"] == "0"
    for gw in (fleet.a, fleet.b):
        assert (await usage(http, gw, secret))["limits"]["rpm"]["used"] == 4  # refusals take no slot
    key = await fleet.keys.get("fleet-rpm")
    assert await fleet.redis.exists(f"mg:w:key:{key.id}:rpm")  # the count lives in the shared Redis


@pytest.mark.parametrize(("window", "code"), [("total", "budget_exceeded"), ("5h", "rate_limit_5h")])
async def test_a_budget_spent_on_one_instance_is_refused_on_the_other(
    fleet: Fleet, http: httpx.AsyncClient, window: str, code: str
) -> None:
    name = f"fleet-spent-{window}"
    secret = await new_key(fleet, name, budgets=[Budget(window, usd=0.000001)])  # type: ignore[arg-type]
    spent_at = time.time()
    assert (await message(http, fleet.a, secret)).status_code == 200  # admitted, then charged beyond it
    [line] = (await fleet.keys.ledger_by_door(name, requests=1)).values()  # A's ledger row, in PostgreSQL
    seen = await sees_spend(http, fleet.b, secret, line.cost_usd)
    assert seen["windows"][0]["used_percent"] == 100.0
    for gw in (fleet.b, fleet.a):
        r = await message(http, gw, secret)
        error = error_of(r, 429, code)
        label = "lifetime budget" if window == "total" else "5h budget"
        assert error["message"].startswith(f"modelgate: key {name!r} reached its {label} of $0.00 ($0.00 used);")
        if window == "total":
            assert "retry-after" not in r.headers
        else:  # frees when A's spend leaves the window
            frees_in = spent_at + 5 * 3600 - time.time()
            assert abs(int(r.headers["retry-after"]) - frees_in) <= 120
    [after] = (await fleet.keys.ledger_by_door(name, requests=3)).values()  # the refusals are rows too
    assert after.cost_usd == pytest.approx(line.cost_usd, abs=1e-12)  # that cost nothing


async def test_a_budget_both_instances_spend_is_admitted_while_it_has_a_remainder(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    budget = 0.0005  # a few of the fake's answers
    name = "fleet-shared-budget"
    secret = await new_key(fleet, name, budgets=[Budget("7d", usd=budget)])
    spent: list[float] = [0.0]
    for turn in range(20):
        here, there = (fleet.a, fleet.b) if turn % 2 == 0 else (fleet.b, fleet.a)
        r = await message(http, here, secret)
        if r.status_code != 200:
            break
        lines = await fleet.keys.ledger_by_door(name, requests=len(spent))
        spent.append(sum(line.cost_usd for line in lines.values()))
        await sees_spend(http, there, secret, spent[-1])  # the other instance has seen it settle
    else:
        pytest.fail(f"a ${budget} budget admitted 20 requests: {spent}")
    error = error_of(r, 429, "rate_limit_7d")
    assert "7d budget of $0.00" in error["message"]
    admitted = len(spent) - 1
    assert admitted >= 2, spent  # both instances served some
    assert spent[-2] < budget <= spent[-1], spent  # the last was admitted with a remainder; then none
    assert (await usage(http, fleet.a, secret))["windows"][0]["used_percent"] == 100.0


# --------------------------------------------------------------------------- key changes


async def test_a_new_key_and_its_revocation_reach_both_instances_within_the_refresh_delay(
    fleet: Fleet, http: httpx.AsyncClient, record_property: Callable[[str, object], None]
) -> None:
    secret = await fleet.keys.create("fleet-late")  # committed when this returns
    arrived = await wait_for_status(fleet.urls, secret, 200)
    record_property("new_key_seconds", arrived)
    assert max(arrived) <= DELAY_BOUND, arrived
    for gw in (fleet.a, fleet.b):
        assert (await message(http, gw, secret)).status_code == 200
    await fleet.keys.revoke("fleet-late")
    gone = await wait_for_status(fleet.urls, secret, 401)
    record_property("revocation_seconds", gone)
    assert max(gone) <= DELAY_BOUND, gone
    for gw in (fleet.a, fleet.b):
        error = error_of(await message(http, gw, secret), 401, None)
        assert error == {"type": "authentication_error", "message": "this API key has been revoked"}


async def test_a_key_made_with_the_cli_works_on_both_and_its_revocation_stops_it(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    made = modelgate(fleet.env, "keys", "create", "--name", "fleet-cli", "--rpm", "10", "--budget-usd", "5")
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-mg-") and len(secret) == len("sk-mg-") + 43
    await wait_for_status(fleet.urls, secret, 200)
    for gw in (fleet.a, fleet.b):
        assert (await message(http, gw, secret)).status_code == 200
    for gw in (fleet.a, fleet.b):
        body = await usage(http, gw, secret)
        assert body["key"] == {"name": "fleet-cli", "team": None}
        assert [(w["window"], w["limit_usd"]) for w in body["windows"]] == [("total", 5.0)]
        assert body["limits"]["rpm"]["limit"] == 10 and body["limits"]["rpm"]["used"] == 2
    modelgate(fleet.env, "keys", "revoke", "fleet-cli")
    gone = await wait_for_status(fleet.urls, secret, 401)
    assert max(gone) <= DELAY_BOUND, gone


async def test_a_key_made_through_one_instances_admin_api_works_there_at_once_and_on_the_other_soon(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    master = {"authorization": f"Bearer {MASTER_KEY}"}
    r = await http.post(f"{fleet.a.base_url}/admin/keys", json={"name": "fleet-admin", "rpm": 10}, headers=master)
    assert r.status_code == 201, r.text
    secret = r.json()["key"]
    assert (await message(http, fleet.a, secret)).status_code == 200  # at once, where it was made
    arrived = await wait_for_status([fleet.b.base_url], secret, 200)
    assert max(arrived) <= DELAY_BOUND, arrived
    r = await http.post(f"{fleet.b.base_url}/admin/keys/fleet-admin/revoke", headers=master)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None, r.text
    error = error_of(await message(http, fleet.b, secret), 401, None)  # at once, where it was revoked
    assert error == {"type": "authentication_error", "message": "this API key has been revoked"}
    gone = await wait_for_status([fleet.a.base_url], secret, 401)
    assert max(gone) <= DELAY_BOUND, gone


async def test_client_addresses_are_counted_fleet_wide_and_a_quarantine_reaches_both(
    fleet: Fleet, http: httpx.AsyncClient
) -> None:
    one_ip = await new_key(fleet, "fleet-one-ip", ip_limit=1, ip_window="1h")
    assert (await message(http, fleet.a, one_ip, client_ip="10.0.0.1")).status_code == 200
    error = error_of(await message(http, fleet.b, one_ip, client_ip="10.0.0.2"), 403, "ip_limit_reached")
    assert error["type"] == "permission_error"

    leaked = await new_key(fleet, "fleet-leaked")
    for gw, ip in ((fleet.a, "1.1.1.1"), (fleet.b, "2.2.2.2")):
        assert (await message(http, gw, leaked, client_ip=ip)).status_code == 200
    r = await message(http, fleet.a, leaked, client_ip="3.3.3.3")  # the third address the fleet saw
    error = error_of(r, 403, "key_quarantined")
    assert error["message"] == (
        "API key 'fleet-leaked' is quarantined (used from 3 addresses within 24h): an administrator must release it"
    )
    reached = await wait_for_status([fleet.b.base_url], leaked, 403)
    assert max(reached) <= DELAY_BOUND, reached
    error = error_of(await message(http, fleet.b, leaked, client_ip="1.1.1.1"), 403, "key_quarantined")
    stored = await fleet.keys.get("fleet-leaked")
    assert stored.quarantined_at is not None and stored.quarantine_reason == "used from 3 addresses within 24h"


async def test_a_released_key_works_again_from_an_address_it_was_seen_at(fleet: Fleet, http: httpx.AsyncClient) -> None:
    secret = await new_key(fleet, "fleet-released")
    for gw, ip in ((fleet.a, "1.1.1.1"), (fleet.b, "2.2.2.2")):
        assert (await message(http, gw, secret, client_ip=ip)).status_code == 200
    error_of(await message(http, fleet.a, secret, client_ip="3.3.3.3"), 403, "key_quarantined")
    modelgate(fleet.env, "keys", "release", "fleet-released")
    await wait_for_status(fleet.urls, secret, 200)
    r = await message(http, fleet.b, secret, client_ip="1.1.1.1")
    assert r.status_code == 200, r.text
