from __future__ import annotations

import asyncio
import logging

import pytest

from modelgate.periodic import Periodic


async def test_work_runs_each_turn_a_failure_waits_for_the_next_and_close_stops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    async def work() -> None:
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("database away")

    periodic = Periodic(work, 0.01, what="do the work", log=logging.getLogger("test.periodic"), first_delay=0)
    with caplog.at_level(logging.ERROR, logger="test.periodic"):
        periodic.start()
        for _ in range(200):
            if len(runs) >= 4:
                break
            await asyncio.sleep(0.01)
        await periodic.close()
    assert len(runs) >= 4  # the failure did not end the loop
    assert [r.getMessage() for r in caplog.records] == ["could not do the work (tried again at the next turn)"]
    stopped = len(runs)
    await asyncio.sleep(0.05)
    assert len(runs) == stopped
    await periodic.close()  # twice is harmless


async def test_the_first_run_waits_one_interval_unless_told_otherwise() -> None:
    runs: list[float] = []

    async def work() -> None:
        runs.append(asyncio.get_running_loop().time())

    periodic = Periodic(work, 10.0, what="wait", log=logging.getLogger("test.periodic"))
    periodic.start()
    await asyncio.sleep(0.05)
    await periodic.close()
    assert runs == []
