"""Keys, teams and usage as text for a terminal: the CLI's tables and detail views.

Text only ever shows a key's hint (``sk-mg-ab12…``); the secret is printed by the
commands that make one, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from modelgate.admin.service import KeyWindows, WindowUsage, key_status
from modelgate.admin.views import shown_hint
from modelgate.store import Budget, KeyRecord, TeamRecord, UsageGroup, UsageGroupBy


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the ``right`` ones (numbers) aligned right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for row in (headers, *rows):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def when(value: datetime | None, none: str = "-") -> str:
    return none if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def amount(value: float) -> str:
    """Money and credits: whole when whole, else to the cent or finer."""
    if value == int(value):
        return str(int(value))
    return f"{value:.4f}".rstrip("0") if abs(value) < 1 else f"{value:.2f}"


def budgets(items: Sequence[Budget]) -> str:
    parts = []
    for budget in items:
        limits = [f"${amount(budget.usd)}" if budget.usd is not None else ""]
        limits.append(f"{amount(budget.credits)} credits" if budget.credits is not None else "")
        parts.append(f"{' + '.join(x for x in limits if x)}/{budget.window}")
    return ", ".join(parts) or "-"


def limits(holder: KeyRecord | TeamRecord) -> str:
    pairs = [("rpm", holder.rpm), ("tpm", holder.tpm), ("concurrency", holder.concurrency)]
    if isinstance(holder, KeyRecord):
        pairs.append(("max_tokens", holder.max_tokens))
    return ", ".join(f"{name} {value}" for name, value in pairs if value is not None) or "-"


def key_table(keys: Sequence[KeyRecord], team_names: Mapping[str, str], now: datetime) -> str:
    rows = [
        [
            key.name,
            key.id,
            shown_hint(key),
            team_names.get(key.team_id, key.team_id) if key.team_id else "-",
            key_status(key, now),
            budgets(key.budgets),
            limits(key),
            when(key.expires_at, "never"),
        ]
        for key in keys
    ]
    return table(["NAME", "ID", "KEY", "TEAM", "STATUS", "BUDGETS", "LIMITS", "EXPIRES"], rows)


def team_table(teams: Sequence[TeamRecord], members: Mapping[str, int]) -> str:
    rows = [[t.name, t.id, str(members.get(t.id, 0)), budgets(t.budgets), limits(t)] for t in teams]
    return table(["NAME", "ID", "KEYS", "BUDGETS", "LIMITS"], rows, right=[2])


def key_details(key: KeyRecord, team_name: str | None, now: datetime) -> list[tuple[str, str]]:
    ip = "any" if not key.ip_allow else ", ".join(key.ip_allow)
    if key.ip_limit is not None:
        ip += f"; at most {key.ip_limit} addresses per {key.ip_window}"
    details = [
        ("name", key.name),
        ("id", key.id),
        ("key", shown_hint(key)),
        ("team", team_name or key.team_id or "-"),
        ("status", key_status(key, now)),
        ("models", ", ".join(key.models) or "all"),
        ("expires", when(key.expires_at, "never")),
        ("budgets", budgets(key.budgets)),
        ("limits", limits(key)),
        ("client IPs", ip),
        ("warm-ups", "answered locally" if key.intercept_warmup else "sent upstream"),
        ("bodies", "kept in the request log" if key.log_bodies else "not kept"),
    ]
    if key.revoked_at is not None:
        details.append(("revoked", when(key.revoked_at)))
    if key.quarantined_at is not None:
        details.append(("quarantined", f"{when(key.quarantined_at)} ({key.quarantine_reason or 'no reason given'})"))
    if key.metadata:
        details.append(("metadata", ", ".join(f"{k}={v}" for k, v in key.metadata.items())))
    details += [("created", when(key.created_at)), ("updated", when(key.updated_at))]
    return details


def team_details(team: TeamRecord, members: int) -> list[tuple[str, str]]:
    details = [
        ("name", team.name),
        ("id", team.id),
        ("keys", str(members)),
        ("budgets", budgets(team.budgets)),
        ("limits", limits(team)),
    ]
    if team.metadata:
        details.append(("metadata", ", ".join(f"{k}={v}" for k, v in team.metadata.items())))
    return [*details, ("created", when(team.created_at)), ("updated", when(team.updated_at))]


def details(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in pairs) + 1
    return "\n".join(f"{(label + ':').ljust(width)} {value}" for label, value in pairs)


def windows_table(windows: KeyWindows) -> str:
    """Each budget window of the key and its team: spent, limit, percentage."""
    rows = [_window_row("key", w) for w in windows.key_windows]
    if windows.team is not None:
        rows += [_window_row(f"team {windows.team.name}", w) for w in windows.team_windows]
    if not rows:
        return "no budgets on this key or its team"
    return table(["BUDGET", "WINDOW", "USED", "LIMIT", "USED %", "REQUESTS", "SINCE"], rows, right=[2, 3, 4, 5])


def _window_row(whose: str, window: WindowUsage) -> list[str]:
    used, limit = [], []
    if window.limit_usd is not None:
        used.append(f"${amount(round(window.used_usd, 4))}")
        limit.append(f"${amount(window.limit_usd)}")
    if window.limit_credits is not None:
        used.append(f"{amount(round(window.used_credits, 4))} cr")
        limit.append(f"{amount(window.limit_credits)} cr")
    since = "lifetime" if window.window == "total" else when(window.since)
    percent = f"{window.used_percent:.1f}%"
    return [whose, window.window, " + ".join(used), " + ".join(limit), percent, str(window.requests), since]


def usage_table(groups: Sequence[UsageGroup], group_by: UsageGroupBy, *, credits: bool) -> str:
    """The ledger's summary, one row per group and a total."""
    headers = [group_by.upper(), "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST USD"]
    if credits:
        headers.append("CREDITS")

    def row(label: str, lines: Sequence[UsageGroup]) -> list[str]:
        cells = [
            label,
            str(sum(g.requests for g in lines)),
            str(sum(g.input_tokens for g in lines)),
            str(sum(g.output_tokens for g in lines)),
            str(sum(g.cache_read_tokens for g in lines)),
            str(sum(g.cache_write_tokens for g in lines)),
            f"{sum(g.cost_usd for g in lines):.4f}",
        ]
        return [*cells, f"{sum(g.credits for g in lines):.2f}"] if credits else cells

    rows = [row(_group_label(group, group_by), [group]) for group in groups]
    rows.append(row("TOTAL", groups))
    return table(headers, rows, right=range(1, len(headers)))


def _group_label(group: UsageGroup, group_by: UsageGroupBy) -> str:
    if group.group is None:
        return {"key": "(master key)", "team": "(no team)", "endpoint_id": "(no endpoint)"}.get(group_by, "-")
    if group_by in ("key", "team", "endpoint_id"):
        return group.name or f"{group.group} (deleted)"
    return group.group
