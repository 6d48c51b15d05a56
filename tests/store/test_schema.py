from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from modelgate.store import Database
from modelgate.store.schema import keys, teams


async def test_datetimes_come_back_aware_utc(db: Database) -> None:
    """Whatever zone goes in, the same instant comes out tagged UTC, on both dialects."""
    paris = timezone(timedelta(hours=1))
    written = datetime(2026, 3, 10, 13, 0, 0, 123456, tzinfo=paris)
    row = {"id": "team_x", "name": "x", "budgets": [], "metadata": {}, "created_at": written, "updated_at": written}
    async with db.write() as conn:
        await conn.execute(sa.insert(teams).values(row))
    async with db.read() as conn:
        read = await conn.scalar(sa.select(teams.c.created_at))
        later = await conn.scalar(
            sa.select(sa.func.count()).where(teams.c.updated_at > datetime(2026, 3, 10, 11, 59, tzinfo=UTC))
        )
        earlier = await conn.scalar(
            sa.select(sa.func.count()).where(teams.c.updated_at > datetime(2026, 3, 10, 12, 1, tzinfo=UTC))
        )
    assert read == written
    assert read.tzinfo is UTC
    assert read.isoformat() == "2026-03-10T12:00:00.123456+00:00"
    assert (later, earlier) == (1, 0)  # compared as instants, not as wall clocks


async def test_naive_datetimes_refused(db: Database) -> None:
    naive = datetime(2026, 3, 10, 12, 0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        async with db.write() as conn:
            await conn.execute(
                sa.insert(teams).values(id="t", name="t", budgets=[], metadata={}, created_at=naive, updated_at=naive)
            )


async def test_json_and_nulls_round_trip(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(
            sa.insert(keys).values(
                id="key_x",
                name="x",
                key_hash="0" * 64,
                hint="sk-mg-0000",
                models=[],
                ip_allow=["10.0.0.0/8", "::1"],
                budgets=[{"window": "7d", "usd": None, "credits": 12.5}],
                metadata={"owner": {"email": "a@b.c"}, "n": [1, 2]},
                created_at=now,
                updated_at=now,
            )
        )
    async with db.read() as conn:
        row = (await conn.execute(sa.select(keys))).mappings().one()
    assert row["models"] == [] and row["ip_allow"] == ["10.0.0.0/8", "::1"]
    assert row["budgets"] == [{"window": "7d", "usd": None, "credits": 12.5}]
    assert row["metadata"] == {"owner": {"email": "a@b.c"}, "n": [1, 2]}
    assert row["team_id"] is row["expires_at"] is row["rpm"] is row["ip_window"] is None
