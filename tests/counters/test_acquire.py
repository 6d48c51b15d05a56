"""Admission on both backends: the edge of every window kind, reservations, atomicity, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from modelgate.counters import CONCURRENT, MONTH, TOTAL, Charge, Counters, Limit, MemoryCounters, Window, window

from .conftest import T0, MakeCounters, epoch

M1 = window("1m")
H5 = window("5h")


def usd(scope: str, win: Window, limit: float, amount: float, code: str = "budget") -> Limit:
    return Limit(scope, win, limit, amount, code)


@pytest.mark.parametrize("name", ["1m", "5h", "7d", "24h", "month", "total"])
async def test_admitted_while_some_remainder_refused_at_the_limit(counters: Counters, name: str) -> None:
    win = window(name)
    await counters.charge("k", win, 4.999, T0)
    assert await counters.acquire("a", [usd("k", win, 5.0, 2.0, "c")], T0 + 1) is None
    refusal = await counters.acquire("b", [usd("k", win, 5.0, 0.001, "c")], T0 + 2)
    assert refusal is not None
    assert refusal.limit.code == "c" and refusal.used == 5.0


async def test_reservation_capped_at_the_remainder(counters: Counters) -> None:
    assert await counters.acquire("a", [usd("k", H5, 1.0, 0.6)], T0) is None
    assert await counters.acquire("b", [usd("k", H5, 1.0, 0.6)], T0) is None  # 0.4 left: reserves 0.4, not 0.6
    assert (await counters.state("k", H5, T0)).used == 1.0
    refusal = await counters.acquire("c", [usd("k", H5, 1.0, 0.01)], T0)
    assert refusal is not None and refusal.used == 1.0


async def test_zero_amount_is_admitted_and_reserves_nothing(counters: Counters) -> None:
    assert await counters.acquire("a", [usd("k", H5, 1.0, 0.0)], T0) is None
    assert (await counters.state("k", H5, T0)).used == 0.0


async def test_zero_limit_refuses_forever(counters: Counters) -> None:
    for win in (M1, MONTH, TOTAL, CONCURRENT):
        refusal = await counters.acquire("a", [Limit(f"k:{win.name}", win, 0, 1, "blocked")], T0)
        assert refusal is not None and refusal.retry_after is None


async def test_rolling_capacity_frees_second_by_second(counters: Counters) -> None:
    rpm = [Limit("k:rpm", M1, 3, 1, "rate_limit_rpm")]
    for i, at in enumerate((T0 + 0.7, T0 + 10, T0 + 20)):
        assert await counters.acquire(f"r{i}", rpm, at) is None
    expected = {T0 + 30: 30.0, T0 + 59: 1.0, T0 + 59.5: 1.0, T0 + 59.999: 1.0}
    for at, wait in expected.items():
        refusal = await counters.acquire("x", rpm, at)
        assert refusal is not None and refusal.retry_after == wait, at
    assert await counters.acquire("r3", rpm, T0 + 60) is None  # the request of T0+0.7 left the window at T0+60
    refusal = await counters.acquire("x", rpm, T0 + 60.5)
    assert refusal is not None and refusal.retry_after == 10.0  # the next one leaves at T0+70
    assert (await counters.state("k:rpm", M1, T0 + 69.9)).used == 3.0
    assert (await counters.state("k:rpm", M1, T0 + 70)).used == 2.0


async def test_rolling_retry_after_waits_for_enough_usage_to_leave(counters: Counters) -> None:
    limit = [usd("k", M1, 3.0, 1.0, "rate_limit_1m")]
    for i, at in enumerate((T0, T0 + 10, T0 + 20)):
        assert await counters.acquire(f"r{i}", limit, at) is None
    await counters.charge("k", M1, 2.0, T0 + 40)  # used 5: admitted again once used < 3
    refusal = await counters.acquire("x", limit, T0 + 45)
    assert refusal is not None and refusal.used == 5.0
    assert refusal.retry_after == 35.0  # at T0+80 only the charge of T0+40 (2.0) is left
    assert await counters.acquire("x", limit, T0 + 80) is None


async def test_month_refuses_until_the_month_turns(counters: Counters) -> None:
    limit = [usd("k", MONTH, 5.0, 1.0, "budget_exceeded")]
    await counters.charge("k", MONTH, 5.0, epoch(2026, 3, 2))
    refusal = await counters.acquire("a", limit, epoch(2026, 3, 31, 23, 59, 30))
    assert refusal is not None and refusal.limit.code == "budget_exceeded"
    assert refusal.retry_after == 30.0
    assert await counters.acquire("a", limit, epoch(2026, 4, 1)) is None
    assert (await counters.state("k", MONTH, epoch(2026, 4, 1))).used == 1.0


async def test_month_rollover_across_the_year(counters: Counters) -> None:
    limit = [usd("k", MONTH, 1.0, 1.0, "budget_exceeded")]
    assert await counters.acquire("a", limit, epoch(2026, 12, 31, 22)) is None
    refusal = await counters.acquire("b", limit, epoch(2026, 12, 31, 23))
    assert refusal is not None and refusal.retry_after == 3600.0
    assert await counters.acquire("b", limit, epoch(2027, 1, 1, 0, 0, 1)) is None


async def test_total_never_frees(counters: Counters) -> None:
    limit = [usd("k", TOTAL, 2.0, 1.0, "budget_exceeded")]
    await counters.charge("k", TOTAL, 2.0, T0)
    for at in (T0, T0 + 86400 * 400, T0 + 86400 * 3650):
        refusal = await counters.acquire("a", limit, at)
        assert refusal is not None and refusal.retry_after is None and refusal.used == 2.0


async def test_one_refusal_records_nothing_anywhere(counters: Counters) -> None:
    await counters.charge("team", H5, 10.0, T0)
    limits = [
        usd("key", H5, 5.0, 1.0, "rate_limit_5h"),
        Limit("key:conc", CONCURRENT, 1, 1, "concurrency"),
        Limit("key:rpm", M1, 10, 1, "rate_limit_rpm"),
        usd("team", H5, 10.0, 1.0, "team_5h"),
        usd("model", TOTAL, 0.0, 1.0, "model_total"),
    ]
    refusal = await counters.acquire("a", limits, T0 + 1)
    assert refusal is not None and refusal.limit.code == "team_5h"  # the first that refuses, in the given order
    assert (await counters.state("key", H5, T0 + 1)).used == 0.0
    assert (await counters.state("key:conc", CONCURRENT, T0 + 1)).used == 0.0
    assert (await counters.state("key:rpm", M1, T0 + 1)).used == 0.0
    assert (await counters.state("team", H5, T0 + 1)).used == 10.0
    # the refused lease holds nothing: releasing it charges nothing either
    await counters.release("a", [Charge("key", H5, 3.0)], T0 + 2)
    assert (await counters.state("key", H5, T0 + 2)).used == 0.0
    assert await counters.acquire("b", limits[:3], T0 + 2) is None


async def test_concurrency_counts_active_leases(counters: Counters) -> None:
    conc = [Limit("k:conc", CONCURRENT, 2, 1, "concurrency")]
    assert await counters.acquire("a", conc, T0) is None
    assert await counters.acquire("b", conc, T0) is None
    refusal = await counters.acquire("c", conc, T0)
    assert refusal is not None and refusal.used == 2.0 and refusal.retry_after is None
    assert (await counters.state("k:conc", CONCURRENT, T0)).used == 2.0
    await counters.release("a", [], T0 + 1)
    assert (await counters.state("k:conc", CONCURRENT, T0 + 1)).used == 1.0
    assert await counters.acquire("c", conc, T0 + 1) is None


async def test_lease_ttl_stops_a_lost_lease_counting(make_counters: MakeCounters) -> None:
    counters = make_counters(lease_ttl=30)
    limits = [Limit("k:conc", CONCURRENT, 1, 1, "concurrency"), usd("k", H5, 10.0, 2.0)]
    assert await counters.acquire("lost", limits, T0) is None
    assert await counters.acquire("b", limits, T0 + 29.9) is not None
    assert (await counters.state("k:conc", CONCURRENT, T0 + 30)).used == 0.0
    assert await counters.acquire("b", limits, T0 + 30) is None
    # releasing the expired lease changes nothing: its reservation stands as its charge
    await counters.release("lost", [Charge("k", H5, 0.5)], T0 + 31)
    assert (await counters.state("k", H5, T0 + 31)).used == 4.0
    assert (await counters.state("k:conc", CONCURRENT, T0 + 31)).used == 1.0


async def test_acquire_extends_a_live_lease(counters: Counters) -> None:
    assert await counters.acquire("a", [usd("key", H5, 5.0, 1.0)], T0) is None
    assert await counters.acquire("a", [Limit("model:rpm", M1, 5, 1, "rpm")], T0 + 1) is None
    with pytest.raises(ValueError, match="already holds"):
        await counters.acquire("a", [usd("key", H5, 5.0, 1.0)], T0 + 2)
    await counters.release("a", [Charge("key", H5, 0.5), Charge("model:rpm", M1, 1.0)], T0 + 3)
    assert (await counters.state("key", H5, T0 + 3)).used == 0.5
    assert (await counters.state("model:rpm", M1, T0 + 3)).used == 1.0


async def test_bad_input_refused_before_anything_changes(counters: Counters) -> None:
    with pytest.raises(ValueError, match="twice"):
        await counters.acquire("a", [usd("k", H5, 5.0, 1.0), usd("k", H5, 5.0, 1.0)], T0)
    with pytest.raises(ValueError, match="non-negative"):
        await counters.acquire("a", [usd("k", H5, 5.0, -1.0)], T0)
    with pytest.raises(ValueError, match="non-negative"):
        await counters.acquire("a", [usd("k", H5, 5.0, float("nan"))], T0)
    with pytest.raises(ValueError, match="concurrent"):
        await counters.charge("k", CONCURRENT, 1.0, T0)
    assert (await counters.state("k", H5, T0)).used == 0.0


async def _race(instances: list[Counters], limits: list[Limit], n: int) -> int:
    async def one(i: int) -> bool:
        return await instances[i % len(instances)].acquire(f"lease-{i}", limits, T0 + i / 100) is None

    return sum(await asyncio.gather(*(one(i) for i in range(n))))


def _instances(make_counters: MakeCounters) -> list[Counters]:
    """Two gateway processes: two Redis clients on one prefix; in process, one set of counters (as one process)."""
    first = make_counters()
    return [first] if isinstance(first, MemoryCounters) else [first, make_counters()]


async def test_fifty_concurrent_acquires_admit_exactly_the_budget(make_counters: MakeCounters) -> None:
    instances = _instances(make_counters)
    assert await _race(instances, [Limit("k:rpm", M1, 10, 1, "rate_limit_rpm")], 50) == 10
    assert (await instances[0].state("k:rpm", M1, T0 + 1)).used == 10.0


async def test_fifty_concurrent_acquires_admit_exactly_the_concurrency(make_counters: MakeCounters) -> None:
    instances = _instances(make_counters)
    limits = [usd("k", H5, 100.0, 0.5), Limit("k:conc", CONCURRENT, 7, 1, "concurrency")]
    assert await _race(instances, limits, 50) == 7
    assert (await instances[-1].state("k:conc", CONCURRENT, T0 + 1)).used == 7.0
    assert (await instances[-1].state("k", H5, T0 + 1)).used == 3.5
    await asyncio.gather(*(instances[0].release(f"lease-{i}", [], T0 + 2) for i in range(50)))
    assert (await instances[0].state("k:conc", CONCURRENT, T0 + 2)).used == 0.0
