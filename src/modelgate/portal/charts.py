"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing to download.

A chart is a fixed grid of time slots (one per bucket of the chosen range, empty ones drawn
as zero or a gap) with a y axis rounded up to a readable maximum. Sizes are in the SVG's own
units and the element scales to its container's width, so the charts stay sharp and fit a
phone as well as a wide screen. Percentage bars are SVG too, so the pages need no inline
style (the portal's Content-Security-Policy allows none).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 640
HEIGHT: Final = 180
_LEFT: Final = 56
_RIGHT: Final = 8
_TOP: Final = 24  # room for a legend above the plot
_BOTTOM: Final = 24
#: Series colours, in order (the stylesheet's accent first).
COLOURS: Final = ("#2563eb", "#d97706", "#059669", "#dc2626")

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Slots:
    """The time slots of a chart: ``count`` buckets of ``seconds`` from ``start`` on (UTC)."""

    start: datetime
    seconds: int
    count: int

    @classmethod
    def covering(cls, since: datetime, until: datetime, seconds: int) -> Slots:
        """Buckets aligned to the epoch, from the one holding ``since`` to the one holding ``until``."""
        first = int(since.timestamp()) // seconds * seconds
        last = int(until.timestamp()) // seconds * seconds
        return cls(datetime.fromtimestamp(first, UTC), seconds, (last - first) // seconds + 1)

    def index(self, at: datetime) -> int | None:
        offset = int((at - self.start).total_seconds()) // self.seconds
        return offset if 0 <= offset < self.count else None

    def at(self, index: int) -> datetime:
        return self.start + timedelta(seconds=self.seconds * index)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.6, 2, 3, 4, 6, 8 × 10ⁿ at or above ``value`` (1 for nothing):
    maxima whose quarters, the grid's lines, are round numbers too."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 3, 4, 6, 8, 10):
        if step * magnitude >= value * (1 - 1e-9):
            return float(f"{step * magnitude:.12g}")  # 0.3, not 0.30000000000000004
    return float(10 * magnitude)


def _frame(slots: Slots, top: float, fmt: Format, label: str) -> list[str]:
    """The SVG's opening, the horizontal grid with y labels, and the x labels."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i in range(5):
        y = _TOP + plot_h * (1 - i / 4)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        tick = escape(fmt(top * i / 4))
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    ticks = 6 if slots.count > 6 else slots.count
    for i in range(ticks):
        index = round(i * (slots.count - 1) / max(1, ticks - 1))
        x = _LEFT + plot_w * (index + 0.5) / slots.count
        when = slots.at(index)
        text = when.strftime("%H:%M") if slots.seconds < 86_400 else when.strftime("%b %d")
        if slots.seconds < 86_400 and slots.count * slots.seconds > 86_400:
            text = when.strftime("%a %H:%M")
        anchor = "end" if i == ticks - 1 and ticks > 1 else ("start" if i == 0 and ticks > 1 else "middle")
        x = min(x, WIDTH - _RIGHT) if anchor == "end" else x
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{text}</text>')
    return parts


def bar_chart(slots: Slots, values: Mapping[int, float], fmt: Format, label: str) -> Markup:
    """One bar per slot (missing slots are zero), with a tooltip giving the slot's time and value."""
    top = nice_ceiling(max(values.values(), default=0.0))
    parts = _frame(slots, top, fmt, label)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot_w = plot_w / slots.count
    gap = min(2.0, slot_w * 0.2)
    for index, value in sorted(values.items()):
        if value <= 0:
            continue
        h = plot_h * value / top
        x, y = _LEFT + slot_w * index + gap / 2, _TOP + plot_h - h
        title = f"{slots.at(index):%Y-%m-%d %H:%M} UTC: {fmt(value)}"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot_w - gap:.1f}" height="{h:.1f}">'
            f"<title>{escape(title)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(slots: Slots, series: Mapping[str, Mapping[int, float]], fmt: Format, label: str) -> Markup:
    """A line per series through the slots that have a value (a missing slot breaks the line),
    a dot on each value, and a legend."""
    top = nice_ceiling(max((v for values in series.values() for v in values.values()), default=0.0))
    parts = _frame(slots, top, fmt, label)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    for n, (name, values) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        runs: list[list[str]] = []
        previous: int | None = None
        for index in sorted(values):
            x = _LEFT + plot_w * (index + 0.5) / slots.count
            y = _TOP + plot_h * (1 - values[index] / top)
            point = f"{x:.1f},{y:.1f}"
            if previous is None or index != previous + 1:
                runs.append([])
            runs[-1].append(point)
            previous = index
            title = f"{name} {slots.at(index):%Y-%m-%d %H:%M} UTC: {fmt(values[index])}"
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(title)}</title></circle>'
            )
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="line" stroke="{colour}" points="{" ".join(run)}"/>')
        lx = WIDTH - _RIGHT - 70 * (len(series) - n)
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" rx="2" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{lx + 14}" y="13">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def percent_bar(percent: float, label: str, *, share: bool = False) -> Markup:
    """A horizontal bar filled to ``percent`` (0 to 100), coloured by how full it is (a budget's
    use), or in one neutral colour (``share``: a part of a whole, where full is not a warning)."""
    filled = max(0.0, min(100.0, percent))
    level = "share" if share else ("full" if filled >= 90 else ("high" if filled >= 70 else "ok"))
    return Markup(
        f'<svg class="pbar pbar-{level}" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}: {filled:.0f}%" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="pbar-track" width="100" height="8" rx="4"/>'
        f'<rect class="pbar-fill" width="{filled:.2f}" height="8" rx="4"/></svg>'
    )


def share_bars(items: Sequence[tuple[str, float]]) -> list[tuple[str, float, Markup]]:
    """Each item with a bar of its share of the largest (for top-N tables)."""
    top = max((value for _, value in items), default=0.0)
    return [(name, value, percent_bar(100 * value / top if top else 0.0, name, share=True)) for name, value in items]
