from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest

from modelgate.admin import Admin
from modelgate.admin.service import EPOCH, key_status, window_start
from modelgate.policy.keys import digest, is_virtual
from modelgate.store import Budget, LedgerStore, StoreConflict, StoreNotFound, TenantStore
from tests.admin.conftest import ledger_row
from tests.store.conftest import T0, Clock

# keys


async def test_a_new_key_is_stored_only_as_its_digest_and_hint(admin: Admin, tenants: TenantStore) -> None:
    key, secret = await admin.create_key("alice", budgets=[Budget("7d", usd=5.0)], rpm=60, models=["claude-*"])
    assert is_virtual(secret) and len(secret) > 40
    assert key.key_hash == digest(secret) and key.hint == secret[:10]
    assert secret not in {str(getattr(key, f.name)) for f in fields(key)}
    assert await tenants.find_key_by_hash(digest(secret)) == key
    assert (key.name, key.rpm, key.models, key.budgets) == ("alice", 60, ("claude-*",), (Budget("7d", usd=5.0),))
    assert key_status(key, T0) == "active"


async def test_a_key_joins_a_team_by_name_or_id(admin: Admin) -> None:
    team = await admin.create_team("research")
    by_name, _ = await admin.create_key("a", team="research")
    by_id, _ = await admin.create_key("b", team=team.id)
    assert by_name.team_id == by_id.team_id == team.id
    with pytest.raises(StoreNotFound, match="'nope'"):
        await admin.create_key("c", team="nope")
    assert [k.name for k in await admin.list_keys(team="research")] == ["a", "b"]
    assert await admin.show_key(by_name.id) == await admin.show_key("a") == by_name


async def test_key_fields_are_checked(admin: Admin) -> None:
    for kwargs, message in (
        ({"rpm": 0}, "rpm must be a whole number of at least 1"),
        ({"max_tokens": -5}, "max_tokens"),
        ({"ip_allow": ["10.0.0.0/8", "not-an-ip"]}, "'not-an-ip' is not an IP address"),
        ({"ip_window": "forever"}, "ip_window is a duration"),
        ({"models": ["  "]}, "models: an entry is empty"),
        ({"budgets": [Budget("7d", usd=1.0), Budget("7d", credits=5.0)]}, "more than one budget over the 7d"),
    ):
        with pytest.raises(ValueError, match=message):
            await admin.create_key("k", **kwargs)  # type: ignore[arg-type]
    assert await admin.list_keys() == []


async def test_key_defaults_an_ip_window_and_reads_naive_times_as_utc(admin: Admin) -> None:
    key, _ = await admin.create_key(
        "k", ip_limit=3, ip_allow=["10.0.0.0/8", "10.0.0.0/8", "::1"], expires_at=datetime(2027, 1, 1)
    )
    assert (key.ip_limit, key.ip_window, key.ip_allow) == (3, "24h", ("10.0.0.0/8", "::1"))
    assert key.expires_at == datetime(2027, 1, 1, tzinfo=UTC)


async def test_update_key_changes_only_what_is_given(admin: Admin, clock: Clock) -> None:
    await admin.create_team("t1")
    key, secret = await admin.create_key("k", team="t1", rpm=10, tpm=1000, budgets=[Budget("total", usd=1.0)])
    clock.advance(60)
    updated = await admin.update_key("k", name="k2", rpm=None, budgets=[Budget("month", credits=50.0)], team=None)
    assert (updated.name, updated.rpm, updated.tpm, updated.team_id) == ("k2", None, 1000, None)
    assert updated.budgets == (Budget("month", credits=50.0),)
    assert updated.key_hash == digest(secret) and updated.updated_at == T0 + timedelta(seconds=60)
    later = await admin.update_key(key.id, ip_limit=5, team="t1")
    assert (later.ip_limit, later.ip_window, later.team_id) == (5, "24h", key.team_id)
    with pytest.raises(ValueError, match="no changeable field"):
        await admin.update_key("k2", key_hash="0" * 64)  # type: ignore[call-arg]
    with pytest.raises(StoreNotFound):
        await admin.update_key("k2", team="nope")
    with pytest.raises(StoreNotFound):
        await admin.update_key("nope", rpm=1)


async def test_revoke_stamps_once(admin: Admin, clock: Clock) -> None:
    await admin.create_key("k")
    clock.advance(10)
    revoked = await admin.revoke_key("k")
    assert revoked.revoked_at == T0 + timedelta(seconds=10) and key_status(revoked, clock.now) == "revoked"
    clock.advance(10)
    assert (await admin.revoke_key("k")).revoked_at == revoked.revoked_at


async def test_rotate_keeps_the_key_and_retires_the_old_secret(admin: Admin, tenants: TenantStore) -> None:
    key, old = await admin.create_key("k", rpm=7, budgets=[Budget("7d", usd=5.0)])
    rotated, new = await admin.rotate_key("k")
    assert new != old and is_virtual(new)
    assert (rotated.id, rotated.name, rotated.rpm, rotated.budgets) == (key.id, "k", 7, key.budgets)
    assert rotated.key_hash == digest(new) and rotated.hint == new[:10]
    assert await tenants.find_key_by_hash(digest(old)) is None
    assert await tenants.find_key_by_hash(digest(new)) == rotated
    await admin.revoke_key("k")
    with pytest.raises(StoreConflict, match="revoked"):
        await admin.rotate_key("k")


async def test_release_lifts_a_quarantine(admin: Admin, tenants: TenantStore) -> None:
    key, _ = await admin.create_key("k")
    assert await admin.release_key("k") == key  # nothing to lift
    await tenants.update_key("k", quarantined_at=T0, quarantine_reason="12 IPs in 24h")
    assert key_status(await admin.show_key("k"), T0) == "quarantined"
    released = await admin.release_key(key.id)
    assert (released.quarantined_at, released.quarantine_reason) == (None, None)
    assert key_status(released, T0) == "active"


async def test_an_expired_key_says_so(admin: Admin) -> None:
    key, _ = await admin.create_key("k", expires_at=T0)
    assert key_status(key, T0 - timedelta(seconds=1)) == "active"
    assert key_status(key, T0) == "expired"


# teams


async def test_teams_round_trip(admin: Admin) -> None:
    team = await admin.create_team("t", budgets=[Budget("7d", usd=50.0)], rpm=100, metadata={"owner": "ops"})
    assert await admin.show_team("t") == team and await admin.list_teams() == [team]
    updated = await admin.update_team(team.id, rpm=None, concurrency=4)
    assert (updated.rpm, updated.concurrency, updated.budgets) == (None, 4, team.budgets)
    assert await admin.team_names() == {team.id: "t"}
    with pytest.raises(StoreConflict):
        await admin.create_team("t")
    with pytest.raises(ValueError, match="tpm"):
        await admin.update_team("t", tpm=0)
    with pytest.raises(ValueError, match="no changeable field"):
        await admin.update_team("t", colour="red")  # type: ignore[call-arg]
    await admin.create_key("member", team="t")
    with pytest.raises(StoreConflict, match="still has 1 key"):
        await admin.delete_team("t")
    await admin.update_key("member", team=None)
    assert (await admin.delete_team("t")).id == team.id
    with pytest.raises(StoreNotFound):
        await admin.show_team("t")


# usage


async def test_usage_groups_and_filters_by_key_and_team(admin: Admin, ledger: LedgerStore) -> None:
    team = await admin.create_team("t")
    a, _ = await admin.create_key("a", team="t")
    b, _ = await admin.create_key("b")
    await ledger.insert_many(
        [
            ledger_row(-7200, a.id, team.id, cost_usd=2.0, model="opus"),
            ledger_row(-60, a.id, team.id, cost_usd=1.0),
            ledger_row(-30, b.id, cost_usd=0.5),
            ledger_row(-10, None, cost_usd=0.25),
        ]
    )
    by_key = await admin.usage()
    assert [(g.name, g.requests, g.cost_usd) for g in by_key] == [("a", 2, 3.0), ("b", 1, 0.5), (None, 1, 0.25)]
    assert [(g.group, g.cost_usd) for g in await admin.usage(team="t", group_by="model")] == [
        ("opus", 2.0),
        ("sonnet", 1.0),
    ]
    recent = await admin.usage(key="a", since=T0 - timedelta(hours=1))
    assert [(g.group, g.requests) for g in recent] == [(a.id, 1)]
    with pytest.raises(StoreNotFound):
        await admin.usage(key="nope")
    with pytest.raises(ValueError, match="group_by"):
        await admin.usage(group_by="colour")  # type: ignore[arg-type]


def test_window_starts() -> None:
    now = datetime(2026, 3, 10, 12, 30, 15, tzinfo=UTC)
    assert window_start("5h", now) == now - timedelta(hours=5)
    assert window_start("7d", now) == now - timedelta(days=7)
    assert window_start("month", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert window_start("total", now) == EPOCH


async def test_windows_sum_each_budget_since_its_start(admin: Admin, ledger: LedgerStore) -> None:
    team = await admin.create_team("t", budgets=[Budget("month", usd=10.0)], rpm=100)
    budgets = [Budget("5h", usd=2.0), Budget("7d", usd=5.0, credits=80.0), Budget("month", usd=0.0)]
    budgets.append(Budget("total", credits=100.0))
    key, _ = await admin.create_key("k", team="t", budgets=budgets)
    hour, day = 3600, 86400
    await ledger.insert_many(
        [
            ledger_row(-1 * hour, key.id, team.id),  # in every window
            ledger_row(-6 * hour, key.id, team.id),  # out of 5h
            ledger_row(-8 * day, key.id, team.id),  # out of 7d; in the month (March 2nd)
            ledger_row(-10 * day, key.id, team.id),  # February: only in total
            ledger_row(-2 * hour, "key_other", team.id, cost_usd=3.0),  # the team's, not the key's
        ]
    )
    windows = await admin.windows("k")
    assert windows.at == T0 and windows.key == key and windows.team == team
    used = [(w.window, w.used_usd, w.requests, w.used_percent) for w in windows.key_windows]
    assert used == [("5h", 1.0, 1, 50.0), ("7d", 2.0, 2, 40.0), ("month", 3.0, 3, 100.0), ("total", 4.0, 4, 40.0)]
    seven = windows.key_windows[1]
    assert (seven.used_credits, seven.limit_usd, seven.limit_credits, seven.tokens) == (20.0, 5.0, 80.0, 220)
    assert seven.since == T0 - timedelta(days=7)
    [month] = windows.team_windows
    assert (month.window, month.used_usd, month.limit_usd, month.used_percent) == ("month", 6.0, 10.0, 60.0)
    alone, _ = await admin.create_key("alone")
    bare = await admin.windows(alone.id)
    assert (bare.key_windows, bare.team, bare.team_windows) == ((), None, ())


async def test_a_key_may_send_its_warmups_upstream(admin: Admin) -> None:
    """``intercept_warmup``: true unless given, changed like any field, a bool only."""
    key, _ = await admin.create_key("k")
    assert key.intercept_warmup is True
    opted_out, _ = await admin.create_key("j", intercept_warmup=False)
    assert opted_out.intercept_warmup is False
    assert (await admin.update_key("k", intercept_warmup=False)).intercept_warmup is False
    assert (await admin.show_key("k")).intercept_warmup is False
    assert (await admin.update_key("k", rpm=5)).intercept_warmup is False  # kept when not given
    with pytest.raises(ValueError, match="intercept_warmup is true or false"):
        await admin.update_key("k", intercept_warmup="no")  # type: ignore[typeddict-item]


async def test_a_key_may_keep_its_bodies(admin: Admin) -> None:
    """``log_bodies``: false unless given, changed like any field, a bool only."""
    key, _ = await admin.create_key("k")
    assert key.log_bodies is False
    kept, _ = await admin.create_key("j", log_bodies=True)
    assert kept.log_bodies is True
    assert (await admin.update_key("k", log_bodies=True)).log_bodies is True
    assert (await admin.update_key("k", rpm=5)).log_bodies is True  # kept when not given
    assert (await admin.show_key("k")).log_bodies is True
    with pytest.raises(ValueError, match="log_bodies is true or false"):
        await admin.update_key("k", log_bodies="yes")  # type: ignore[typeddict-item]
