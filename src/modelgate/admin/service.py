"""The operations an operator runs on keys, teams and usage, shared by the admin API and the CLI.

Both front ends call these and only render the results, so a rule (a key's secret made
here and never stored, a revoked key never rotated back to life, a team referred to by
name or id) holds the same whichever way the operator comes in. Everything returns the
store's records; the JSON views are in ``views.py``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypedDict, Unpack

from modelgate.policy.keys import digest, hint, new_secret
from modelgate.store import (
    Budget,
    BudgetWindow,
    KeyChanges,
    KeyRecord,
    LedgerStore,
    RequestRecord,
    RequestStore,
    SessionSummary,
    Spend,
    StoreConflict,
    StoreNotFound,
    TeamChanges,
    TeamRecord,
    TenantStore,
    UsageGroup,
    UsageGroupBy,
)

#: The lifetime window's start: before any row of any ledger.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ROLLING: Final[Mapping[str, timedelta]] = {"5h": timedelta(hours=5), "7d": timedelta(days=7)}
_DURATION: Final = re.compile(r"[1-9][0-9]*[smhd]")
#: The IP window a key gets when an IP limit is set without one.
DEFAULT_IP_WINDOW: Final = "24h"

KeyStatus = Literal["active", "revoked", "expired", "quarantined"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class KeyUpdate(TypedDict, total=False):
    """What an operator may change on a key; ``None`` clears a limit, ``team=None`` the team.

    The secret changes only by :meth:`Admin.rotate_key`, revocation only by
    :meth:`Admin.revoke_key`, quarantine only by the gateway and :meth:`Admin.release_key`.
    """

    name: str
    team: str | None
    models: Sequence[str]
    expires_at: datetime | None
    budgets: Sequence[Budget]
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    max_tokens: int | None
    ip_allow: Sequence[str]
    ip_limit: int | None
    ip_window: str | None
    intercept_warmup: bool
    log_bodies: bool
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """One budget's window: what the ledger holds since the window started, against its limits."""

    window: BudgetWindow
    since: datetime
    used_usd: float
    limit_usd: float | None
    used_credits: float
    limit_credits: float | None
    requests: int
    tokens: int

    @property
    def used_percent(self) -> float:
        """The fullest of the budget's limits, 0 to 100 (a zero limit counts as full)."""
        shares = [
            100.0 if limit == 0 else used / limit * 100
            for used, limit in ((self.used_usd, self.limit_usd), (self.used_credits, self.limit_credits))
            if limit is not None
        ]
        return round(min(100.0, max(shares, default=0.0)), 2)


@dataclass(frozen=True, slots=True)
class KeyWindows:
    """A key's budget windows, and its team's when it has one: what bounds the key's spending."""

    at: datetime
    key: KeyRecord
    key_windows: tuple[WindowUsage, ...]
    team: TeamRecord | None
    team_windows: tuple[WindowUsage, ...]


def window_start(window: BudgetWindow, now: datetime) -> datetime:
    """Where a window begins at ``now``: rolling windows behind it, the month at its first (UTC)."""
    if window in _ROLLING:
        return now - _ROLLING[window]
    if window == "month":
        return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return EPOCH


class Admin:
    """Keys, teams and usage over the tenancy store; key and team refs are ids or names.

    ``credit_rate`` (credits per USD) is the gateway's configured rate: with it, views
    show credits beside USD. ``clock`` stamps revocations and places the budget windows.
    """

    def __init__(
        self,
        tenants: TenantStore,
        ledger: LedgerStore,
        credit_rate: float | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        requests: RequestStore | None = None,
    ) -> None:
        self.tenants = tenants
        self.ledger = ledger
        #: The request log (None when ``records.enabled`` is off: its reads answer 404).
        self.log = requests
        self.credit_rate = credit_rate
        self._clock = clock

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # keys

    async def create_key(
        self,
        name: str,
        team: str | None = None,
        budgets: Sequence[Budget] = (),
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        max_tokens: int | None = None,
        models: Sequence[str] = (),
        expires_at: datetime | None = None,
        ip_allow: Sequence[str] = (),
        ip_limit: int | None = None,
        ip_window: str | None = None,
        intercept_warmup: bool = True,
        log_bodies: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key and its secret: the only time the secret exists outside its holder's hands."""
        if ip_limit is not None and ip_window is None:
            ip_window = DEFAULT_IP_WINDOW
        fields = _checked_key(
            {
                "budgets": budgets,
                "rpm": rpm,
                "tpm": tpm,
                "concurrency": concurrency,
                "max_tokens": max_tokens,
                "models": models,
                "expires_at": expires_at,
                "ip_allow": ip_allow,
                "ip_limit": ip_limit,
                "ip_window": ip_window,
                "intercept_warmup": intercept_warmup,
                "log_bodies": log_bodies,
            }
        )
        team_id = None if team is None else (await self.tenants.get_team(team)).id
        secret = new_secret()
        record = await self.tenants.create_key(
            name,
            key_hash=digest(secret),
            hint=hint(secret),
            team_id=team_id,
            metadata=metadata,
            **fields,
        )
        return record, secret

    async def list_keys(self, team: str | None = None) -> list[KeyRecord]:
        team_id = None if team is None else (await self.tenants.get_team(team)).id
        return await self.tenants.list_keys(team_id=team_id)

    async def show_key(self, ref: str) -> KeyRecord:
        return await self.tenants.get_key(ref)

    async def update_key(self, ref: str, **changes: Unpack[KeyUpdate]) -> KeyRecord:
        fields: dict[str, Any] = dict(changes)
        unknown = fields.keys() - KeyUpdate.__annotations__.keys()
        if unknown:
            raise ValueError(f"a key has no changeable field(s) {', '.join(sorted(unknown))}")
        store_changes: dict[str, Any] = _checked_key({k: v for k, v in fields.items() if k != "team"})
        if "team" in changes:
            team = changes["team"]
            store_changes["team_id"] = None if team is None else (await self.tenants.get_team(team)).id
        if store_changes.get("ip_limit") is not None and "ip_window" not in store_changes:
            current = await self.tenants.get_key(ref)
            if current.ip_window is None:
                store_changes["ip_window"] = DEFAULT_IP_WINDOW
        return await self.tenants.update_key(ref, **_key_changes(store_changes))

    async def revoke_key(self, ref: str) -> KeyRecord:
        """Stop a key for good (a revoked key keeps its row, so every instance learns of it)."""
        key = await self.tenants.get_key(ref)
        if key.revoked_at is not None:
            return key
        return await self.tenants.update_key(key.id, revoked_at=self.now())

    async def rotate_key(self, ref: str) -> tuple[KeyRecord, str]:
        """A new secret for the same key (id, name, team, budgets, limits); the old secret stops working."""
        key = await self.tenants.get_key(ref)
        if key.revoked_at is not None:
            raise StoreConflict(f"key {key.name!r} is revoked: create a new key instead of rotating it")
        secret = new_secret()
        record = await self.tenants.update_key(key.id, key_hash=digest(secret), hint=hint(secret))
        return record, secret

    async def release_key(self, ref: str) -> KeyRecord:
        """Lift a quarantine the gateway put on a key (a no-op for a key not quarantined)."""
        key = await self.tenants.get_key(ref)
        if key.quarantined_at is None and key.quarantine_reason is None:
            return key
        return await self.tenants.update_key(key.id, quarantined_at=None, quarantine_reason=None)

    # teams

    async def create_team(
        self,
        name: str,
        budgets: Sequence[Budget] = (),
        rpm: int | None = None,
        tpm: int | None = None,
        concurrency: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TeamRecord:
        _check_limits({"budgets": budgets, "rpm": rpm, "tpm": tpm, "concurrency": concurrency})
        return await self.tenants.create_team(
            name, budgets=tuple(budgets), rpm=rpm, tpm=tpm, concurrency=concurrency, metadata=metadata
        )

    async def list_teams(self) -> list[TeamRecord]:
        return await self.tenants.list_teams()

    async def show_team(self, ref: str) -> TeamRecord:
        return await self.tenants.get_team(ref)

    async def update_team(self, ref: str, **changes: Unpack[TeamChanges]) -> TeamRecord:
        unknown = changes.keys() - TeamChanges.__annotations__.keys()
        if unknown:
            raise ValueError(f"a team has no changeable field(s) {', '.join(sorted(unknown))}")
        _check_limits(dict(changes))
        return await self.tenants.update_team(ref, **changes)

    async def delete_team(self, ref: str) -> TeamRecord:
        """Delete a team that no key belongs to (StoreConflict otherwise); returns what was deleted."""
        team = await self.tenants.get_team(ref)
        await self.tenants.delete_team(team.id)
        return team

    async def team_names(self) -> dict[str, str]:
        """Team id → name, for views that show a key's team by name."""
        return {team.id: team.name for team in await self.tenants.list_teams()}

    # usage

    async def usage(
        self,
        key: str | None = None,
        team: str | None = None,
        since: datetime | None = None,
        group_by: UsageGroupBy = "key",
    ) -> list[UsageGroup]:
        """The ledger summed per group (costliest first), for one key or team or for everyone."""
        key_id = None if key is None else (await self.tenants.get_key(key)).id
        team_id = None if team is None else (await self.tenants.get_team(team)).id
        return await self.ledger.summary(since=since, key_id=key_id, team_id=team_id, group_by=group_by)

    # the request log

    async def requests(
        self,
        *,
        key: str | None = None,
        team: str | None = None,
        endpoint: str | None = None,
        session: str | None = None,
        request_id: str | None = None,
        model: str | None = None,
        status: Literal["2xx", "3xx", "4xx", "5xx"] | None = None,
        errors: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[RequestRecord]:
        """The request log, newest first, filtered; key and team refs are ids or names, and
        ``request_id`` the gateway's request id or the upstream's."""
        log = self._log()
        return await log.list(
            key_id=None if key is None else (await self.tenants.get_key(key)).id,
            team_id=None if team is None else (await self.tenants.get_team(team)).id,
            endpoint_id=endpoint,
            session_id=session,
            request_id=request_id,
            model=model,
            status=status,
            errors=errors,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )

    async def request(self, request_id: str) -> RequestRecord:
        """One request's record, with its bodies if they were kept, by the gateway's request id
        or the upstream's (the one a client saw on a passthrough answer)."""
        found = await self._log().get(request_id)
        if found is None:
            raise StoreNotFound(f"no request {request_id!r} in the request log")
        return found

    async def sessions(
        self,
        *,
        key: str | None = None,
        endpoint: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 50,
    ) -> Sequence[SessionSummary]:
        """Agent sessions, the latest active first."""
        key_id = None if key is None else (await self.tenants.get_key(key)).id
        return await self._log().sessions(key_id=key_id, endpoint_id=endpoint, since=since, before=before, limit=limit)

    async def session(self, session_id: str, *, key: str | None = None) -> list[RequestRecord]:
        """One session's requests, in order."""
        key_id = None if key is None else (await self.tenants.get_key(key)).id
        found = await self._log().session(session_id, key_id=key_id)
        if not found:
            raise StoreNotFound(f"no session {session_id!r} in the request log")
        return found

    def _log(self) -> RequestStore:
        if self.log is None:
            raise StoreNotFound("the request log is off (records.enabled: false)")
        return self.log

    async def windows(self, key_ref: str) -> KeyWindows:
        """Each budget window of a key and of its team: spent since the window began, and the limit."""
        now = self.now()
        key = await self.tenants.get_key(key_ref)
        team = None if key.team_id is None else await self.tenants.get_team(key.team_id)
        key_windows = [await self._window(budget, now, key_id=key.id) for budget in key.budgets]
        team_windows = () if team is None else await self.team_windows(team, now)
        return KeyWindows(now, key, tuple(key_windows), team, team_windows)

    async def team_windows(self, team: TeamRecord, now: datetime | None = None) -> tuple[WindowUsage, ...]:
        """Each budget window of a team: spent by all its keys since the window began, and the limit."""
        now = now or self.now()
        return tuple([await self._window(budget, now, team_id=team.id) for budget in team.budgets])

    async def _window(
        self, budget: Budget, now: datetime, *, key_id: str | None = None, team_id: str | None = None
    ) -> WindowUsage:
        since = window_start(budget.window, now)
        spend: Spend = await self.ledger.spend(key_id=key_id, team_id=team_id, since=since)
        return WindowUsage(
            window=budget.window,
            since=since,
            used_usd=spend.cost_usd,
            limit_usd=budget.usd,
            used_credits=spend.credits,
            limit_credits=budget.credits,
            requests=spend.requests,
            tokens=spend.tokens,
        )


def key_status(key: KeyRecord, now: datetime) -> KeyStatus:
    """What the gateway would do with the key now: the first reason to refuse it, else active."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.quarantined_at is not None:
        return "quarantined"
    return "active"


def _checked_key(fields: dict[str, Any]) -> dict[str, Any]:
    """Check what the store cannot: limits, model patterns, CIDRs, the IP window."""
    _check_limits(fields)
    if "max_tokens" in fields:
        _positive("max_tokens", fields["max_tokens"])
    if "ip_limit" in fields:
        _positive("ip_limit", fields["ip_limit"])
    if "models" in fields:
        fields["models"] = _names("models", fields["models"])
    if "ip_allow" in fields:
        fields["ip_allow"] = _names("ip_allow", fields["ip_allow"])
        for item in fields["ip_allow"]:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"ip_allow: {item!r} is not an IP address or CIDR range") from None
    window = fields.get("ip_window")
    if window is not None and not (isinstance(window, str) and _DURATION.fullmatch(window)):
        raise ValueError(f"ip_window is a duration such as 30m, 1h or 24h, got {window!r}")
    for flag in ("intercept_warmup", "log_bodies"):
        if flag in fields and not isinstance(fields[flag], bool):
            raise ValueError(f"{flag} is true or false, got {fields[flag]!r}")
    when = fields.get("expires_at")
    if when is not None and (when.tzinfo is None or when.utcoffset() is None):
        fields["expires_at"] = when.replace(tzinfo=UTC)  # a bare date or time is UTC, as everywhere here
    return fields


def _check_limits(fields: Mapping[str, Any]) -> None:
    for name in ("rpm", "tpm", "concurrency"):
        if name in fields:
            _positive(name, fields[name])
    windows = [budget.window for budget in fields.get("budgets", ())]
    twice = sorted({window for window in windows if windows.count(window) > 1})
    if twice:
        raise ValueError(f"budgets: more than one budget over the {twice[0]} window (one may hold usd and credits)")


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a whole number of at least 1 (clear it to remove the limit), got {value!r}")


def _names(field: str, items: Sequence[str]) -> tuple[str, ...]:
    if isinstance(items, str):
        raise ValueError(f"{field} takes a list of strings, not one string")
    names = tuple(item.strip() for item in items)
    if any(not name for name in names):
        raise ValueError(f"{field}: an entry is empty")
    return tuple(dict.fromkeys(names))  # repeated entries once, in their order


def _key_changes(fields: Mapping[str, Any]) -> KeyChanges:
    """The checked fields as the store's change set (their names are the store's)."""
    changes: KeyChanges = {}
    changes.update(fields)  # type: ignore[typeddict-item]  # keys checked against KeyUpdate above
    return changes
