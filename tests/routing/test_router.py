"""The router's rules (``routing/router.py``): how long to wait before trying an upstream again."""

from __future__ import annotations

import pytest

from modelgate.config import RouterConfig
from modelgate.errors import (
    ErrorKind,
    UpstreamHTTPError,
)
from modelgate.routing.router import Router


def upstream(status: int, kind: ErrorKind, message: str = "no", **extra: object) -> UpstreamHTTPError:
    return UpstreamHTTPError(message, status=status, kind=kind, protocol="anthropic", **extra)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_its_cap() -> None:
    router = Router(RouterConfig(backoff=0.5, backoff_max=3, jitter=0))
    assert [router.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.8), (0.5, 1.0), (1.0, 1.2)])
def test_backoff_jitter_spreads_both_ways(draw: float, factor: float) -> None:
    router = Router(RouterConfig(backoff=1, jitter=0.2), draw=lambda: draw)
    assert router.backoff(1) == pytest.approx(factor)


def test_wait_honours_retry_after_up_to_the_cap_and_the_deadline() -> None:
    router = Router(RouterConfig(backoff=0.5, jitter=0, retry_after_cap=10))
    assert router.wait(1, upstream(529, ErrorKind.OVERLOADED), remaining=60) == 0.5
    assert router.wait(1, upstream(429, ErrorKind.RATE_LIMIT, retry_after=4), remaining=60) == 4
    assert router.wait(1, upstream(429, ErrorKind.RATE_LIMIT, retry_after=0.1), remaining=60) == 0.5
    assert router.wait(1, upstream(429, ErrorKind.RATE_LIMIT, retry_after=11), remaining=60) is None  # over the cap
    assert router.wait(1, upstream(429, ErrorKind.RATE_LIMIT, retry_after=4), remaining=3) is None  # past the deadline
    assert router.wait(3, upstream(529, ErrorKind.OVERLOADED), remaining=1.5) is None
