from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgate.accounting import ledger as writer_module
from modelgate.accounting.ledger import LedgerWriter
from modelgate.store import BodyRecord, Database, LedgerRow, LedgerStore, RequestRecord, RequestStore, upgrade_database
from modelgate.store.schema import ledger, request_bodies, requests
from tests.store.conftest import BACKENDS, T0, fresh_database


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(request.param, tmp_path) as db:
        await upgrade_database(db)
        yield db


def row(n: int) -> LedgerRow:
    return LedgerRow(
        request_id=f"req_{n}",
        at=T0 + timedelta(seconds=n),
        key_id="k",
        team_id=None,
        door="anthropic",
        endpoint="messages",
        model="sonnet",
    )


def record(n: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"req_{n}",
        at=T0 + timedelta(seconds=n),
        key_id="k",
        team_id=None,
        door="anthropic",
        endpoint="messages",
        status=200,
    )


def body(n: int, size: int = 10) -> BodyRecord:
    return BodyRecord(request_id=f"req_{n}", at=T0 + timedelta(seconds=n), request="x" * size)


async def counts(db: Database) -> tuple[int, ...]:
    async with db.read() as conn:
        found = []
        for table in (ledger, requests, request_bodies):
            found.append(int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()))
    return tuple(found)


async def test_rows_records_and_bodies_are_written_together(db: Database) -> None:
    writer = LedgerWriter(LedgerStore(db), batch=2, requests=RequestStore(db))
    for n in range(5):
        writer.add(row(n))
        writer.add_record(record(n))
    writer.add_body(body(0))
    assert writer.pending == 11
    await writer.flush()
    assert writer.pending == 0
    assert await counts(db) == (5, 5, 1)


async def test_a_failed_flush_keeps_every_kind_and_writes_none_of_its_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RequestStore(db)
    writer = LedgerWriter(LedgerStore(db), batch=10, requests=store)
    writer.add(row(1))
    writer.add_record(record(1))
    writer.add_body(body(1))

    async def broken(*_: object) -> None:
        raise RuntimeError("database down")

    async def away() -> bool:
        return False

    monkeypatch.setattr(store, "write_bodies", broken)
    monkeypatch.setattr(writer, "_reachable", away)
    with pytest.raises(RuntimeError, match="database down"):
        await writer.flush()
    assert writer.pending == 3
    assert await counts(db) == (0, 0, 0)  # the ledger row went back with the transaction
    writer.add(row(2))
    monkeypatch.undo()
    await writer.close()  # close writes all that waits
    assert writer.pending == 0
    assert await counts(db) == (2, 1, 1)


async def test_bodies_are_batched_by_size(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "BODY_BATCH_BYTES", 25)
    store = RequestStore(db)
    sizes: list[int] = []
    write_bodies = store.write_bodies

    async def spy(conn: object, bodies: list[BodyRecord]) -> None:
        if bodies:
            sizes.append(len(bodies))
        await write_bodies(conn, bodies)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "write_bodies", spy)
    writer = LedgerWriter(LedgerStore(db), batch=10, requests=store)
    for n in range(5):
        writer.add_body(body(n, size=10))
    writer.add_body(body(9, size=100))  # alone beyond the limit, yet written
    await writer.flush()
    assert sizes == [2, 2, 1, 1]
    assert await counts(db) == (0, 0, 6)


async def test_without_a_request_store_only_the_ledger_is_written(db: Database) -> None:
    writer = LedgerWriter(LedgerStore(db), batch=10)
    writer.add(row(1))
    await writer.flush()
    assert await counts(db) == (1, 0, 0)


async def test_a_row_the_database_refuses_is_dropped_alone(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """A value no sanitizing foresaw (a NUL reaching PostgreSQL, a string SQLite cannot bind)
    must not hold back every later row: the batch is written row by row, the bad one dropped."""
    writer = LedgerWriter(LedgerStore(db), batch=10, requests=RequestStore(db))
    bad = record(2)
    bad.endpoint = object()  # type: ignore[assignment]  # no driver binds this
    for n in range(3):
        writer.add(row(n))
    writer.add_record(record(1))
    writer.add_record(bad)
    writer.add_body(body(1))
    await writer.flush()
    assert writer.pending == 0
    assert await counts(db) == (3, 1, 1)
    assert "dropped the request record of request req_2" in caplog.text
