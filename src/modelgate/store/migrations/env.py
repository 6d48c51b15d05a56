"""Alembic's entry point: migrate the connection ``migrate.py`` hands over.

Run in code (``modelgate.store.migrate``), Alembic gets a connection already in
a write transaction, so the whole upgrade commits or fails as one (SQLite and
PostgreSQL both have transactional DDL) and concurrent upgraders queue. Run from
the ``alembic`` command (to write a new revision), it opens ``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context

from modelgate.store.schema import metadata


def _migrate(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_url(url: str) -> None:
    from modelgate.store.database import Database

    async with Database(url) as db, db.write() as conn:
        await conn.run_sync(_migrate)


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode() or not url:
        raise RuntimeError("modelgate migrations run online only: set sqlalchemy.url, or use modelgate.store.migrate")
    asyncio.run(_migrate_url(url))


main()
