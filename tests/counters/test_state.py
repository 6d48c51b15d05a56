"""Dashboards, restarts and distinct members on both backends: state, charge, seed, touch_member."""

from __future__ import annotations

import pytest

from modelgate.counters import CONCURRENT, MONTH, TOTAL, Counters, Limit, window

from .conftest import T0, epoch

M1 = window("1m")
H5 = window("5h")
D7 = window("7d")


@pytest.mark.parametrize("name", ["1m", "5h", "7d", "month", "total", "concurrent"])
async def test_state_of_an_unseen_scope(counters: Counters, name: str) -> None:
    state = await counters.state("nothing", window(name), T0)
    assert state.used == 0.0 and state.next_free_at is None


async def test_rolling_next_free_at_is_when_the_oldest_usage_leaves(counters: Counters) -> None:
    await counters.charge("k", H5, 1.0, T0 + 0.4)
    await counters.charge("k", H5, 2.0, T0 + 100)
    assert await counters.state("k", H5, T0 + 200) == await counters.state("k", H5, T0 + 18000 - 0.1)
    state = await counters.state("k", H5, T0 + 200)
    assert state.used == 3.0 and state.next_free_at == T0 + 18000
    state = await counters.state("k", H5, T0 + 18000)
    assert state.used == 2.0 and state.next_free_at == T0 + 18100
    state = await counters.state("k", H5, T0 + 18100)
    assert state.used == 0.0 and state.next_free_at is None


async def test_month_and_total_next_free_at(counters: Counters) -> None:
    await counters.charge("m", MONTH, 1.0, epoch(2026, 2, 27))
    await counters.charge("m", MONTH, 2.0, epoch(2026, 3, 3))
    state = await counters.state("m", MONTH, epoch(2026, 3, 10))
    assert state.used == 2.0 and state.next_free_at == epoch(2026, 4, 1)
    await counters.charge("t", TOTAL, 7.5, T0)
    state = await counters.state("t", TOTAL, T0 + 86400 * 365)
    assert state.used == 7.5 and state.next_free_at is None


async def test_concurrent_state_counts_active_leases(counters: Counters) -> None:
    assert await counters.acquire("a", [Limit("c", CONCURRENT, 5, 1, "conc")], T0) is None
    assert await counters.acquire("b", [Limit("c", CONCURRENT, 5, 1, "conc")], T0) is None
    state = await counters.state("c", CONCURRENT, T0)
    assert state.used == 2.0 and state.next_free_at is None


async def test_charge_adds_usage_outside_any_lease(counters: Counters) -> None:
    await counters.charge("k", D7, 1.25, T0)
    await counters.charge("k", D7, 0.0, T0 + 1)
    await counters.charge("k", D7, 0.75, T0 + 2)
    state = await counters.state("k", D7, T0 + 3)
    assert state.used == 2.0 and state.next_free_at == T0 + 604800


async def test_seed_only_once(counters: Counters) -> None:
    entries = [(T0 - 100, 1.0), (T0 - 50, 2.0), (T0 - 50.5, 0.5)]
    assert await counters.seed("k", H5, entries, T0) is True
    assert await counters.seed("k", H5, entries, T0) is False
    state = await counters.state("k", H5, T0)
    assert state.used == 3.5 and state.next_free_at == T0 - 100 + 18000


async def test_seed_keeps_only_what_still_counts(counters: Counters) -> None:
    assert await counters.seed("k", M1, [(T0 - 120, 5.0), (T0 - 60, 4.0), (T0 - 59, 3.0)], T0) is True
    assert (await counters.state("k", M1, T0)).used == 3.0
    seeded = await counters.seed("m", MONTH, [(epoch(2026, 2, 28, 23), 5.0), (epoch(2026, 3, 1), 1.0)], T0)
    assert seeded and (await counters.state("m", MONTH, T0)).used == 1.0
    assert await counters.seed("t", TOTAL, [(0.0, 1.0), (T0, 2.0)], T0) is True
    assert (await counters.state("t", TOTAL, T0)).used == 3.0


async def test_a_scope_already_in_use_is_not_seeded(counters: Counters) -> None:
    assert await counters.acquire("a", [Limit("used", H5, 10.0, 1.0, "b")], T0) is None
    assert await counters.seed("used", H5, [(T0 - 10, 5.0)], T0) is False
    await counters.charge("charged", TOTAL, 1.0, T0)
    assert await counters.seed("charged", TOTAL, [(T0 - 10, 5.0)], T0) is False
    assert (await counters.state("used", H5, T0)).used == 1.0
    assert (await counters.state("charged", TOTAL, T0)).used == 1.0


async def test_an_empty_seed_marks_the_scope_seen(counters: Counters) -> None:
    assert await counters.seed("k", H5, [], T0) is True
    assert await counters.seed("k", H5, [(T0, 1.0)], T0) is False
    assert (await counters.state("k", H5, T0)).used == 0.0


async def test_seed_refuses_concurrency_and_bad_amounts(counters: Counters) -> None:
    with pytest.raises(ValueError, match="concurrent"):
        await counters.seed("c", CONCURRENT, [], T0)
    with pytest.raises(ValueError, match="non-negative"):
        await counters.seed("k", H5, [(T0, -1.0)], T0)
    assert await counters.seed("k", H5, [], T0) is True  # the refused seed left nothing behind


async def test_touch_member_counts_distinct_members(counters: Counters) -> None:
    ips = window("1h")
    assert await counters.touch_member("key:ips", "10.0.0.1", ips, 2, T0) == (True, 1)
    assert await counters.touch_member("key:ips", "10.0.0.2", ips, 2, T0 + 1) == (True, 2)
    assert await counters.touch_member("key:ips", "10.0.0.3", ips, 2, T0 + 2) == (False, 2)
    assert await counters.touch_member("key:ips", "10.0.0.1", ips, 2, T0 + 1800) == (True, 2)  # known: refreshed
    # 10.0.0.2 leaves at T0+1+3600; 10.0.0.1, seen again at T0+1800, stays
    assert await counters.touch_member("key:ips", "10.0.0.3", ips, 2, T0 + 3600) == (False, 2)
    assert await counters.touch_member("key:ips", "10.0.0.3", ips, 2, T0 + 3601) == (True, 2)
    assert await counters.touch_member("key:ips", "10.0.0.2", ips, 2, T0 + 3602) == (False, 2)
    assert await counters.touch_member("other:ips", "10.0.0.2", ips, 2, T0 + 3602) == (True, 1)


async def test_touch_member_over_a_lifetime(counters: Counters) -> None:
    assert await counters.touch_member("k", "a", TOTAL, 1, T0) == (True, 1)
    assert await counters.touch_member("k", "b", TOTAL, 1, T0 + 86400 * 365) == (False, 1)
    with pytest.raises(ValueError, match="concurrent"):
        await counters.touch_member("k", "a", CONCURRENT, 1, T0)


async def test_a_long_history_is_pruned_and_walked(counters: Counters) -> None:
    """More buckets than one prune or walk step takes (the Redis scripts page through 512 and 256)."""
    hour = window("1h")
    for i in range(1500):
        await counters.charge("k", hour, 1.0, T0 + i)
    limit = [Limit("k", hour, 1000.0, 1.0, "rate_limit_1h")]
    refusal = await counters.acquire("a", limit, T0 + 1500)
    assert refusal is not None and refusal.used == 1500.0
    assert refusal.retry_after == T0 + 500 + 3600 - (T0 + 1500)  # once the 501 oldest left, 999 remain
    state = await counters.state("k", hour, T0 + 3600 + 1400)  # T0 .. T0+1400 leave in one call: 1401 buckets
    assert state.used == 99.0 and state.next_free_at == T0 + 1401 + 3600
    assert await counters.acquire("a", limit, T0 + 3600 + 1400) is None
