"""What the stores of named rows (teams, keys, endpoints, users) share: the clock that stamps
their writes, and finding a row by its id or its name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.database import Database
from modelgate.store.errors import StoreNotFound
from modelgate.store.records import require_aware

Row = Mapping[Any, Any]  # a result row's mapping, or the values just written


def utcnow() -> datetime:
    return datetime.now(UTC)


class Repository:
    """A store on ``db``; ``clock`` stamps ``created_at`` / ``updated_at`` (tests pass their own)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> datetime:
        return require_aware(self._clock(), "clock()").astimezone(UTC)


async def resolve(conn: AsyncConnection, table: sa.Table, what: str, ref: str) -> Row:
    """The row of ``table`` whose id, else whose name, is ``ref``."""
    rows = (await conn.execute(sa.select(table).where((table.c.id == ref) | (table.c.name == ref)))).mappings().all()
    if not rows:
        raise StoreNotFound(f"no {what} with id or name {ref!r}")
    return next((row for row in rows if row["id"] == ref), rows[0])
