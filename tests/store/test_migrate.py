from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from modelgate.store import (
    Database,
    RequestStore,
    TenantStore,
    current_revision,
    head_revision,
    upgrade,
    upgrade_database,
    upgrade_sync,
)
from modelgate.store.migrate import alembic_config
from modelgate.store.schema import keys, metadata, requests
from tests.store.conftest import PG_URL, fresh_database


async def _tables(db: Database) -> set[str]:
    async with db.read() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_empty_then_again(backend: str, tmp_path: Path) -> None:
    async with fresh_database(backend, tmp_path) as db:
        assert await current_revision(db) is None
        assert await _tables(db) == set()
        await upgrade_database(db)
        assert await current_revision(db) == head_revision() == "0005"
        tables = {"alembic_version", "teams", "keys", "ledger", "endpoints", "requests", "request_bodies", "users"}
        assert await _tables(db) == tables
        team = await TenantStore(db).create_team("kept")
        await upgrade_database(db)  # nothing to do, nothing lost
        assert await current_revision(db) == "0005"
        assert await TenantStore(db).get_team("kept") == team


async def test_migrations_create_what_the_schema_declares(migrated: Database) -> None:
    """``schema.py`` and ``0001_tenancy.py`` must not drift apart: Alembic finds no difference."""

    def diff(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with migrated.read() as conn:
        assert await conn.run_sync(diff) == []


async def test_concurrent_upgrades_queue(backend: str, tmp_path: Path) -> None:
    """Several workers starting at once: one migrates, the others wait and find nothing to do."""
    async with fresh_database(backend, tmp_path) as db:
        others = [Database(db.url, schema=db.schema) for _ in range(2)]
        try:
            await asyncio.gather(upgrade_database(db), *(upgrade_database(other) for other in others))
        finally:
            for other in others:
                await other.close()
        assert await current_revision(db) == "0005"


async def test_upgrade_by_url(backend: str, tmp_path: Path) -> None:
    """What ``modelgate db upgrade`` calls: a URL in the usual spelling, async or from sync code."""
    async with fresh_database(backend, tmp_path) as db:
        url = f"sqlite:///{tmp_path}/by-url.db" if backend == "sqlite" else PG_URL
        schema = db.schema
        await upgrade(url, schema=schema)
        await asyncio.to_thread(upgrade_sync, url, schema=schema)
        async with Database(url, schema=schema) as check:
            assert await current_revision(check) == "0005"


async def test_keys_made_before_0002_intercept_warmups(backend: str, tmp_path: Path) -> None:
    """A key written at 0001 gets ``intercept_warmup`` true when 0002 adds the column."""
    async with fresh_database(backend, tmp_path) as db:
        await upgrade_database(db, "0001")
        now = datetime.now(UTC)
        row = {"id": "key_old", "name": "old", "key_hash": "a" * 64, "hint": "sk-mg-old", "models": [], "budgets": []}
        row |= {"ip_allow": [], "metadata": {}, "created_at": now, "updated_at": now}
        async with db.write() as conn:  # the columns of 0001 only
            await conn.execute(sa.insert(keys).values(row))
        await upgrade_database(db)
        assert await current_revision(db) == "0005"
        assert (await TenantStore(db).get_key("old")).intercept_warmup is True


async def test_0005_adds_the_upstream_request_id_to_earlier_records_and_goes_back(backend: str, tmp_path: Path) -> None:
    """A record written at 0004 reads back after 0005 with no upstream id (none is backfilled
    from its attempts: a rewrite of every row of a big log would hold the upgrade), and 0005
    downgrades cleanly on both dialects."""
    async with fresh_database(backend, tmp_path) as db:
        await upgrade_database(db, "0004")
        row = {"request_id": "req_old", "at": datetime.now(UTC), "door": "anthropic", "endpoint": "messages"}
        row |= {"stream": False, "status": 200, "latency_ms": 5, "attempts": [{"upstream_request_id": "req_011Cold"}]}
        row |= {f"{kind}_tokens": 0 for kind in ("input", "output", "cache_read", "cache_write", "reasoning")}
        row |= {"cost_usd": 0.0, "tool_calls": 0}
        async with db.write() as conn:  # the columns of 0004 only
            await conn.execute(sa.insert(requests).values(row))
        await upgrade_database(db)
        old = await RequestStore(db).get("req_old")
        assert old is not None and (old.upstream_request_id, old.attempts) == (None, row["attempts"])
        assert await RequestStore(db).get("req_011Cold") is None

        def down(connection: sa.Connection) -> None:
            command.downgrade(alembic_config(connection), "0004")

        async with db.write() as conn:
            await conn.run_sync(down)
        assert await current_revision(db) == "0004"
        async with db.read() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in sa.inspect(c).get_columns("requests")})
            indexes = await conn.run_sync(lambda c: {ix["name"] for ix in sa.inspect(c).get_indexes("requests")})
        assert "upstream_request_id" not in columns and "ix_requests_upstream_request_id" not in indexes
        assert "ix_requests_request_id" in indexes  # the table copied by SQLite keeps its other indexes
