"""The usage ledger's writer: one row per request, written in batches off the request path.

Settlement hands a row to :meth:`LedgerWriter.add`, which only appends it to a list; a
background task writes what has gathered every ``flush_seconds`` (sooner when ``batch``
rows are waiting) in one ``executemany``. A failed write keeps its rows for the next try,
and :meth:`close` writes everything left, so nothing is lost on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from modelgate.store import LedgerRow, LedgerStore

log = logging.getLogger("modelgate.ledger")

#: Rows kept at most while the database is unreachable (the oldest are dropped beyond it).
BACKLOG_LIMIT = 1_000_000


class LedgerWriter:
    def __init__(self, ledger: LedgerStore, flush_seconds: float = 1.0, batch: int = 500) -> None:
        self.ledger = ledger
        self.flush_seconds = flush_seconds
        self.batch = batch
        self._rows: list[LedgerRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Rows waiting to be written (the ledger queue's depth)."""
        return len(self._rows)

    def add(self, row: LedgerRow) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        """Write the rows gathered so far (those that arrive meanwhile wait for the next flush:
        under load, a flush that chased them would write a row per request)."""
        async with self._lock:
            rows, self._rows = self._rows, []
            for start in range(0, len(rows), self.batch):
                try:
                    await self.ledger.insert_many(rows[start : start + self.batch])
                except Exception:
                    self._rows[:0] = rows[start:]  # kept for the next try
                    del self._rows[: max(0, len(self._rows) - BACKLOG_LIMIT)]
                    raise

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
                log.exception("could not write %d ledger rows (kept for the next try)", len(self._rows))
