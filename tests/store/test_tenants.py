from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelgate.store import Budget, Database, KeyRecord, StoreConflict, StoreNotFound, TenantStore
from tests.store.conftest import T0, Clock


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@pytest.fixture
def tenants(db: Database, clock: Clock) -> TenantStore:
    return TenantStore(db, clock=clock)


async def new_key(tenants: TenantStore, name: str, **attributes: object) -> KeyRecord:
    return await tenants.create_key(name, key_hash=digest(name), hint=f"sk-mg-{name[:4]}", **attributes)  # type: ignore[arg-type]


# teams


async def test_team_round_trip(tenants: TenantStore) -> None:
    budgets = (Budget("7d", usd=5.0), Budget("month", credits=1000.0), Budget("5h", usd=1.0, credits=200.0))
    team = await tenants.create_team("research", budgets=budgets, rpm=60, tpm=100_000, metadata={"cost_center": 42})
    assert team.id.startswith("team_") and team.name == "research"
    assert team.budgets == budgets
    assert (team.rpm, team.tpm, team.concurrency) == (60, 100_000, None)
    assert team.metadata == {"cost_center": 42}
    assert team.created_at == team.updated_at == T0 and team.created_at.tzinfo is UTC
    assert await tenants.get_team(team.id) == team
    assert await tenants.get_team("research") == team


async def test_teams_listed_by_name(tenants: TenantStore) -> None:
    for name in ("b", "c", "a"):
        await tenants.create_team(name)
    assert [team.name for team in await tenants.list_teams()] == ["a", "b", "c"]


async def test_team_update_is_partial(tenants: TenantStore, clock: Clock) -> None:
    team = await tenants.create_team("t", budgets=[Budget("total", usd=100.0)], rpm=10, tpm=1000, concurrency=2)
    later = clock.advance(5)
    updated = await tenants.update_team("t", rpm=20, concurrency=None, name="t2")
    assert (updated.name, updated.rpm, updated.tpm, updated.concurrency) == ("t2", 20, 1000, None)
    assert updated.budgets == team.budgets and updated.created_at == T0 and updated.updated_at == later
    assert await tenants.get_team(team.id) == updated
    assert await tenants.update_team(team.id) == updated  # nothing to change: not even updated_at


async def test_team_conflicts_and_misses(tenants: TenantStore) -> None:
    await tenants.create_team("taken")
    other = await tenants.create_team("other")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await tenants.create_team("taken")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await tenants.update_team(other.id, name="taken")
    for call in (tenants.get_team("nope"), tenants.update_team("nope", rpm=1), tenants.delete_team("nope")):
        with pytest.raises(StoreNotFound, match="'nope'"):
            await call
    with pytest.raises(TypeError, match="unknown team field"):
        await tenants.update_team("taken", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="non-empty"):
        await tenants.create_team(" ")


async def test_team_deleted_only_once_no_key_uses_it(tenants: TenantStore) -> None:
    team = await tenants.create_team("t")
    key = await new_key(tenants, "k", team_id=team.id)
    await tenants.update_key(key.id, revoked_at=T0)
    with pytest.raises(StoreConflict, match="still has 1 key"):
        await tenants.delete_team("t")
    await tenants.update_key(key.id, team_id=None)
    await tenants.delete_team("t")
    assert await tenants.list_teams() == []


async def test_an_id_wins_over_another_rows_name(tenants: TenantStore) -> None:
    first = await tenants.create_team("first")
    impostor = await tenants.create_team(first.id)  # a name that looks like the first team's id
    assert await tenants.get_team(first.id) == first
    assert (await tenants.update_team(impostor.id, rpm=1)).rpm == 1


# keys


async def test_key_round_trip(tenants: TenantStore) -> None:
    team = await tenants.create_team("t")
    expires = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    key = await tenants.create_key(
        "laptop",
        key_hash=digest("sk-mg-secret"),
        hint="sk-mg-secr",
        team_id=team.id,
        models=["claude-*", "gpt-5"],
        expires_at=expires,
        budgets=[Budget("7d", usd=5.0)],
        rpm=60,
        tpm=50_000,
        concurrency=4,
        max_tokens=8192,
        ip_allow=["10.0.0.0/8", "2001:db8::/32"],
        ip_limit=3,
        ip_window="24h",
        metadata={"owner": "ana", "tags": ["a", "b"]},
    )
    assert key.id.startswith("key_")
    assert key.models == ("claude-*", "gpt-5") and key.ip_allow == ("10.0.0.0/8", "2001:db8::/32")
    assert key.expires_at == expires and key.expires_at.tzinfo is UTC
    assert key.revoked_at is key.quarantined_at is key.quarantine_reason is None
    assert key.budgets == (Budget("7d", usd=5.0),)
    assert (key.rpm, key.tpm, key.concurrency, key.max_tokens, key.ip_limit, key.ip_window) == (
        60,
        50_000,
        4,
        8192,
        3,
        "24h",
    )
    assert key.metadata == {"owner": "ana", "tags": ["a", "b"]}
    assert await tenants.get_key(key.id) == key
    assert await tenants.get_key("laptop") == key
    assert await tenants.find_key_by_hash(digest("sk-mg-secret")) == key
    assert await tenants.find_key_by_hash(digest("unknown")) is None


async def test_key_defaults_are_empty_and_null(tenants: TenantStore) -> None:
    key = await new_key(tenants, "bare")
    assert (key.team_id, key.expires_at, key.rpm, key.max_tokens, key.ip_limit, key.ip_window) == (None,) * 6
    assert (key.models, key.budgets, key.ip_allow, key.metadata) == ((), (), (), {})
    assert await tenants.get_key("bare") == key


async def test_key_conflicts_and_misses(tenants: TenantStore) -> None:
    await new_key(tenants, "taken")
    other = await new_key(tenants, "other")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await tenants.create_key("taken", key_hash=digest("fresh"), hint="sk-mg-f")
    with pytest.raises(StoreConflict, match="key hash"):
        await tenants.create_key("fresh", key_hash=digest("taken"), hint="sk-mg-f")
    with pytest.raises(StoreConflict, match="'taken' already exists"):
        await tenants.update_key(other.id, name="taken")
    with pytest.raises(StoreConflict, match="key hash"):
        await tenants.update_key(other.id, key_hash=digest("taken"), hint="sk-mg-t")
    with pytest.raises(StoreNotFound, match="no team"):
        await new_key(tenants, "orphan", team_id="team_missing")
    with pytest.raises(StoreNotFound, match="no team"):
        await tenants.update_key("other", team_id="team_missing")
    for call in (tenants.get_key("nope"), tenants.update_key("nope", rpm=1)):
        with pytest.raises(StoreNotFound, match="no key with id or name 'nope'"):
            await call
    assert [key.name for key in await tenants.list_keys()] == ["other", "taken"]


async def test_key_arguments_checked(tenants: TenantStore) -> None:
    with pytest.raises(ValueError, match="never the secret"):
        await tenants.create_key("k", key_hash="sk-mg-the-secret-itself", hint="sk-mg-the")
    key = await new_key(tenants, "k")
    with pytest.raises(ValueError, match="together"):
        await tenants.update_key(key.id, key_hash=digest("new"))
    with pytest.raises(TypeError, match="unknown key field"):
        await tenants.update_key(key.id, secret="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="sequence of strings"):
        await tenants.update_key(key.id, models="claude-*")
    with pytest.raises(ValueError, match="timezone-aware"):
        await tenants.update_key(key.id, expires_at=datetime(2027, 1, 1))
    with pytest.raises(ValueError, match="at most 200"):
        await tenants.update_key(key.id, name="n" * 201)
    with pytest.raises(ValueError, match="hint"):
        await tenants.update_key(key.id, key_hash=digest("new"), hint="h" * 33)
    with pytest.raises(ValueError, match="budget window"):
        Budget("1y", usd=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="usd or in credits"):
        Budget("7d")


async def test_key_lifecycle_updates(tenants: TenantStore, clock: Clock) -> None:
    key = await new_key(tenants, "k", rpm=5, models=["a"])
    at = clock.advance(60)
    quarantined = await tenants.update_key("k", quarantined_at=at, quarantine_reason="ip abuse: 40 addresses in 1h")
    assert (quarantined.quarantined_at, quarantined.quarantine_reason) == (at, "ip abuse: 40 addresses in 1h")
    released = await tenants.update_key("k", quarantined_at=None, quarantine_reason=None)
    assert released.quarantined_at is None and released.rpm == 5 and released.models == ("a",)
    rotated = await tenants.update_key("k", key_hash=digest("rotated"), hint="sk-mg-rota")
    assert await tenants.find_key_by_hash(digest("k")) is None
    assert await tenants.find_key_by_hash(digest("rotated")) == rotated
    revoked = await tenants.update_key(key.id, revoked_at=clock.advance(1), models=[], ip_allow=["127.0.0.1"])
    assert (
        revoked.revoked_at == T0 + timedelta(seconds=61) and revoked.models == () and revoked.ip_allow == ("127.0.0.1",)
    )
    assert revoked.created_at == T0 and revoked.updated_at == revoked.revoked_at
    assert await tenants.get_key(key.id) == revoked


async def test_keys_listed_by_team(tenants: TenantStore) -> None:
    red, blue = await tenants.create_team("red"), await tenants.create_team("blue")
    for name, team in (("r2", red), ("b1", blue), ("r1", red), ("none", None)):
        await new_key(tenants, name, team_id=None if team is None else team.id)
    assert [key.name for key in await tenants.list_keys(team_id=red.id)] == ["r1", "r2"]
    assert [key.name for key in await tenants.list_keys()] == ["b1", "none", "r1", "r2"]
    moved = await tenants.update_key("b1", team_id=red.id)
    assert moved.team_id == red.id
    assert [key.name for key in await tenants.list_keys(team_id=blue.id)] == []


async def test_changed_since_for_cache_refresh(tenants: TenantStore, clock: Clock) -> None:
    old = await new_key(tenants, "old")
    team = await tenants.create_team("t")
    mark = clock.advance(10)
    new = await new_key(tenants, "new")
    clock.advance(10)
    revoked = await tenants.update_key(old.id, revoked_at=clock.now)
    assert await tenants.keys_changed_since(mark) == [new, revoked]  # oldest write first
    assert await tenants.keys_changed_since(new.updated_at) == [new, revoked]  # inclusive
    assert await tenants.keys_changed_since(clock.advance(1)) == []
    assert await tenants.teams_changed_since(mark) == []
    updated = await tenants.update_team(team.id, rpm=1)
    assert await tenants.teams_changed_since(mark) == [updated]
    with pytest.raises(ValueError, match="timezone-aware"):
        await tenants.keys_changed_since(datetime(2026, 1, 1))
