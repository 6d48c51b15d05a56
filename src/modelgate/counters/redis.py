"""Redis counters: limits shared by every gateway process, one round trip per call.

Each call is one registered Lua script (EVALSHA), so a multi-limit admission
is atomic across all instances. The scripts take the caller's ``now``, not the
server's clock (see :mod:`modelgate.counters.base`); Redis key TTLs, counted
on the server's clock, only collect storage that left its window. The data
layout is described in :mod:`modelgate.counters.scripts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from modelgate.counters import scripts
from modelgate.counters.base import (
    Charge,
    Counters,
    Limit,
    MonthClock,
    Refusal,
    Window,
    WindowState,
    bucket,
    charges_by_scope,
    check_amount,
    check_countable,
    check_limits,
    retry_after,
)

_KIND = {"rolling": "r", "month": "m", "total": "t", "concurrent": "c"}


class RedisCounters(Counters):
    """Counters in one Redis (a single node or a primary; key names are built inside the scripts)."""

    def __init__(
        self, url: str, prefix: str = "mg:", lease_ttl: float = 900.0, *, max_connections: int | None = None
    ) -> None:
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be positive")
        self._prefix = prefix
        self._lease_ttl = repr(float(lease_ttl))
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, decode_responses=True, max_connections=max_connections
        )
        register = self._client.register_script
        self._acquire = register(scripts.script(scripts.ACQUIRE))
        self._release = register(scripts.script(scripts.RELEASE))
        self._charge = register(scripts.script(scripts.CHARGE))
        self._state = register(scripts.script(scripts.STATE))
        self._seed = register(scripts.script(scripts.SEED))
        self._touch = register(scripts.script(scripts.TOUCH_MEMBER))
        self._month = MonthClock()

    async def acquire(self, lease: str, limits: Sequence[Limit], now: float) -> Refusal | None:
        check_limits(limits)
        args = [*self._head(now), lease, self._lease_ttl, len(limits)]
        for item in limits:
            args += [item.scope, *_window(item.window), repr(float(item.limit)), repr(float(item.amount))]
        reply: list[Any] = await self._acquire(args=args)
        if reply[0] == "ok":
            return None
        item = limits[int(reply[1]) - 1]
        if reply[0] == "held":
            raise ValueError(f"lease {lease!r} already holds scope {item.scope!r}")
        free_at = None if reply[3] is None else float(reply[3])
        return Refusal(item, float(reply[2]), retry_after(free_at, now))

    async def release(self, lease: str, actual: Sequence[Charge], now: float) -> None:
        given = charges_by_scope(actual)
        args = [*self._head(now), lease, len(given)]
        for charge in given.values():
            args += [charge.scope, *_window(charge.window), repr(float(charge.amount))]
        await self._release(args=args)

    async def charge(self, scope: str, window: Window, amount: float, now: float) -> None:
        check_countable(window)
        check_amount(amount)
        await self._charge(args=[*self._head(now), scope, *_window(window), repr(float(amount))])

    async def state(self, scope: str, window: Window, now: float) -> WindowState:
        reply: list[Any] = await self._state(args=[*self._head(now), scope, *_window(window)])
        return WindowState(float(reply[0]), None if reply[1] is None else float(reply[1]))

    async def seed(self, scope: str, window: Window, entries: Sequence[tuple[float, float]], now: float) -> bool:
        check_countable(window)
        buckets: dict[int, float] = {}  # one argument pair per bucket, however long the ledger's history
        for at, amount in entries:
            check_amount(amount)
            where = bucket(window, at)
            buckets[where] = buckets.get(where, 0.0) + amount
        args = [*self._head(now), scope, *_window(window), len(buckets)]
        for where, amount in sorted(buckets.items()):
            args += [where, repr(amount)]
        return bool(await self._seed(args=args))

    async def touch_member(self, scope: str, member: str, window: Window, limit: int, now: float) -> tuple[bool, int]:
        check_countable(window)
        reply: list[Any] = await self._touch(args=[*self._head(now), scope, member, *_window(window), limit])
        return bool(reply[0]), int(reply[1])

    async def close(self) -> None:
        await self._client.aclose()

    def _head(self, now: float) -> list[str | int]:
        """The prelude's arguments: prefix, now, and now's month bounds (Lua has no calendar)."""
        month_start, next_month = self._month.bounds(now)
        return [self._prefix, repr(float(now)), month_start, next_month]


def _window(window: Window) -> tuple[str, int]:
    return _KIND[window.kind], window.seconds or 0
