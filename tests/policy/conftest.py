"""The tenancy tests run twice: on the embedded defaults (SQLite, counters in process) and on
the fleet's (a fresh PostgreSQL database, Redis). Neither is skipped when missing."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from modelgate.store import Database, TenantStore, upgrade

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module", params=["embedded", "postgres+redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The ``server`` settings of the store and counters the gateway runs on."""
    if request.param == "embedded":
        yield {}
        return
    name = f"mg_policy_{secrets.token_hex(6)}"
    server = create_async_engine(
        f"{POSTGRES.replace('postgresql', 'postgresql+asyncpg')}/test", isolation_level="AUTOCOMMIT"
    )
    redis = Redis.from_url(REDIS_URL)
    try:
        assert await redis.ping()  # type: ignore[misc]
        async with server.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES}/{name}"
        await upgrade(url)
        yield {"database_url": url, "redis_url": REDIS_URL}
        db = Database(url)
        try:  # the counters of this module's keys, so the shared Redis is left as it was
            for key in await TenantStore(db).list_keys():
                stale = [k async for k in redis.scan_iter(match=f"mg:*{key.id}*", count=1000)]
                if stale:
                    await redis.delete(*stale)
        finally:
            await db.close()
    finally:
        async with server.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.dispose()
        await redis.aclose()
