"""The router's rules (``routing/router.py``): the class of a failure, which classes fall back,
and how long to wait before trying an upstream again."""

from __future__ import annotations

import pytest

from modelgate.config import RouterConfig
from modelgate.errors import (
    ErrorKind,
    GatewayError,
    InternalError,
    InvalidRequest,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from modelgate.routing.router import Router, failure_class


def upstream(status: int, kind: ErrorKind, message: str = "no", **extra: object) -> UpstreamHTTPError:
    return UpstreamHTTPError(message, status=status, kind=kind, protocol="anthropic", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        (upstream(429, ErrorKind.RATE_LIMIT), "rate_limit"),
        (upstream(529, ErrorKind.OVERLOADED), "overloaded"),
        (upstream(503, ErrorKind.OVERLOADED), "overloaded"),
        (upstream(500, ErrorKind.API_ERROR), "unavailable"),
        (upstream(502, ErrorKind.API_ERROR), "unavailable"),
        (UpstreamUnavailable("refused"), "unavailable"),
        (UpstreamTimeout("slow"), "timeout"),
        (upstream(504, ErrorKind.TIMEOUT), "timeout"),
        (upstream(401, ErrorKind.AUTHENTICATION), "authentication"),
        (upstream(403, ErrorKind.PERMISSION), "authentication"),
        (
            upstream(400, ErrorKind.INVALID_REQUEST, "prompt is too long: 250000 tokens > 200000 maximum"),
            "context_window",
        ),
        (
            upstream(400, ErrorKind.INVALID_REQUEST, "This model's maximum context length is 8192 tokens"),
            "context_window",
        ),
        (upstream(400, ErrorKind.INVALID_REQUEST, "messages: Field required"), None),
        (upstream(404, ErrorKind.NOT_FOUND), None),
        (InvalidRequest("bad"), None),  # the client's own mistake, found by the gateway
        (InternalError("bug"), None),  # the gateway's own
    ],
)
def test_failure_classes(error: GatewayError, cls: str | None) -> None:
    assert failure_class(error) == cls


def test_the_default_fallback_classes() -> None:
    router = Router(RouterConfig())
    falls = {
        "rate_limit": upstream(429, ErrorKind.RATE_LIMIT),
        "overloaded": upstream(529, ErrorKind.OVERLOADED),
        "unavailable": UpstreamUnavailable("down"),
        "timeout": UpstreamTimeout("slow"),
    }
    assert all(router.falls_back(e) for e in falls.values())
    assert not router.falls_back(upstream(401, ErrorKind.AUTHENTICATION))
    assert not router.falls_back(upstream(400, ErrorKind.INVALID_REQUEST, "prompt is too long"))
    assert not router.falls_back(InvalidRequest("bad"))


def test_fallback_classes_are_configurable() -> None:
    router = Router(RouterConfig(fallback_on=("context_window",)))
    assert router.falls_back(upstream(400, ErrorKind.INVALID_REQUEST, "prompt is too long: 9 tokens > 8 maximum"))
    assert not router.falls_back(upstream(529, ErrorKind.OVERLOADED))


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
