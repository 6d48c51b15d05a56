from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgate.store import Database, LedgerRow, LedgerStore, TenantStore, default_url, normalize_url, upgrade_database
from modelgate.store.database import _use_wal
from modelgate.store.schema import teams
from tests.store.conftest import PG_URL, T0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////var/lib/mg/modelgate.db", "sqlite+aiosqlite:////var/lib/mg/modelgate.db"),
        ("sqlite+aiosqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_default_url_is_a_file_in_the_data_dir(tmp_path: Path) -> None:
    assert default_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/modelgate.db"


async def test_bad_arguments_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        Database("mysql://u@h/db")
    with pytest.raises(ValueError, match="PostgreSQL only"):
        Database(default_url(tmp_path), schema="x")
    with pytest.raises(ValueError, match="plain identifier"):
        Database(PG_URL, schema="x; drop table keys")


async def test_sqlite_file_is_shared_safely(tmp_path: Path) -> None:
    """WAL, a busy timeout and foreign keys on every connection; the data directory made if missing."""
    async with Database(default_url(tmp_path / "new" / "dir")) as db, db.read() as conn:
        pragmas = {
            name: await conn.scalar(sa.text(f"PRAGMA {name}"))
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}
    assert (tmp_path / "new" / "dir" / "modelgate.db").exists()


async def test_postgres_schema_isolates(migrated: Database) -> None:
    """The module's tables live in its own schema, not in public."""
    if migrated.dialect != "postgresql":
        return
    async with migrated.read() as conn:
        assert await conn.scalar(sa.text("SELECT current_schema()")) == migrated.schema
        assert await conn.scalar(sa.text("SELECT to_regclass('public.keys')")) is None


async def test_write_commits_or_rolls_back(db: Database) -> None:
    insert = sa.insert(teams).values(name="t", budgets=[], metadata={}, created_at=T0, updated_at=T0)
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(insert.values(id="team_gone"))
            raise RuntimeError
    async with db.write() as conn:
        await conn.execute(insert.values(id="team_kept"))
    assert [team.id for team in await TenantStore(db).list_teams()] == ["team_kept"]


async def test_two_engines_on_one_sqlite_file_write_at_once(tmp_path: Path) -> None:
    """Two workers' engines, many writers each, read-then-write transactions included: nobody sees 'locked'."""
    url = default_url(tmp_path)
    async with Database(url) as one, Database(url) as two:
        await upgrade_database(one)
        team = await TenantStore(one).create_team("shared")

        async def work(db: Database, worker: int, n: int) -> None:
            tenants, ledger = TenantStore(db), LedgerStore(db)
            key = await tenants.create_key(
                f"k{worker}-{n}", key_hash=f"{worker:032x}{n:032x}", hint="sk-mg-x", team_id=team.id
            )
            await ledger.insert_many(
                [
                    LedgerRow(
                        request_id=f"{worker}-{n}-{i}",
                        at=T0 + timedelta(seconds=i),
                        key_id=key.id,
                        team_id=team.id,
                        door="anthropic",
                        endpoint="/v1/messages",
                        model="m",
                        cost_usd=0.5,
                    )
                    for i in range(20)
                ]
            )
            await tenants.update_key(key.id, rpm=n)

        await asyncio.gather(*(work(db, w, n) for w, db in enumerate((one, two)) for n in range(25)))
        assert len(await TenantStore(two).list_keys(team_id=team.id)) == 50
        assert (await LedgerStore(one).spend(team_id=team.id, since=T0)).requests == 50 * 20


WORKER = """
import asyncio, sys
from datetime import UTC, datetime
from modelgate.store import Database, LedgerRow, LedgerStore, TenantStore

async def main(url, worker):
    async with Database(url) as db:
        tenants, ledger = TenantStore(db), LedgerStore(db)
        async def one(n):
            key = await tenants.create_key(f"p{worker}-{n}", key_hash=f"{worker:032x}{n:032x}", hint="sk-mg-p")
            row = LedgerRow(request_id=str(n), at=datetime.now(UTC), key_id=key.id, team_id=None,
                            door="openai", endpoint="/v1/chat/completions", model="m")
            await ledger.insert_many([row] * 10)
        await asyncio.gather(*(one(n) for n in range(30)))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_two_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    """What ``serve --workers 2`` does to the embedded store: two processes writing at once."""
    url = default_url(tmp_path)
    async with Database(url) as db:
        await upgrade_database(db)
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", WORKER, url, str(w), stderr=subprocess.PIPE)
            for w in (1, 2)
        ]
        results = [await proc.communicate() for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], [err.decode()[-2000:] for _, err in results]
        assert len(await TenantStore(db).list_keys()) == 60
        async with db.read() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM ledger")) == 600


class _LockedCursor:
    """A cursor whose file another connection holds while it switches to WAL, ``busy`` times."""

    def __init__(self, mode: str, busy: int) -> None:
        self.mode, self.busy, self.switches = mode, busy, 0

    def execute(self, sql: str) -> None:
        if sql == "PRAGMA journal_mode = WAL":
            self.switches += 1
            if self.busy:
                self.busy -= 1
                raise RuntimeError("(sqlite3.OperationalError) database is locked")
            self.mode = "wal"

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_wal_is_set_again_while_a_fresh_file_is_locked() -> None:
    """Workers opening a fresh SQLite file at once: the switch to WAL waits for the lock."""
    cursor = _LockedCursor("delete", busy=3)
    _use_wal(cursor, patience=5)
    assert (cursor.mode, cursor.switches) == ("wal", 4)
    settled = _LockedCursor("wal", busy=3)
    _use_wal(settled, patience=5)
    assert settled.switches == 0  # already WAL: only read
    with pytest.raises(RuntimeError, match="locked"):
        _use_wal(_LockedCursor("delete", busy=1000), patience=0.05)
