"""Counters: the fast-changing state of limits (windows, rates, concurrency, distinct IPs).

In-process by default; Redis when several gateway processes must share limits.
"""

from __future__ import annotations

from modelgate.counters.base import (
    CONCURRENT,
    MONTH,
    TOTAL,
    WINDOWS,
    Charge,
    Counters,
    Limit,
    Refusal,
    Window,
    WindowState,
    window,
)
from modelgate.counters.memory import MemoryCounters

__all__ = [
    "CONCURRENT",
    "MONTH",
    "TOTAL",
    "WINDOWS",
    "Charge",
    "Counters",
    "Limit",
    "MemoryCounters",
    "Refusal",
    "Window",
    "WindowState",
    "open_counters",
    "window",
]


def open_counters(redis_url: str | None, *, prefix: str = "mg:", lease_ttl: float = 900.0) -> Counters:
    """Redis counters when a URL is given, else in-process ones (the Redis client connects on first use)."""
    if redis_url:
        from modelgate.counters.redis import RedisCounters  # redis-py is imported only when it is used

        return RedisCounters(redis_url, prefix=prefix, lease_ttl=lease_ttl)
    return MemoryCounters(lease_ttl=lease_ttl)
