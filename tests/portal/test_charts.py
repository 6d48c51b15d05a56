"""Server-drawn SVG charts and bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelgate.portal.charts import Slots, bar_chart, line_chart, nice_ceiling, percent_bar, share_bars
from modelgate.portal.web import count, duration, ms, percent, usd

T0 = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def test_slots_cover_a_range_aligned_to_the_epoch() -> None:
    slots = Slots.covering(T0 - timedelta(hours=24), T0, 3600)
    assert (slots.start, slots.count) == (datetime(2026, 3, 9, 12, tzinfo=UTC), 25)
    assert slots.index(T0) == 24 and slots.index(slots.start) == 0
    assert slots.index(T0 + timedelta(hours=1)) is None and slots.index(slots.start - timedelta(seconds=1)) is None


def test_nice_ceilings() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 11, 0.0042, 240, 950)] == [1.0, 0.3, 1, 8, 12, 0.006, 300, 1000]


def test_bar_chart_draws_one_bar_per_slot_with_a_value() -> None:
    slots = Slots.covering(T0 - timedelta(hours=5), T0, 3600)
    svg = str(bar_chart(slots, {0: 2, 3: 7, 4: 0}, count, "Requests <all>"))
    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert svg.count('<rect class="bar"') == 2
    assert 'aria-label="Requests &lt;all&gt;"' in svg
    assert ">8<" in svg and ">6<" in svg  # the axis' top and its quarters
    assert "2026-03-10 10:00 UTC: 7" in svg


def test_line_chart_breaks_at_gaps_and_has_a_legend() -> None:
    slots = Slots.covering(T0 - timedelta(hours=5), T0, 3600)
    svg = str(line_chart(slots, {"p50": {0: 100, 1: 120, 3: 90}, "p95": {}}, ms, "Latency"))
    assert svg.count("<polyline") == 1  # 0-1 joined; 3 alone
    assert svg.count("<circle") == 3
    assert ">p50<" in svg and ">p95<" in svg


def test_percent_bars() -> None:
    assert 'width="42.50"' in str(percent_bar(42.5, "5h")) and "pbar-ok" in str(percent_bar(42.5, "5h"))
    assert "pbar-high" in str(percent_bar(75, "x")) and "pbar-full" in str(percent_bar(130, "x"))
    assert 'width="100.00"' in str(percent_bar(130, "x")) and 'width="0.00"' in str(percent_bar(-3, "x"))
    shares = share_bars([("a", 4.0), ("b", 1.0)])
    assert [(name, value) for name, value, _ in shares] == [("a", 4.0), ("b", 1.0)]
    assert 'width="25.00"' in str(shares[1][2]) and "pbar-share" in str(shares[0][2])


def test_formats_for_people() -> None:
    assert [usd(v) for v in (None, 0, 0.0042, 12.345, 1234.5)] == ["—", "$0.00", "$0.0042", "$12.35", "$1,234.50"]
    assert [count(v) for v in (None, 7, 950, 12_300, 4_500_000)] == ["—", "7", "950", "12.3k", "4.5M"]
    assert [ms(v) for v in (None, 840, 2400)] == ["—", "840 ms", "2.4 s"]
    assert [percent(v) for v in (None, 0.032, 0.25)] == ["—", "3.2%", "25%"]
    assert [duration(v) for v in (None, 45, 190, 3 * 3600 + 720, 2 * 86400 + 4 * 3600)] == [
        "—", "45s", "3m 10s", "3h 12m", "2d 4h",
    ]  # fmt: skip
