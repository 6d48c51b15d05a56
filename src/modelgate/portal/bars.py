"""A key's (and a team's) budget windows as percentage bars, each with the time its capacity frees.

The used share comes from :meth:`Admin.windows` (the ledger since the window began, against
the budget). When it frees: a rolling window (5 h, 7 d) frees as its oldest billed request
ages out of it; the month window empties on the first of the next month (UTC); a lifetime
budget never frees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from markupsafe import Markup

from modelgate.admin.service import Admin, KeyWindows, WindowUsage
from modelgate.portal.charts import percent_bar
from modelgate.store import TeamRecord

LABELS: Final = {"5h": "5-hour", "7d": "7-day", "month": "Month", "total": "Lifetime"}
_ROLLING: Final = {"5h": timedelta(hours=5), "7d": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class WindowBar:
    owner: str  # "key" or "team"
    window: str
    label: str
    usage: WindowUsage
    frees_at: datetime | None
    bar: Markup
    #: Seconds from now until ``frees_at``.
    frees_in: float | None = None

    @property
    def percent(self) -> float:
        return self.usage.used_percent


def next_month(now: datetime) -> datetime:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=32)).replace(day=1)


async def frees_at(
    admin: Admin, usage: WindowUsage, *, key_id: str | None = None, team_id: str | None = None
) -> datetime | None:
    """When part of the window's spend stops counting; None when nothing is spent or it never frees."""
    if usage.window == "total" or (usage.used_usd <= 0 and usage.used_credits <= 0):
        return None
    if usage.window == "month":
        return next_month(usage.since)
    oldest = await admin.ledger.oldest(key_id=key_id, team_id=team_id, since=usage.since)
    return None if oldest is None else oldest + _ROLLING[usage.window]


async def window_bars(admin: Admin, key_ref: str, *, frees: bool = True) -> tuple[KeyWindows, list[WindowBar]]:
    """Every window of the key and of its team, key first; ``frees=False`` spares the query of
    when each frees (a list of many keys shows only the bars)."""
    windows = await admin.windows(key_ref)
    team_id = windows.team.id if windows.team else None
    mine = await _bars(admin, "key", windows.key_windows, windows.at, frees, key_id=windows.key.id)
    team = await _bars(admin, "team", windows.team_windows, windows.at, frees, team_id=team_id)
    return windows, mine + team


async def team_bars(admin: Admin, team: TeamRecord) -> list[WindowBar]:
    """Every window of a team (what all its keys spent together), with when each frees."""
    now = admin.now()
    return await _bars(admin, "team", await admin.team_windows(team, now), now, True, team_id=team.id)


async def _bars(
    admin: Admin,
    owner: str,
    usages: Sequence[WindowUsage],
    now: datetime,
    frees: bool,
    *,
    key_id: str | None = None,
    team_id: str | None = None,
) -> list[WindowBar]:
    bars = []
    for usage in usages:
        label = LABELS.get(usage.window, usage.window)
        when = await frees_at(admin, usage, key_id=key_id, team_id=team_id) if frees else None
        left = None if when is None else max(0.0, (when - now).total_seconds())
        bars.append(WindowBar(owner, usage.window, label, usage, when, percent_bar(usage.used_percent, label), left))
    return bars
