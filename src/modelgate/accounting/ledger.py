"""The store's batched writer: ledger rows, request records and bodies, off the request path.

Settlement hands a request's ledger row to :meth:`LedgerWriter.add` and its request record
(and, for a key or endpoint that opted in, its bodies) to :meth:`~LedgerWriter.add_record`
and :meth:`~LedgerWriter.add_body`, which only append them to lists; a background task
writes what has gathered every ``flush_seconds`` (sooner when ``batch`` rows of a kind are
waiting), each batch of the three kinds in ONE transaction with one ``executemany`` per
table: a request log costs the database a few more rows per commit, not more commits. A
failed write keeps its rows for the next try while the database is away, and :meth:`close`
writes everything left, so nothing is lost on a clean stop; a batch refused by a database
that answers is written row by row, and only a row refused alone is dropped (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar

from modelgate.store import LedgerRow, LedgerStore

if TYPE_CHECKING:
    from modelgate.store.records import BodyRecord, RequestRecord
    from modelgate.store.requests import RequestStore

log = logging.getLogger("modelgate.ledger")

#: Rows of each kind kept at most while the database is unreachable (the oldest are dropped beyond it).
BACKLOG_LIMIT = 1_000_000
#: Body bytes written in one transaction at most (bodies are up to ``records.body_max_bytes``
#: each, twice: a batch of them must not make one huge transaction).
BODY_BATCH_BYTES: Final = 8 * 1024 * 1024

T = TypeVar("T")


class LedgerWriter:
    def __init__(
        self,
        ledger: LedgerStore,
        flush_seconds: float = 1.0,
        batch: int = 500,
        requests: RequestStore | None = None,
    ) -> None:
        self.ledger = ledger
        self.requests = requests
        self.flush_seconds = flush_seconds
        self.batch = batch
        self._rows: list[LedgerRow] = []
        self._records: list[RequestRecord] = []
        self._bodies: list[BodyRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Rows waiting to be written, of every kind (the writer queue's depth: the
        ``modelgate_ledger_queue_depth`` gauge)."""
        return len(self._rows) + len(self._records) + len(self._bodies)

    def add(self, row: LedgerRow) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.batch:
            self._wake.set()

    def add_record(self, record: RequestRecord) -> None:
        self._records.append(record)
        if len(self._records) >= self.batch:
            self._wake.set()

    def add_body(self, body: BodyRecord) -> None:
        self._bodies.append(body)
        if len(self._bodies) >= self.batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        """Write the rows gathered so far (those that arrive meanwhile wait for the next flush:
        under load, a flush that chased them would write a row per request)."""
        async with self._lock:
            rows, self._rows = self._rows, []
            records, self._records = self._records, []
            bodies, self._bodies = self._bodies, []
            done_rows = done_records = done_bodies = 0
            try:
                while done_rows < len(rows) or done_records < len(records) or done_bodies < len(bodies):
                    some_rows = rows[done_rows : done_rows + self.batch]
                    some_records = records[done_records : done_records + self.batch]
                    some_bodies = _by_size(bodies, done_bodies, self.batch)
                    try:
                        await self._write(some_rows, some_records, some_bodies)
                    except Exception:
                        if not await self._reachable():
                            raise  # the database is away: everything is kept for the next try
                        await self._write_apart(some_rows, some_records, some_bodies)
                    done_rows += len(some_rows)
                    done_records += len(some_records)
                    done_bodies += len(some_bodies)
            except Exception:  # kept for the next try, before what came meanwhile
                self._rows[:0] = rows[done_rows:]
                self._records[:0] = records[done_records:]
                self._bodies[:0] = bodies[done_bodies:]
                _trim(self._rows)
                _trim(self._records)
                _trim(self._bodies)
                raise

    async def _write(self, rows: list[LedgerRow], records: list[RequestRecord], bodies: list[BodyRecord]) -> None:
        """One transaction: the ledger rows, the request records and the bodies of a batch."""
        requests = self.requests
        if requests is None or (not records and not bodies):
            await self.ledger.insert_many(rows)
            return
        async with self.ledger.database.write() as conn:
            await self.ledger.write(conn, rows)
            await requests.write(conn, records)
            await requests.write_bodies(conn, bodies)

    async def _reachable(self) -> bool:
        """Whether the database answers at all (after a failed batch: down, or a bad row?)."""
        try:
            async with self.ledger.database.read() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    async def _write_apart(self, rows: list[LedgerRow], records: list[RequestRecord], bodies: list[BodyRecord]) -> None:
        """A batch the database refused while it answers: one row it cannot take (a value no
        sanitizing foresaw) must not hold back every later row forever. Each row is written in
        a transaction of its own, and those refused again are dropped, logged by request id."""
        writes: list[tuple[str, str, Callable[[], Awaitable[None]]]] = [
            *(("ledger row", r.request_id, partial(self._write, [r], [], [])) for r in rows),
            *(("request record", r.request_id, partial(self._write, [], [r], [])) for r in records),
            *(("body", b.request_id, partial(self._write, [], [], [b])) for b in bodies),
        ]
        for kind, request_id, write in writes:
            try:
                await write()
            except Exception:
                log.exception("dropped the %s of request %s: the database refuses it", kind, request_id)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()  # what was still waiting, all of it

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):  # no task of its own, as wait_for makes
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("could not write %d rows to the store (kept for the next try)", self.pending)


def _by_size(bodies: list[BodyRecord], start: int, batch: int) -> list[BodyRecord]:
    """The bodies from ``start`` on that fit one transaction: ``batch`` at most, and no more
    than :data:`BODY_BATCH_BYTES` of text (always at least one)."""
    size = 0
    end = start
    for body in bodies[start : start + batch]:
        size += len(body.request) + len(body.response or "")
        if size > BODY_BATCH_BYTES and end > start:
            break
        end += 1
    return bodies[start:end]


def _trim(backlog: list[T]) -> None:
    del backlog[: max(0, len(backlog) - BACKLOG_LIMIT)]
