"""In-process counters: one gateway process, no locks.

Every method runs to completion without an await, so on one event loop each
call is atomic by construction. A scope's usage is a deque of per-second (or
per-month, or one lifetime) cells, oldest first, with their sum kept beside
it: admission reads the sum, pruning pops from the old end, so a call costs
O(1) amortised whatever the window's length. Storage that left its window is
swept about once a minute of ``now``, like the Redis backend's key TTLs.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelgate.counters.base import (
    EPSILON,
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


@dataclass(slots=True)
class _Cell:
    bucket: int
    amount: float


@dataclass(slots=True)
class _Series:
    """One scope's usage: cells oldest first, found by bucket, and their running sum."""

    cells: deque[_Cell] = field(default_factory=deque)
    index: dict[int, _Cell] = field(default_factory=dict)
    total: float = 0.0
    expires_at: float | None = None

    def prune(self, cut: int | None) -> None:
        """Drop cells that left the window, and emptied cells at the old end (a release leaves them behind)."""
        cells = self.cells
        while cells and ((cut is not None and cells[0].bucket <= cut) or cells[0].amount <= 0):
            cell = cells.popleft()
            del self.index[cell.bucket]
            self.total -= cell.amount
        if not cells or self.total < EPSILON:
            self.total = 0.0

    def put(self, at: int, amount: float) -> None:
        """Add ``amount`` (negative: take back a reservation) to the cell of bucket ``at``."""
        cell = self.index.get(at)
        if cell is None:
            if amount <= 0:
                return  # the reservation already left the window: nothing to take back
            cell = self.index[at] = _Cell(at, 0.0)
            if self.cells and self.cells[-1].bucket > at:  # a clock step back, or a seed: keep the order
                position = bisect.bisect([c.bucket for c in self.cells], at)
                self.cells.insert(position, cell)
            else:
                self.cells.append(cell)
        value = cell.amount + amount
        if value < EPSILON:
            value = 0.0
        self.total += value - cell.amount
        cell.amount = value
        if self.total < EPSILON:
            self.total = 0.0

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
        for cell in self.cells:
            left -= cell.amount
            if tidy(left) < limit:
                return float(cell.bucket + window.seconds)
        return None


@dataclass(slots=True)
class _Reservation:
    window: Window
    bucket: int
    amount: float


@dataclass(slots=True)
class _Lease:
    expires_at: float
    held: dict[str, _Reservation | None]  # None: a concurrency slot


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

    async def acquire(self, lease: str, limits: Sequence[Limit], now: float) -> Refusal | None:
        check_limits(limits)
        self._sweep(now)
        month_start, next_month = self._month.bounds(now)
        record = self._leases.get(lease)
        if record is not None and record.expires_at <= now:
            record = None
        used: list[float] = []
        for item in limits:
            if record is not None and item.scope in record.held:
                raise ValueError(f"lease {lease!r} already holds scope {item.scope!r}")
            if item.window.kind == "concurrent":
                active = float(self._active(item.scope, now))
                if active >= item.limit:
                    return Refusal(item, active, None)
                used.append(active)
                continue
            series = self._live(item.scope, now)
            if series is None:
                used.append(0.0)
                if item.limit <= 0:
                    return Refusal(item, 0.0, None)
                continue
            series.prune(cutoff(item.window, now, month_start))
            current = tidy(series.total)
            if current >= item.limit:
                free_at = series.free_at(item.window, item.limit, next_month)
                return Refusal(item, current, retry_after(free_at, now))
            used.append(current)
        if record is None:
            record = self._leases[lease] = _Lease(now + self._lease_ttl, {})
        for item, current in zip(limits, used, strict=True):
            if item.window.kind == "concurrent":
                self._slots.setdefault(item.scope, {})[lease] = record.expires_at
                record.held[item.scope] = None
                continue
            amount = round(min(item.amount, item.limit - current), 9)
            at = bucket(item.window, now, month_start)
            series = self._open(item.scope, item.window, now, next_month)
            series.put(at, amount)
            record.held[item.scope] = _Reservation(item.window, at, amount)
        return None

    async def release(self, lease: str, actual: Sequence[Charge], now: float) -> None:
        given = charges_by_scope(actual)
        self._sweep(now)
        record = self._leases.pop(lease, None)
        if record is None or record.expires_at <= now:
            return
        month_start, next_month = self._month.bounds(now)
        for scope, reservation in record.held.items():
            if reservation is None:
                slots = self._slots.get(scope)
                if slots is not None:
                    slots.pop(lease, None)
                continue
            charge = given.pop(scope, None)
            if charge is None:
                continue
            series = self._open(scope, reservation.window, now, next_month)
            cut = cutoff(reservation.window, now, month_start)
            series.prune(cut)
            if cut is None or reservation.bucket > cut:
                series.put(reservation.bucket, -reservation.amount)
            series.put(bucket(reservation.window, now, month_start), charge.amount)
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
        return WindowState(used, float(series.cells[0].bucket + window.seconds))

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
