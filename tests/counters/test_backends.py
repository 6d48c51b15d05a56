"""What each backend owes beyond the shared suite: bounded memory, Redis key lifetimes, the factory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from modelgate.counters import CONCURRENT, TOTAL, Charge, Limit, MemoryCounters, open_counters, window
from modelgate.counters.base import GC_MARGIN
from modelgate.counters.redis import RedisCounters
from tests.redis_helpers import REDIS_URL, delete_prefix

from .conftest import T0

M1 = window("1m")


async def test_open_counters_picks_the_backend() -> None:
    memory = open_counters(None)
    assert isinstance(memory, MemoryCounters)
    shared = open_counters(REDIS_URL, prefix=f"mgtest:{uuid.uuid4().hex}:")
    assert isinstance(shared, RedisCounters)
    await shared.close()
    with pytest.raises(ValueError, match="lease_ttl"):
        open_counters(None, lease_ttl=0)


async def test_memory_forgets_what_left_its_window() -> None:
    counters = MemoryCounters(lease_ttl=30)
    for i in range(100):
        limits = [Limit(f"k{i}", M1, 10, 1, "rpm"), Limit(f"c{i}", CONCURRENT, 1, 1, "conc")]
        assert await counters.acquire(f"lease{i}", limits, T0 + i) is None
        await counters.touch_member(f"ips{i}", "10.0.0.1", M1, 5, T0 + i)
    await counters.charge("forever", TOTAL, 1.0, T0)
    later = T0 + 100 + 60 + GC_MARGIN
    await counters.charge("now", M1, 1.0, later)  # any call sweeps, about once a minute of `now`
    assert set(counters._series) == {"forever", "now"}
    assert not counters._leases and not counters._slots and not counters._members
    assert (await counters.state("forever", TOTAL, later)).used == 1.0


@pytest.fixture
async def redis_pair() -> AsyncIterator[tuple[RedisCounters, aioredis.Redis, str]]:
    prefix = f"mgtest:{uuid.uuid4().hex}:"
    counters = RedisCounters(REDIS_URL, prefix=prefix, lease_ttl=120)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield counters, client, prefix
    await delete_prefix(prefix, client)
    await counters.close()
    await client.aclose()


async def test_redis_keys_live_as_long_as_their_window(redis_pair: tuple[RedisCounters, aioredis.Redis, str]) -> None:
    counters, client, p = redis_pair
    limits = [Limit("k", window("5h"), 10, 1, "b"), Limit("t", TOTAL, 10, 1, "b"), Limit("c", CONCURRENT, 2, 1, "c")]
    assert await counters.acquire("lease", limits, T0) is None
    assert 18000 < await client.ttl(f"{p}w:k") <= 18000 + GC_MARGIN
    assert 18000 < await client.ttl(f"{p}o:k") <= 18000 + GC_MARGIN
    assert await client.ttl(f"{p}w:t") == -1  # a lifetime never expires
    assert 120 < await client.ttl(f"{p}c:c") <= 120 + GC_MARGIN
    assert 120 < await client.ttl(f"{p}l:lease") <= 120 + GC_MARGIN
    await counters.release("lease", [Charge("k", window("5h"), 0.5)], T0 + 1)
    assert not await client.exists(f"{p}l:lease")
    assert await client.zcard(f"{p}c:c") == 0


async def test_redis_month_keys_live_until_the_month_turns(
    redis_pair: tuple[RedisCounters, aioredis.Redis, str],
) -> None:
    counters, client, p = redis_pair
    await counters.charge("m", window("month"), 1.0, T0)  # 2026-03-10 12:00: 21.5 days to April
    assert 21.5 * 86400 < await client.ttl(f"{p}w:m") <= 21.5 * 86400 + GC_MARGIN


async def test_redis_amounts_keep_every_digit(redis_pair: tuple[RedisCounters, aioredis.Redis, str]) -> None:
    """Lua's own number formatting keeps 14 digits; the scripts write 17, so a release leaves no residue."""
    counters, client, p = redis_pair
    amount = 0.1234567890123456
    assert await counters.acquire("a", [Limit("k", M1, 10, amount, "b")], T0) is None
    stored = await client.hget(f"{p}w:k", str(int(T0)))
    assert stored is not None and float(stored) == round(amount, 9)
    await counters.release("a", [Charge("k", M1, 0.0)], T0)
    assert await client.hget(f"{p}w:k", "s") == "0"
    assert await client.zcard(f"{p}o:k") == 0
