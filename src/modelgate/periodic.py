"""Work repeated in the background: the caches' polls, the request log's pruning.

One loop for all of them, so each says only what it does and how often. A failure is logged
and waits for the next turn: a database away for a while must not end the loop, nor take
the gateway down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    """``work`` every ``interval`` seconds in a task of its own, from :meth:`start` to :meth:`close`
    (the first run after ``first_delay``, by default one interval)."""

    def __init__(
        self,
        work: Callable[[], Awaitable[object]],
        interval: float,
        *,
        what: str,
        log: logging.Logger,
        first_delay: float | None = None,
    ) -> None:
        self.work = work
        self.interval = interval
        self.what = what
        self.log = log
        self.first_delay = interval if first_delay is None else first_delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.work()
            except Exception:
                self.log.exception("could not %s (tried again at the next turn)", self.what)
            await asyncio.sleep(self.interval)
