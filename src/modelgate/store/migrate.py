"""Apply the store's migrations from code: no ``alembic.ini`` at run time.

``serve`` upgrades an embedded SQLite store by itself and ``modelgate db upgrade``
calls :func:`upgrade`; several processes may do so at once. On SQLite the
upgrade runs inside one ``BEGIN IMMEDIATE`` transaction and on PostgreSQL under
a transaction-scoped advisory lock (per schema), so the second upgrader waits and
then finds nothing left to do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelgate.store.database import Database

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtext('modelgate.migrate:' || coalesce(current_schema(), '')))"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config built in code; ``connection`` is handed to ``migrations/env.py``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    """The revision the database is at; None before the first upgrade."""

    def read(connection: sa.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.read() as conn:
        return await conn.run_sync(read)


async def upgrade_database(db: Database, revision: str = "head") -> None:
    def run(connection: sa.Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.write() as conn:
        if db.dialect == "postgresql":
            await conn.execute(sa.text(_PG_LOCK))
        await conn.run_sync(run)


async def upgrade(url: str, *, schema: str | None = None) -> None:
    """Bring the database at ``url`` to the newest revision; a no-op when it is there."""
    async with Database(url, schema=schema) as db:
        await upgrade_database(db)


def upgrade_sync(url: str, *, schema: str | None = None) -> None:
    """:func:`upgrade` for callers without an event loop (the CLI)."""
    asyncio.run(upgrade(url, schema=schema))
