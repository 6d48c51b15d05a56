"""What the ledger's analytic reads return: traffic per time bucket and per deployment.

Latency percentiles are computed here, in Python, from a histogram the database counts
(``LATENCY_EDGES``): PostgreSQL has ``percentile_cont`` and SQLite has nothing, and a
histogram keeps what leaves the database bounded (at most one row per bucket and bin)
whatever the number of requests. A percentile is interpolated inside its bin; the bins
grow by steps of 1.33 to 2, so a figure is within about a fifth of the exact one, which
is what a chart of p50/p95 needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

#: Upper bounds (exclusive, ms) of the latency bins; one more bin holds everything above.
LATENCY_EDGES: Final[tuple[int, ...]] = (
    5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000,
    4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 45_000, 60_000, 90_000, 120_000, 180_000,
    300_000, 600_000,
)  # fmt: skip
BINS: Final = len(LATENCY_EDGES) + 1


@dataclass(slots=True)
class LatencyHistogram:
    """Requests counted per latency bin (``LATENCY_EDGES``)."""

    counts: list[int] = field(default_factory=lambda: [0] * BINS)

    def add(self, bin: int, count: int) -> None:
        self.counts[bin] += count

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> float | None:
        """The latency (ms) under which a share ``q`` (0 to 1) of the requests fall; None without any."""
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.counts):
            if count and seen + count >= rank:
                low = 0 if index == 0 else LATENCY_EDGES[index - 1]
                if index == len(LATENCY_EDGES):
                    return float(low)  # above the last edge: its floor is all that is known
                high = LATENCY_EDGES[index]
                return low + (high - low) * max(0.0, rank - seen) / count
            seen += count
        return float(LATENCY_EDGES[-1])


def bin_of(latency_ms: int) -> int:
    """The bin of a latency, as the database's CASE computes it (for tests and callers in Python)."""
    for index, edge in enumerate(LATENCY_EDGES):
        if latency_ms < edge:
            return index
    return len(LATENCY_EDGES)


@dataclass(slots=True)
class Traffic:
    """Requests, errors (status 400 and above, except a client's own hang-up, 499), spend,
    tokens and latency of one slice of the ledger."""

    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    tokens: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def add(self, bin: int, requests: int, errors: int, cost_usd: float, tokens: int) -> None:
        self.requests += requests
        self.errors += errors
        self.cost_usd += cost_usd
        self.tokens += tokens
        self.latency.add(bin, requests)


@dataclass(slots=True)
class TimeBucket:
    """The traffic of one time bucket, from ``start`` (UTC) on."""

    start: datetime
    traffic: Traffic


@dataclass(slots=True)
class DeploymentTraffic:
    """The traffic one provider served with one upstream model."""

    provider: str
    served_model: str
    traffic: Traffic


def total(parts: Sequence[Traffic]) -> Traffic:
    """The slices added up."""
    out = Traffic()
    for part in parts:
        out.requests += part.requests
        out.errors += part.errors
        out.cost_usd += part.cost_usd
        out.tokens += part.tokens
        for index, count in enumerate(part.latency.counts):
            out.latency.add(index, count)
    return out
