"""One async engine over SQLite (embedded, the default) or PostgreSQL (fleets).

SQLite is shared by several worker processes, so every connection waits for the
file lock instead of failing (``busy_timeout``), the journal is WAL (readers never
block the writer), and write transactions begin with ``BEGIN IMMEDIATE``: they
take the write lock up front, so two writers queue rather than meet halfway with
"database is locked". Python's sqlite3 transaction handling is switched off for
that, and the engine emits every ``BEGIN`` itself, as SQLAlchemy documents.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_WRITE: Final = "modelgate_write"
_SCHEMA_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def default_url(data_dir: str | Path) -> str:
    """The embedded store: a SQLite file in the data directory."""
    return f"sqlite+aiosqlite:///{Path(data_dir).expanduser().resolve() / 'modelgate.db'}"


def normalize_url(url: str) -> str:
    """Point the usual spellings at the async drivers this package ships with.

    ``postgres://`` (Heroku, Fly and friends) and ``postgresql://`` become
    ``postgresql+asyncpg://``; ``sqlite://`` becomes ``sqlite+aiosqlite://``.
    A URL naming a driver already is left alone.
    """
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


class Database:
    """The store's engine, and its two ways in: :meth:`read` and :meth:`write`.

    ``schema`` (PostgreSQL only) puts every table in that schema through the
    connections' ``search_path``: a fleet may share a database with other
    applications, and tests isolate themselves this way.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        busy_timeout_ms: int = 30_000,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.schema = schema
        options: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            options["pool_pre_ping"] = True  # a restarted server must not fail the first write after it
            if schema is not None:
                if not _SCHEMA_NAME.fullmatch(schema):
                    raise ValueError(f"schema must be a plain identifier, got {schema!r}")
                options["connect_args"] = {"server_settings": {"search_path": schema}}
        elif self.dialect == "sqlite":
            if schema is not None:
                raise ValueError("schema applies to PostgreSQL only")
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        else:
            raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        if self.dialect == "sqlite":
            _prepare_sqlite(self.engine.sync_engine, busy_timeout_ms)
        self._writer = self.engine.execution_options(**{_WRITE: True})

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; its implicit transaction is rolled back on exit."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed on success and rolled back on error (SQLite: ``BEGIN IMMEDIATE``)."""
        async with self._writer.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _prepare_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # the engine emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            _use_wal(cursor, busy_timeout_ms / 1000)
        finally:
            cursor.close()

    def on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)


def _use_wal(cursor: Any, patience: float) -> None:
    """Put the database file in WAL mode (it stays so: a later connection only reads it).
    Switching takes the file's lock and SQLite does not wait for it there, so connections
    opening a fresh file at once (workers starting together) try again until ``patience``."""
    cursor.execute("PRAGMA journal_mode")
    row = cursor.fetchone()
    if row is not None and str(row[0]).lower() == "wal":
        return
    give_up = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as e:  # the driver's OperationalError, wrapped by SQLAlchemy's adapter
            if "locked" not in str(e) or time.monotonic() > give_up:
                raise
            time.sleep(0.02)  # only ever while a fresh file is created by several at once
