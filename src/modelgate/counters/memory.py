"""In-process counters: one gateway process, no locks.

Every method runs to completion without an await, so on one event loop each
call is atomic by construction. A scope's usage is a dict of per-second (or
per-month, or one lifetime) cells, oldest first, with their sum kept beside
it: admission reads the sum, pruning pops from the old end, so a call costs
O(1) amortised whatever the window's length. Storage that left its window is
swept about once a minute of ``now``, like the Redis backend's key TTLs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelgate.counters.base import (
    EPSILON,
    GC_MARGIN,
    Charge,
    Counters,
    Limit,
    MonthClock,
    Refusal,
    Window,
    WindowState,
    bucket,
    charges_by_scope,
    check_amount,
    check_countable,
    check_limits,
    cutoff,
    expires_at,
    retry_after,
    tidy,
)

_SWEEP_EVERY = 60.0


class _Series:
    """One scope's usage: amounts by bucket, oldest first (a dict keeps insertion order), and their sum.

    A plain dict of floats rather than cell objects: on every admitted call a scope gets a
    write, and the cost of the counters is most of what a virtual key costs a request.
    """

    __slots__ = ("cells", "expires_at", "last", "total")

    def __init__(self) -> None:
        self.cells: dict[int, float] = {}
        self.total = 0.0
        self.last = -(2**62)  # the newest bucket written: an older one breaks the order
        self.expires_at: float | None = None

    def prune(self, cut: int | None) -> None:
        """Drop cells that left the window, and emptied cells at the old end (a release leaves them behind)."""
        cells = self.cells
        while cells:
            oldest = next(iter(cells))
            amount = cells[oldest]
            if amount > 0 and (cut is None or oldest > cut):
                break
            del cells[oldest]
            self.total -= amount
        if not cells or self.total < EPSILON:
            self.total = 0.0

    def put(self, at: int, amount: float) -> None:
        """Add ``amount`` (negative: take back a reservation) to the cell of bucket ``at``."""
        cells = self.cells
        old = cells.get(at)
        if old is None:
            if amount <= 0:
                return  # the reservation already left the window: nothing to take back
            old = 0.0
            if at < self.last:  # a clock step back, or a seed: keep the order
                cells[at] = 0.0
                self.cells = cells = dict(sorted(cells.items()))
            else:
                self.last = at
        value = old + amount
        if value < EPSILON:
            value = 0.0
        cells[at] = value
        total = self.total + value - old
        self.total = total if total >= EPSILON else 0.0

    def oldest(self) -> int:
        return next(iter(self.cells))

    def free_at(self, window: Window, limit: float, next_month: int) -> float | None:
        """When the window admits again: enough old cells left (rolling), next month, never (total)."""
        if limit <= 0:
            return None
        if window.kind == "month":
            return float(next_month)
        if window.kind != "rolling":
            return None
        assert window.seconds is not None
        left = self.total
        for at, amount in self.cells.items():
            left -= amount
            if tidy(left) < limit:
                return float(at + window.seconds)
        return None


#: What a lease holds on one scope: (window, bucket, amount), or None for a concurrency slot.
_Held = tuple[Window, int, float] | None


@dataclass(slots=True)
class _Lease:
    expires_at: float
    held: dict[str, _Held]


@dataclass(slots=True)
class _Members:
    seen: dict[str, int]  # member -> bucket last seen in
    expires_at: float | None


class MemoryCounters(Counters):
    """Counters for one process; ``lease_ttl`` bounds how long a lease counts if it is never released."""

    def __init__(self, lease_ttl: float = 900.0) -> None:
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be positive")
        self._lease_ttl = lease_ttl
        self._series: dict[str, _Series] = {}
        self._slots: dict[str, dict[str, float]] = {}  # scope -> lease -> when its slot stops counting
        self._members: dict[str, _Members] = {}
        self._leases: dict[str, _Lease] = {}
        self._month = MonthClock()
        self._swept = float("-inf")

    # acquire and release run on every admitted call: the window arithmetic of ``base`` (cutoff,
    # bucket, expires_at, tidy) is written out inline here, and kept equal to it by the shared
    # test suite.

    async def acquire(self, lease: str, limits: Sequence[Limit], now: float) -> Refusal | None:
        check_limits(limits)
        if not self._swept <= now < self._swept + _SWEEP_EVERY:
            self._sweep(now)
        month_start, next_month = self._month.bounds(now)
        record = self._leases.get(lease)
        if record is not None and record.expires_at <= now:
            record = None
        all_series = self._series
        second = math.floor(now)
        found: list[tuple[_Series | None, float]] = []
        for item in limits:
            if record is not None and item.scope in record.held:
                raise ValueError(f"lease {lease!r} already holds scope {item.scope!r}")
            win = item.window
            kind = win.kind
            if kind == "concurrent":
                active = float(self._active(item.scope, now))
                if active >= item.limit:
                    return Refusal(item, active, None)
                found.append((None, active))
                continue
            series = all_series.get(item.scope)
            if series is not None and series.expires_at is not None and series.expires_at <= now:
                del all_series[item.scope]  # its storage expired, as a Redis key would have
                series = None
            if series is None:
                if item.limit <= 0:
                    return Refusal(item, 0.0, None)
                found.append((None, 0.0))
                continue
            cells = series.cells
            if cells:
                cut = second - (win.seconds or 0) if kind == "rolling" else month_start - 1 if kind == "month" else None
                oldest = next(iter(cells))
                if cells[oldest] <= 0 or (cut is not None and oldest <= cut):
                    series.prune(cut)
            current = round(series.total, 9)
            if current <= 0:
                current = 0.0
            if current >= item.limit:
                free_at = series.free_at(win, item.limit, next_month)
                return Refusal(item, current, retry_after(free_at, now))
            found.append((series, current))
        if record is None:
            record = self._leases[lease] = _Lease(now + self._lease_ttl, {})
        held = record.held
        for item, (series, current) in zip(limits, found, strict=True):
            win = item.window
            kind = win.kind
            if kind == "concurrent":
                self._slots.setdefault(item.scope, {})[lease] = record.expires_at
                held[item.scope] = None
                continue
            if series is None:
                series = all_series[item.scope] = _Series()
            if kind == "rolling":
                at = second
                series.expires_at = now + (win.seconds or 0) + GC_MARGIN
            elif kind == "month":
                at = month_start
                series.expires_at = next_month + GC_MARGIN
            else:
                at = 0
                series.expires_at = None
            amount = round(min(item.amount, item.limit - current), 9)
            series.put(at, amount)
            held[item.scope] = (win, at, amount)
        return None

    async def release(self, lease: str, actual: Sequence[Charge], now: float) -> None:
        given = charges_by_scope(actual)
        if not self._swept <= now < self._swept + _SWEEP_EVERY:
            self._sweep(now)
        record = self._leases.pop(lease, None)
        if record is None or record.expires_at <= now:
            return
        month_start, next_month = self._month.bounds(now)
        second = math.floor(now)
        for scope, reservation in record.held.items():
            if reservation is None:
                slots = self._slots.get(scope)
                if slots is not None:
                    slots.pop(lease, None)
                continue
            charge = given.pop(scope, None)
            if charge is None:
                continue
            win, at, amount = reservation
            series = self._open(scope, win, now, next_month)
            kind = win.kind
            cut = second - (win.seconds or 0) if kind == "rolling" else month_start - 1 if kind == "month" else None
            series.prune(cut)
            if cut is None or at > cut:
                series.put(at, -amount)
            series.put(second if kind == "rolling" else month_start if kind == "month" else 0, charge.amount)
        for charge in given.values():
            self._add(charge.scope, charge.window, charge.amount, now)

    async def charge(self, scope: str, window: Window, amount: float, now: float) -> None:
        check_countable(window)
        check_amount(amount)
        self._sweep(now)
        self._add(scope, window, amount, now)

    async def state(self, scope: str, window: Window, now: float) -> WindowState:
        if window.kind == "concurrent":
            return WindowState(float(self._active(scope, now)), None)
        series = self._live(scope, now)
        if series is None:
            return WindowState(0.0, None)
        month_start, next_month = self._month.bounds(now)
        series.prune(cutoff(window, now, month_start))
        used = tidy(series.total)
        if used == 0 or window.kind == "total":
            return WindowState(used, None)
        if window.kind == "month":
            return WindowState(used, float(next_month))
        assert window.seconds is not None
        return WindowState(used, float(series.oldest() + window.seconds))

    async def seed(self, scope: str, window: Window, entries: Sequence[tuple[float, float]], now: float) -> bool:
        check_countable(window)
        for _, amount in entries:
            check_amount(amount)
        self._sweep(now)
        if self._live(scope, now) is not None:
            return False
        month_start, next_month = self._month.bounds(now)
        cut = cutoff(window, now, month_start)
        series = self._open(scope, window, now, next_month)
        for at, amount in sorted(entries):
            where = bucket(window, at)
            if cut is None or where > cut:
                series.put(where, amount)
        return True

    async def touch_member(self, scope: str, member: str, window: Window, limit: int, now: float) -> tuple[bool, int]:
        check_countable(window)
        self._sweep(now)
        month_start, next_month = self._month.bounds(now)
        members = self._members.get(scope)
        if members is None or (members.expires_at is not None and members.expires_at <= now):
            members = self._members[scope] = _Members({}, None)
        cut = cutoff(window, now, month_start)
        if cut is not None:
            for name in [name for name, at in members.seen.items() if at <= cut]:
                del members.seen[name]
        count = len(members.seen)
        if member not in members.seen:
            if count >= limit:
                return False, count
            count += 1
        members.seen[member] = bucket(window, now, month_start)
        members.expires_at = expires_at(window, now, next_month)
        return True, count

    async def close(self) -> None:
        self._series.clear()
        self._slots.clear()
        self._members.clear()
        self._leases.clear()

    # -- internals ---------------------------------------------------------------------------------------------------

    def _live(self, scope: str, now: float) -> _Series | None:
        """The scope's series, unless its storage expired (as a Redis key would have)."""
        series = self._series.get(scope)
        if series is not None and series.expires_at is not None and series.expires_at <= now:
            del self._series[scope]
            return None
        return series

    def _open(self, scope: str, window: Window, now: float, next_month: int) -> _Series:
        """The scope's series for a write, created if need be; the write extends its life."""
        series = self._live(scope, now)
        if series is None:
            series = self._series[scope] = _Series()
        series.expires_at = expires_at(window, now, next_month)
        return series

    def _add(self, scope: str, window: Window, amount: float, now: float) -> None:
        month_start, next_month = self._month.bounds(now)
        series = self._open(scope, window, now, next_month)
        series.prune(cutoff(window, now, month_start))
        series.put(bucket(window, now, month_start), amount)

    def _active(self, scope: str, now: float) -> int:
        slots = self._slots.get(scope)
        if not slots:
            return 0
        for lease in [lease for lease, until in slots.items() if until <= now]:
            del slots[lease]
        return len(slots)

    def _sweep(self, now: float) -> None:
        """Forget expired storage about once a minute of ``now``, so memory stays bounded by live usage."""
        if self._swept <= now < self._swept + _SWEEP_EVERY:
            return
        self._swept = now
        for scope in [s for s, v in self._series.items() if v.expires_at is not None and v.expires_at <= now]:
            del self._series[scope]
        for scope in [s for s, v in self._members.items() if v.expires_at is not None and v.expires_at <= now]:
            del self._members[scope]
        for lease in [name for name, record in self._leases.items() if record.expires_at <= now]:
            del self._leases[lease]
        for scope in list(self._slots):
            if not self._active(scope, now):
                del self._slots[scope]
