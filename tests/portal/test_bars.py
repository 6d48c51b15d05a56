"""A key's budget windows as bars, and when each frees, on both store backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelgate.admin import Admin
from modelgate.portal.bars import next_month, team_bars, window_bars
from modelgate.store import Budget, LedgerStore
from tests.admin.conftest import admin, clock, db, ledger, ledger_row, migrated, requests, tenants  # noqa: F401  (fixtures)
from tests.store.conftest import T0, Clock


def test_next_month() -> None:
    assert next_month(datetime(2026, 1, 31, 23, tzinfo=UTC)) == datetime(2026, 2, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 12, 1, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


async def test_bars_and_when_they_free(admin: Admin, ledger: LedgerStore, clock: Clock) -> None:  # noqa: F811
    team = await admin.create_team("research", budgets=[Budget("month", usd=100.0)])
    key, _ = await admin.create_key(
        "alice",
        team=team.id,
        budgets=[Budget("5h", usd=4.0), Budget("7d", usd=10.0), Budget("total", usd=50.0, credits=1000.0)],
    )
    idle, _ = await admin.create_key("idle", budgets=[Budget("5h", usd=1.0)])
    await ledger.insert_many(
        [
            ledger_row(-6 * 3600, key.id, team.id),  # outside 5 h, inside 7 d
            ledger_row(-3600, key.id, team.id, cost_usd=0.0),  # free: frees nothing
            ledger_row(-1800, key.id, team.id),
            ledger_row(-60, key.id, team.id),
        ]
    )
    clock.now = T0
    windows, bars = await window_bars(admin, key.id)
    assert windows.key.id == key.id and windows.team is not None
    assert [(b.owner, b.window, b.label, b.percent) for b in bars] == [
        ("key", "5h", "5-hour", 50.0),
        ("key", "7d", "7-day", 30.0),
        ("key", "total", "Lifetime", 6.0),  # $3 of 50 and 30 credits of 1000: the fuller
        ("team", "month", "Month", 3.0),
    ]
    five_hours, seven_days, lifetime, month = bars
    assert five_hours.frees_at == T0 - timedelta(seconds=1800) + timedelta(hours=5)
    assert five_hours.frees_in == 4.5 * 3600
    assert seven_days.frees_at == T0 - timedelta(hours=6) + timedelta(days=7)
    assert lifetime.frees_at is None
    assert month.frees_at == datetime(2026, 4, 1, tzinfo=UTC)
    assert 'width="50.00"' in str(five_hours.bar)
    _, quiet = await window_bars(admin, idle.id)
    assert [(b.percent, b.frees_at) for b in quiet] == [(0.0, None)]
    _, listed = await window_bars(admin, key.id, frees=False)
    assert [b.frees_at for b in listed] == [None, None, None, None]


async def test_a_teams_bars_add_up_its_keys(admin: Admin, ledger: LedgerStore, clock: Clock) -> None:  # noqa: F811
    team = await admin.create_team("ops", budgets=[Budget("5h", usd=10.0), Budget("total", credits=200.0)])
    one, _ = await admin.create_key("one", team=team.id)
    two, _ = await admin.create_key("two", team=team.id)
    outsider, _ = await admin.create_key("outsider")
    await ledger.insert_many(
        [
            ledger_row(-7200, one.id, team.id),
            ledger_row(-600, two.id, team.id),
            ledger_row(-60, outsider.id),  # not the team's
        ]
    )
    clock.now = T0
    bars = await team_bars(admin, team)
    assert [(b.owner, b.window, b.percent) for b in bars] == [("team", "5h", 20.0), ("team", "total", 10.0)]
    five_hours, lifetime = bars
    assert five_hours.frees_at == T0 - timedelta(seconds=7200) + timedelta(hours=5)
    assert lifetime.frees_at is None
