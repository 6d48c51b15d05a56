"""Window names and the pure helpers both backends share (no backend needed)."""

from __future__ import annotations

import pytest

from modelgate.counters import CONCURRENT, MONTH, TOTAL, Window, window
from modelgate.counters.base import bucket, cutoff, month_bounds, retry_after, tidy

from .conftest import epoch


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("1m", 60),
        ("1h", 3600),
        ("5h", 18000),
        ("24h", 86400),
        ("7d", 604800),
        ("90s", 90),
        ("15m", 900),
        ("2d", 172800),
    ],
)
def test_rolling_names(name: str, seconds: int) -> None:
    assert window(name) == Window(name, "rolling", seconds)


def test_named_windows() -> None:
    assert window("month") is MONTH and MONTH.kind == "month" and MONTH.seconds is None
    assert window("total") is TOTAL and TOTAL.kind == "total"
    assert window("concurrent") is CONCURRENT and CONCURRENT.kind == "concurrent"


@pytest.mark.parametrize("name", ["", "5", "h", "0m", "-1h", "5w", "5 h", "1.5h", "Month", "05h"])
def test_unknown_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown window"):
        window(name)


def test_month_bounds_mid_month_and_year_end() -> None:
    assert month_bounds(epoch(2026, 3, 10, 12)) == (epoch(2026, 3, 1), epoch(2026, 4, 1))
    assert month_bounds(epoch(2026, 12, 31, 23, 59, 59)) == (epoch(2026, 12, 1), epoch(2027, 1, 1))
    assert month_bounds(epoch(2026, 1, 1)) == (epoch(2026, 1, 1), epoch(2026, 2, 1))
    assert month_bounds(epoch(2028, 2, 29, 23)) == (epoch(2028, 2, 1), epoch(2028, 3, 1))


def test_buckets_and_cutoffs() -> None:
    now = epoch(2026, 3, 10, 12) + 0.75
    assert bucket(window("5h"), now) == epoch(2026, 3, 10, 12)
    assert bucket(MONTH, now) == epoch(2026, 3, 1)
    assert bucket(TOTAL, now) == 0
    assert cutoff(window("1m"), now, epoch(2026, 3, 1)) == epoch(2026, 3, 10, 12) - 60
    assert cutoff(MONTH, now, epoch(2026, 3, 1)) == epoch(2026, 3, 1) - 1
    assert cutoff(TOTAL, now, epoch(2026, 3, 1)) is None


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert retry_after(None, 100.0) is None
    assert retry_after(160.0, 100.0) == 60.0
    assert retry_after(160.0, 100.25) == 60.0  # 59.75 s: a client waiting 59 s would be refused again
    assert retry_after(160.0, 159.9) == 1.0


def test_tidy_hides_float_drift() -> None:
    assert tidy(0.1 + 0.2) == 0.3
    assert tidy(0.3 - 0.1 - 0.2) == 0.0
    assert tidy(-1e-17) == 0.0
    assert tidy(2e-16) == 0.0
