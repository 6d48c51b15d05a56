"""Settlement on both backends: the real amount replaces the reservation, once."""

from __future__ import annotations

import pytest

from modelgate.counters import CONCURRENT, MONTH, TOTAL, Charge, Counters, Limit, Window, window

from .conftest import T0, MakeCounters, epoch

M1 = window("1m")
H5 = window("5h")


def budget(scope: str = "k", limit: float = 10.0, amount: float = 1.0, win: Window = H5) -> Limit:
    return Limit(scope, win, limit, amount, "budget")


async def test_release_lower_than_reserved(counters: Counters) -> None:
    assert await counters.acquire("a", [budget(amount=1.0)], T0) is None
    await counters.release("a", [Charge("k", H5, 0.25)], T0 + 5)
    assert (await counters.state("k", H5, T0 + 5)).used == 0.25


async def test_release_higher_than_reserved_is_charged_in_full(counters: Counters) -> None:
    await counters.charge("k", H5, 0.5, T0)
    assert await counters.acquire("a", [budget(limit=1.0, amount=3.0)], T0) is None  # reserves the 0.5 left
    assert (await counters.state("k", H5, T0)).used == 1.0
    await counters.release("a", [Charge("k", H5, 2.0)], T0 + 5)
    assert (await counters.state("k", H5, T0 + 5)).used == 2.5  # over the limit: real cost is never capped
    refusal = await counters.acquire("b", [budget(limit=1.0)], T0 + 6)
    assert refusal is not None and refusal.used == 2.5


async def test_release_without_an_amount_keeps_the_reservation(counters: Counters) -> None:
    limits = [budget("usd", amount=1.5), Limit("rpm", M1, 10, 1, "rpm")]
    assert await counters.acquire("a", limits, T0) is None
    await counters.release("a", [Charge("usd", H5, 0.5)], T0 + 1)
    assert (await counters.state("usd", H5, T0 + 1)).used == 0.5
    assert (await counters.state("rpm", M1, T0 + 1)).used == 1.0


async def test_release_is_idempotent(counters: Counters) -> None:
    limits = [budget(amount=1.0), Limit("conc", CONCURRENT, 1, 1, "conc")]
    assert await counters.acquire("a", limits, T0) is None
    settle = [Charge("k", H5, 0.25), Charge("other", TOTAL, 1.0)]
    await counters.release("a", settle, T0 + 1)
    assert await counters.acquire("b", limits, T0 + 1) is None  # takes the freed slot
    await counters.release("a", settle, T0 + 2)
    await counters.release("a", settle, T0 + 3)
    assert (await counters.state("k", H5, T0 + 3)).used == 1.25  # 0.25 settled + b's reservation
    assert (await counters.state("other", TOTAL, T0 + 3)).used == 1.0
    assert (await counters.state("conc", CONCURRENT, T0 + 3)).used == 1.0  # b's slot, not freed by a's repeats


async def test_release_of_an_unknown_lease_does_nothing(counters: Counters) -> None:
    await counters.release("never", [Charge("k", H5, 1.0)], T0)
    assert (await counters.state("k", H5, T0)).used == 0.0


async def test_release_charges_a_scope_the_lease_did_not_reserve(counters: Counters) -> None:
    assert await counters.acquire("a", [budget("key")], T0) is None
    await counters.release("a", [Charge("key", H5, 0.5), Charge("model:tpm", M1, 1234.0)], T0 + 10)
    assert (await counters.state("model:tpm", M1, T0 + 10)).used == 1234.0
    assert (await counters.state("model:tpm", M1, T0 + 10)).next_free_at == T0 + 70


async def test_the_real_amount_counts_from_settlement(counters: Counters) -> None:
    """A request longer than its window still counts: the real amount lands at release time."""
    assert await counters.acquire("a", [Limit("tpm", M1, 10_000, 4000, "tpm")], T0) is None
    assert (await counters.state("tpm", M1, T0)).next_free_at == T0 + 60
    await counters.release("a", [Charge("tpm", M1, 3000)], T0 + 90)  # the reservation already left
    state = await counters.state("tpm", M1, T0 + 90)
    assert state.used == 3000 and state.next_free_at == T0 + 150


async def test_release_after_the_month_turns_charges_the_new_month(counters: Counters) -> None:
    assert await counters.acquire("a", [budget(win=MONTH, amount=2.0)], epoch(2026, 3, 31, 23, 59)) is None
    await counters.release("a", [Charge("k", MONTH, 1.5)], epoch(2026, 4, 1, 0, 1))
    assert (await counters.state("k", MONTH, epoch(2026, 4, 1, 0, 1))).used == 1.5


async def test_float_drift_never_shows(counters: Counters) -> None:
    amounts = [0.1, 0.2, 0.3, 0.7, 1e-6, 0.123456789]
    for i, amount in enumerate(amounts):
        assert await counters.acquire(f"r{i}", [budget(limit=100.0, amount=amount)], T0) is None
    assert (await counters.state("k", H5, T0)).used == round(sum(amounts), 9)
    for i in range(len(amounts)):
        await counters.release(f"r{i}", [Charge("k", H5, 0.0)], T0 + 1)
    state = await counters.state("k", H5, T0 + 1)
    assert state.used == 0.0 and state.next_free_at is None
    await counters.charge("k", H5, 0.1, T0 + 2)
    await counters.charge("k", H5, 0.2, T0 + 2)
    assert (await counters.state("k", H5, T0 + 2)).used == 0.3


async def test_release_frees_every_concurrency_slot_of_the_lease(counters: Counters) -> None:
    limits = [Limit("key:conc", CONCURRENT, 1, 1, "conc"), Limit("team:conc", CONCURRENT, 1, 1, "conc")]
    assert await counters.acquire("a", limits, T0) is None
    assert await counters.acquire("b", limits[1:], T0) is not None
    await counters.release("a", [], T0 + 1)
    assert await counters.acquire("b", limits, T0 + 1) is None


async def test_release_refuses_bad_charges_before_settling(counters: Counters) -> None:
    assert await counters.acquire("a", [budget()], T0) is None
    with pytest.raises(ValueError, match="twice"):
        await counters.release("a", [Charge("k", H5, 1.0), Charge("k", H5, 1.0)], T0)
    with pytest.raises(ValueError, match="non-negative"):
        await counters.release("a", [Charge("k", H5, -1.0)], T0)
    await counters.release("a", [Charge("k", H5, 0.5)], T0)  # the lease is still there to settle
    assert (await counters.state("k", H5, T0)).used == 0.5


async def test_a_lease_lives_lease_ttl(make_counters: MakeCounters) -> None:
    counters = make_counters(lease_ttl=60)
    assert await counters.acquire("a", [budget(amount=2.0)], T0) is None
    await counters.release("a", [Charge("k", H5, 0.5)], T0 + 59)
    assert (await counters.state("k", H5, T0 + 59)).used == 0.5
