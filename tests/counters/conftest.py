"""One suite, two backends: every test here runs on the in-process counters and on Redis.

Redis is the local server (127.0.0.1:6379): a test fails, never skips, when it
is down. Each test gets its own key prefix and deletes its keys afterwards, as
other suites share the server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from modelgate.counters import Counters, MemoryCounters
from modelgate.counters.redis import RedisCounters
from tests.redis_helpers import REDIS_URL, delete_prefix

# 2026-03-10 12:00:00 UTC: a Tuesday in the middle of a month, far from any edge the tests do not choose.
T0 = 1_773_144_000.0

MakeCounters = Callable[..., Counters]


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """A UTC calendar moment as the epoch seconds the counters take."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.fixture(params=["memory", "redis"])
async def make_counters(request: pytest.FixtureRequest) -> AsyncIterator[MakeCounters]:
    """A factory of counters on one backend; on Redis, every instance it makes shares one fresh prefix."""
    prefix = f"mgtest:{uuid.uuid4().hex}:"
    made: list[Counters] = []

    def make(lease_ttl: float = 900.0) -> Counters:
        counters: Counters
        if request.param == "memory":
            counters = MemoryCounters(lease_ttl=lease_ttl)
        else:
            counters = RedisCounters(REDIS_URL, prefix=prefix, lease_ttl=lease_ttl)
        made.append(counters)
        return counters

    yield make
    for counters in made:
        await counters.close()
    if request.param == "redis":
        await delete_prefix(prefix)


@pytest.fixture
async def counters(make_counters: MakeCounters) -> Counters:
    return make_counters()
