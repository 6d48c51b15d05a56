from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from modelgate.store import Database, LedgerRow, LedgerStore, Spend, SpendBucket, TenantStore, UsageGroup
from tests.store.conftest import T0

EPOCH0 = int(T0.timestamp())


def row(seconds: float, key_id: str | None = "key_a", team_id: str | None = "team_x", **fields: Any) -> LedgerRow:
    values: dict[str, Any] = {
        "request_id": f"req_{seconds}",
        "door": "anthropic",
        "endpoint": "/v1/messages",
        "model": "sonnet",
        "served_model": "claude-sonnet-4-6",
        "provider": "anth",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": 0.25,
        "credits": 2.5,
        "latency_ms": 800,
    }
    values.update(fields)
    return LedgerRow(at=T0 + timedelta(seconds=seconds), key_id=key_id, team_id=team_id, **values)


@pytest.fixture
def ledger(db: Database) -> LedgerStore:
    return LedgerStore(db)


async def test_spend_sums_one_owner_from_a_time(ledger: LedgerStore) -> None:
    await ledger.insert_many([])  # nothing to write is fine
    await ledger.insert_many(
        [
            row(-1),  # before the window
            row(0),  # on its edge: counted
            row(30, output_tokens=90, cost_usd=1.0, credits=10.0),
            row(40, key_id="key_b"),
            row(50, key_id="key_c", team_id="team_y"),
            row(60, key_id=None, team_id=None),  # the master key
        ]
    )
    assert await ledger.spend(key_id="key_a", since=T0) == Spend(1.25, 12.5, 2, 300)
    assert await ledger.spend(team_id="team_x", since=T0) == Spend(1.5, 15.0, 3, 410)
    assert await ledger.spend(key_id="key_a", since=T0 - timedelta(hours=1)) == Spend(1.5, 15.0, 3, 410)
    assert await ledger.spend(key_id="key_z", since=T0) == Spend(0.0, 0.0, 0, 0)
    cost, credits, requests, tokens = await ledger.spend(team_id="team_y", since=T0)
    assert (cost, credits, requests, tokens) == (0.25, 2.5, 1, 110)


async def test_spend_needs_one_owner_and_an_aware_time(ledger: LedgerStore) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await ledger.spend(since=T0)
    with pytest.raises(ValueError, match="exactly one"):
        await ledger.spend(key_id="a", team_id="b", since=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.spend(key_id="a", since=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.insert_many(
            [
                LedgerRow(
                    request_id="r",
                    at=datetime(2026, 1, 1),
                    key_id=None,
                    team_id=None,
                    door="d",
                    endpoint="e",
                    model="m",
                )
            ]
        )


async def test_spend_buckets_align_to_unix_time(ledger: LedgerStore) -> None:
    await ledger.insert_many(
        [
            row(-0.5),  # the minute before T0, outside `since` below
            row(0.0),
            row(59.999, cost_usd=0.5, credits=5.0),  # still the first minute, to the microsecond
            row(60.0),
            row(3600.25, cost_usd=2.0, credits=0.0),
            row(61, key_id="key_b"),
        ]
    )
    assert await ledger.spend_buckets(key_id="key_a", since=T0) == [
        SpendBucket(EPOCH0, 0.75, 7.5),
        SpendBucket(EPOCH0 + 60, 0.25, 2.5),
        SpendBucket(EPOCH0 + 3600, 2.0, 0.0),
    ]
    assert await ledger.spend_buckets(key_id="key_a", since=T0 - timedelta(seconds=1), bucket_seconds=3600) == [
        SpendBucket(EPOCH0 - 3600, 0.25, 2.5),
        SpendBucket(EPOCH0, 1.0, 10.0),
        SpendBucket(EPOCH0 + 3600, 2.0, 0.0),
    ]
    start, cost, credits = (await ledger.spend_buckets(team_id="team_x", since=T0 + timedelta(seconds=60)))[0]
    assert (start, cost, credits) == (EPOCH0 + 60, 0.5, 5.0)
    with pytest.raises(ValueError, match="bucket_seconds"):
        await ledger.spend_buckets(key_id="key_a", since=T0, bucket_seconds=0)


async def test_summary_by_key_names_the_keys(db: Database, ledger: LedgerStore) -> None:
    tenants = TenantStore(db)
    team = await tenants.create_team("red")
    alpha = await tenants.create_key("alpha", key_hash="a" * 64, hint="sk-mg-a", team_id=team.id)
    await ledger.insert_many(
        [
            row(0, key_id=alpha.id, team_id=team.id, cache_read_tokens=1000, cache_write_tokens=50, reasoning_tokens=7),
            row(1, key_id=alpha.id, team_id=team.id, model="gpt-5", endpoint="/v1/chat/completions", door="openai"),
            row(2, key_id="key_gone", team_id="team_gone", cost_usd=3.0, credits=30.0),
            row(3, key_id=None, team_id=None, cost_usd=0.0, credits=0.0, status=500),
        ]
    )
    by_key = await ledger.summary()
    assert by_key == [
        UsageGroup("key_gone", None, 1, 100, 10, 0, 0, 0, 3.0, 30.0),
        UsageGroup(alpha.id, "alpha", 2, 200, 20, 1000, 50, 7, 0.5, 5.0),
        UsageGroup(None, None, 1, 100, 10, 0, 0, 0, 0.0, 0.0),
    ]
    assert by_key[1].tokens == 220
    by_team = await ledger.summary(group_by="team")
    assert [(g.group, g.name, g.requests) for g in by_team] == [
        ("team_gone", None, 1),
        (team.id, "red", 2),
        (None, None, 1),
    ]
    by_model = await ledger.summary(group_by="model", key_id=alpha.id)
    assert [(g.group, g.name, g.requests, g.cost_usd) for g in by_model] == [
        ("gpt-5", None, 1, 0.25),
        ("sonnet", None, 1, 0.25),
    ]
    by_door = await ledger.summary(group_by="door", team_id=team.id)
    assert [(g.group, g.requests) for g in by_door] == [("anthropic", 1), ("openai", 1)]
    window = await ledger.summary(group_by="endpoint", since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3))
    assert [(g.group, g.requests) for g in window] == [("/v1/messages", 1), ("/v1/chat/completions", 1)]
    assert await ledger.summary(since=T0 + timedelta(days=1)) == []
    with pytest.raises(ValueError, match="group_by"):
        await ledger.summary(group_by="colour")  # type: ignore[arg-type]


async def test_a_large_batch_in_one_call(ledger: LedgerStore) -> None:
    await ledger.insert_many([row(i / 10, request_id=f"r{i}", cost_usd=0.001) for i in range(5000)])
    spend = await ledger.spend(key_id="key_a", since=T0)
    assert spend.requests == 5000 and spend.cost_usd == pytest.approx(5.0)


async def test_long_client_strings_never_fail_a_batch(ledger: LedgerStore) -> None:
    model = "m" * 500
    await ledger.insert_many([row(0, model=model, endpoint=f"/v1beta/models/{model}:streamGenerateContent")])
    assert [g.group for g in await ledger.summary(group_by="model")] == [model]
