"""One suite, two backends: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is the local server (127.0.0.1:5432, database ``test``, trust auth):
a test fails, never skips, when it is down. Others run tests on that database
at the same time, so each module migrates a schema of its own
(``mg_test_<hex>``) and drops it afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgate.store import Database, default_url, upgrade_database
from modelgate.store.schema import metadata

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")

# 2026-03-10 12:00:00 UTC, a round minute and hour.
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def fresh_database(backend: str, directory: Path) -> AsyncIterator[Database]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        async with Database(default_url(directory / secrets.token_hex(4))) as db:
            yield db
        return
    schema = f"mg_test_{secrets.token_hex(6)}"
    async with Database(PG_URL) as admin:
        async with admin.write() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            async with Database(PG_URL, schema=schema) as db:
                yield db
        finally:
            async with admin.write() as conn:
                await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=BACKENDS)
async def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    """The module's database on one backend, migrated once."""
    async with fresh_database(request.param, tmp_path_factory.mktemp("store")) as db:
        await upgrade_database(db)
        yield db


@pytest.fixture
async def db(migrated: Database) -> Database:
    """The module's database with every table emptied, so a test sees only its own rows."""
    async with migrated.write() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
    return migrated


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
