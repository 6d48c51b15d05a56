"""The counters interface: the fast-changing state of limits, behind one ABC.

Budgets over windows, requests and tokens per minute, concurrency and distinct
client IPs all reduce to a few operations on named counters (*scopes*): admit
a request against several limits at once (``acquire``), settle it with what it
really cost (``release``), charge usage outside a request (``charge``), read a
window for a dashboard (``state``), restore usage from the ledger after a
restart (``seed``) and count distinct members (``touch_member``).

Time is always the caller's ``now`` (epoch seconds), never a backend's clock:
tests drive it, and every gateway instance reads its own (NTP-synchronised)
wall clock. Usage is kept per second (per calendar month, or in one sum for a
lifetime window), so a rolling window frees capacity, and says when, to the
second.

The pure helpers here (bucketing, cut-offs, month bounds) are shared by both
backends, so that they agree on every edge.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

WindowKind = Literal["rolling", "month", "total", "concurrent"]

EPSILON = 1e-9
"""Amounts closer to zero than this are zero: float sums of USD amounts drift,
and a released budget must read 0, not -1e-17 or 2e-16."""

GC_MARGIN = 300
"""Seconds a scope's storage outlives its window after the last write (Redis
key TTLs, the memory backend's sweep), so clocks a little apart never lose
usage that still counts."""


@dataclass(frozen=True, slots=True)
class Window:
    """How long usage counts: rolling seconds, the calendar month (UTC), forever, or while a lease is active."""

    name: str
    kind: WindowKind
    seconds: int | None = None


CONCURRENT = Window("concurrent", "concurrent")
MONTH = Window("month", "month")
TOTAL = Window("total", "total")

WINDOWS: Mapping[str, Window] = MappingProxyType(
    {
        "1m": Window("1m", "rolling", 60),
        "1h": Window("1h", "rolling", 3600),
        "5h": Window("5h", "rolling", 18000),
        "24h": Window("24h", "rolling", 86400),
        "7d": Window("7d", "rolling", 604800),
        "month": MONTH,
        "total": TOTAL,
        "concurrent": CONCURRENT,
    }
)

_UNITS = MappingProxyType({"s": 1, "m": 60, "h": 3600, "d": 86400})
_ROLLING = re.compile(r"([1-9][0-9]*)([smhd])")


def window(name: str) -> Window:
    """Parse a window name: ``5h``, ``7d``, ``month``, ``total``, ``concurrent`` or ``<n>s|m|h|d``."""
    known = WINDOWS.get(name)
    if known is not None:
        return known
    match = _ROLLING.fullmatch(name)
    if match is None:
        raise ValueError(f"unknown window {name!r}: expected <n>s|m|h|d, 'month', 'total' or 'concurrent'")
    return Window(name, "rolling", int(match[1]) * _UNITS[match[2]])


@dataclass(slots=True)  # not frozen: made on every call, and a frozen init costs a call per field
class Limit:
    """One limit a request must pass, and what it reserves on the scope if admitted."""

    scope: str
    window: Window
    limit: float
    amount: float
    code: str


@dataclass(slots=True)
class Charge:
    """Real usage on a scope at settlement (or outside any request)."""

    scope: str
    window: Window
    amount: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """The first limit that refused a request; ``retry_after`` is None when nothing will free by itself."""

    limit: Limit
    used: float
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class WindowState:
    """A window as a dashboard draws it; ``next_free_at`` is None when nothing is used or nothing will free."""

    used: float
    next_free_at: float | None


class Counters(ABC):
    """Atomic counters for limits; an in-process and a Redis backend pass one test suite."""

    @abstractmethod
    async def acquire(self, lease: str, limits: Sequence[Limit], now: float) -> Refusal | None:
        """Admit a request iff every limit has some remainder (concurrent: fewer active leases than the limit).

        Atomic over all limits: if admitted, each scope records ``min(amount, limit - used)`` under ``lease``
        (a concurrent scope counts the lease as active until released or ``lease_ttl`` passes); if any
        refuses, nothing is recorded and the first refusal in the given order is returned. Acquiring again
        on a live lease adds to it (a scope it already holds is a ``ValueError``).
        """

    @abstractmethod
    async def release(self, lease: str, actual: Sequence[Charge], now: float) -> None:
        """Settle a lease: a reserved scope named in ``actual`` has its reservation replaced by the real amount,
        charged at ``now``; other reserved scopes keep their reservation; a scope the lease did not reserve is
        charged; concurrency slots are freed.

        Idempotent: releasing an unknown, released or expired lease does nothing (an expired lease's
        reservations stand as its charge).
        """

    @abstractmethod
    async def charge(self, scope: str, window: Window, amount: float, now: float) -> None:
        """Record usage that no lease reserved."""

    @abstractmethod
    async def state(self, scope: str, window: Window, now: float) -> WindowState:
        """Used amount (concurrent: active leases) and when capacity next frees."""

    @abstractmethod
    async def seed(self, scope: str, window: Window, entries: Sequence[tuple[float, float]], now: float) -> bool:
        """Restore ``(time, amount)`` usage from the ledger iff the scope was never seen (or its storage expired).

        Any write marks a scope seen, so seed a scope before its first acquire after a restart.
        """

    @abstractmethod
    async def touch_member(self, scope: str, member: str, window: Window, limit: int, now: float) -> tuple[bool, int]:
        """Admit ``member`` if already present or fewer than ``limit`` distinct members are; record it if admitted.

        Returns ``(admitted, distinct members now counted)``.
        """

    @abstractmethod
    async def close(self) -> None:
        """Release connections; the object is unusable afterwards."""


# -- helpers both backends share, so their edges agree ------------------------------------------------------------


def month_bounds(now: float) -> tuple[int, int]:
    """The epoch seconds at which ``now``'s calendar month (UTC) starts and the next one starts."""
    moment = datetime.fromtimestamp(now, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    following = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(following.timestamp())


def bucket(window: Window, at: float, month_start: int | None = None) -> int:
    """The bucket a usage at ``at`` lands in: its second (rolling), its month's start (month), 0 (total).

    ``month_start``, when the caller knows it for ``at``, spares a calendar computation.
    """
    if window.kind == "rolling":
        return math.floor(at)
    if window.kind == "month":
        return month_bounds(at)[0] if month_start is None else month_start
    return 0


def expires_at(window: Window, now: float, next_month: int) -> float | None:
    """When a scope's storage may go after a write at ``now`` (None: never)."""
    if window.kind == "rolling":
        assert window.seconds is not None
        return now + window.seconds + GC_MARGIN
    if window.kind == "month":
        return next_month + GC_MARGIN
    return None


def cutoff(window: Window, now: float, month_start: int) -> int | None:
    """Buckets at or below this no longer count at ``now`` (None: all count)."""
    if window.kind == "rolling":
        assert window.seconds is not None
        return math.floor(now) - window.seconds
    if window.kind == "month":
        return month_start - 1
    return None


def tidy(value: float) -> float:
    """Round a used amount to 9 decimals and clamp it at zero (float drift must not read as usage)."""
    rounded = round(value, 9)
    return rounded if rounded > 0 else 0.0


def retry_after(free_at: float | None, now: float) -> float | None:
    """Whole seconds from ``now`` until ``free_at``, rounded up (a client retrying then is admitted)."""
    if free_at is None:
        return None
    return float(max(1, math.ceil(free_at - now - EPSILON)))


def check_limits(limits: Sequence[Limit]) -> None:
    """Refuse inputs that would make the counters lie: a scope twice in one call, a negative or infinite amount."""
    seen: set[str] = set()
    for item in limits:
        if item.scope in seen:
            raise ValueError(f"scope {item.scope!r} appears twice in one acquire")
        seen.add(item.scope)
        check_amount(item.amount)
        if not math.isfinite(item.limit):
            raise ValueError(f"limit of {item.scope!r} is not finite: {item.limit!r}")


def check_amount(amount: float) -> None:
    if not (math.isfinite(amount) and amount >= 0):
        raise ValueError(f"an amount must be finite and non-negative, not {amount!r}")


def charges_by_scope(actual: Sequence[Charge]) -> dict[str, Charge]:
    """Settlement charges by scope, checked before anything changes."""
    given: dict[str, Charge] = {}
    for charge in actual:
        check_countable(charge.window)
        check_amount(charge.amount)
        if charge.scope in given:
            raise ValueError(f"scope {charge.scope!r} charged twice in one release")
        given[charge.scope] = charge
    return given


def check_countable(window: Window) -> None:
    """Only amount windows can be charged, seeded or read as sums; concurrency is counted in leases."""
    if window.kind == "concurrent":
        raise ValueError("a concurrent window counts leases: acquire and release it, do not charge or seed it")


class MonthClock:
    """``month_bounds`` cached while ``now`` stays in one month (it is asked on every call)."""

    __slots__ = ("_next", "_start")

    def __init__(self) -> None:
        self._start = 0
        self._next = 0

    def bounds(self, now: float) -> tuple[int, int]:
        if not self._start <= now < self._next:
            self._start, self._next = month_bounds(now)
        return self._start, self._next
