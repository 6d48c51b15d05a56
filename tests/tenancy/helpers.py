"""Virtual keys for gateway *processes*, written straight into the store they read.

A gateway process learns of a key only through its key cache, which polls the store every
``tenancy.key_refresh_seconds``; nothing here reaches into the process. :class:`Keys`
writes keys (as the admin API and CLI do: a fresh secret, only its digest and hint
stored) and reads the ledger; :func:`wait_for_status` polls ``GET /v1/usage`` with a key
(a call no limit counts) until a gateway answers it as expected, and returns how long that
took: the delay a key change needs to reach that instance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from modelgate.policy.keys import digest, hint, new_secret
from modelgate.store import Database, KeyRecord, LedgerStore, TenantStore, UsageGroup
from modelgate.testing.runner import FakeUpstream
from tests.conftest import gateway_config

#: The key cache's refresh period in the tests' gateways (seconds).
REFRESH = 0.2
#: The ledger writer's flush period in the tests' gateways (seconds).
LEDGER_FLUSH = 0.2
#: 2000-01-01: every ledger row is after it.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def process_config(
    fake: FakeUpstream, *, refresh: float = REFRESH, tenancy: Mapping[str, Any] | None = None, **server: Any
) -> dict[str, Any]:
    """The shared test config (``tests.conftest.gateway_config``) with a quick key cache and
    ledger, and ``tenancy``; ``server`` adds to the ``server`` section (``data_dir``, …)."""
    data = gateway_config(fake)
    data["server"] = {**data["server"], **server}
    data["tenancy"] = {"key_refresh_seconds": refresh, "ledger_flush_seconds": LEDGER_FLUSH, **(tenancy or {})}
    return data


class Keys:
    """One store's keys and ledger, as an operator's tools see them."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.tenants = TenantStore(self.database)
        self.ledger = LedgerStore(self.database)

    async def create(self, name: str, **attrs: Any) -> str:
        """A new key named ``name`` with ``attrs`` (``rpm``, ``budgets``, ``models`` …); its secret."""
        secret = new_secret()
        await self.tenants.create_key(name, key_hash=digest(secret), hint=hint(secret), **attrs)
        return secret

    async def get(self, name: str) -> KeyRecord:
        return await self.tenants.get_key(name)

    async def revoke(self, name: str) -> None:
        await self.tenants.update_key(name, revoked_at=datetime.now(UTC))

    async def quarantine(self, name: str, reason: str) -> None:
        await self.tenants.update_key(name, quarantined_at=datetime.now(UTC), quarantine_reason=reason)

    async def ledger_by_door(self, name: str, requests: int, timeout: float = 10.0) -> dict[str, UsageGroup]:
        """The key's ledger lines by front door, once they hold ``requests`` rows in all (the
        ledger is written in batches, off the request path)."""
        key = await self.get(name)
        deadline = time.monotonic() + timeout
        while True:
            lines = await self.ledger.summary(key_id=key.id, since=EPOCH, group_by="door")
            total = sum(line.requests for line in lines)
            if total >= requests or time.monotonic() > deadline:
                assert total == requests, f"ledger of {name!r}: {lines}"
                return {str(line.group): line for line in lines}
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.database.close()


async def wait_for_status(base_urls: Sequence[str], secret: str, status: int, *, timeout: float = 10.0) -> list[float]:
    """Poll ``GET /v1/usage`` with ``secret`` on every gateway at once until each answers
    ``status``; the seconds each took (a gateway that never does fails the test)."""
    started = time.monotonic()

    async def one(client: httpx.AsyncClient, base_url: str) -> float:
        last: httpx.Response | None = None
        while time.monotonic() - started < timeout:
            last = await client.get(f"{base_url}/v1/usage", headers={"x-api-key": secret})
            if last.status_code == status:
                return time.monotonic() - started
            await asyncio.sleep(0.01)
        raise AssertionError(
            f"{base_url} did not answer {status} within {timeout} s: "
            f"{None if last is None else (last.status_code, last.text)}"
        )

    async with httpx.AsyncClient(timeout=10) as client:
        return list(await asyncio.gather(*(one(client, url) for url in base_urls)))
