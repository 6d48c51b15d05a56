"""Limits and budgets: a call is admitted while every one that applies has room, and pays
its real cost when it settles.

What applies to a call: the key's and its team's spend budgets (USD or credits, over rolling
5 hours, rolling 7 days, the calendar month and the key's lifetime), their requests and
tokens per minute and concurrent requests, and the model's own requests and tokens per
minute (for every caller, the master key included). All are checked and reserved in one
atomic ``acquire`` on the counters (``modelgate.counters``):

- a budget admits while it has *some* remainder, and the call reserves its worst case
  (input estimated from the body's size, ``max_tokens`` of output, at the serving model's
  price) capped at that remainder: concurrent calls can overspend a budget by at most one
  call's worst case, and a nearly spent budget still serves small calls;
- at settlement the reservation is replaced by the real cost (what the answer reported,
  also when the client left midway; nothing when the upstream failed before answering),
  tokens per minute by the real tokens (input, cache writes and output: cache reads are
  not counted, as Anthropic's own input limit does not count them).

After a restart, a key's and a team's budgets are restored from the ledger the first time
they are used (one query per budget in this process; with Redis, once for the fleet).
Only model calls count: catalogs, ``/v1/usage`` and token counting do not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from modelgate.accounting.cost import PriceBook
from modelgate.accounting.pricing import Price
from modelgate.counters import MONTH, TOTAL, Charge, Counters, Limit, Refusal, Window, window
from modelgate.counters.base import CONCURRENT, month_bounds
from modelgate.errors import InvalidRequest, LimitExceeded, RateLimitInfo
from modelgate.policy.auth import Principal
from modelgate.store import Budget, LedgerStore

PER_MINUTE = window("1m")
BUDGET_WINDOWS: dict[str, Window] = {"5h": window("5h"), "7d": window("7d"), "month": MONTH, "total": TOTAL}
#: The refusal code of each budget window: rolling windows free by themselves, the others do not.
BUDGET_CODES = {"5h": "rate_limit_5h", "7d": "rate_limit_7d", "month": "budget_exceeded", "total": "budget_exceeded"}
_BUDGET_LABELS = {"5h": "5h budget", "7d": "7d budget", "month": "month budget", "total": "lifetime budget"}
#: Output tokens assumed for a call that names no ``max_tokens`` and a model with no known limit.
DEFAULT_OUTPUT = 4096
#: Seconds a refused concurrent call is told to wait (a slot frees when another call ends).
CONCURRENCY_RETRY = 1.0


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose limits these are, for scope names and messages: a key, a team or a model."""

    kind: str  # "key", "team", "model"
    id: str
    name: str

    def scope(self, what: str) -> str:
        return f"{self.kind}:{self.id}:{what}"

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(slots=True)
class Lease:
    """What one admitted call reserved, to be settled at its real cost."""

    id: str
    price: Price
    #: Budget scopes: (scope, window, unit: "usd" or "credits").
    budgets: list[tuple[str, Window, str]] = field(default_factory=list)
    #: Tokens-per-minute scopes.
    tokens: list[str] = field(default_factory=list)


class _About(NamedTuple):
    """What a limit is, for the refusal's message and headers."""

    owner: Owner
    what: str  # "5h budget", "requests per minute", ...
    unit: str  # "usd", "credits", "requests", "tokens", "concurrent"


class Limiter:
    def __init__(
        self,
        counters: Counters,
        prices: PriceBook,
        ledger: LedgerStore | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = counters
        self.prices = prices
        self.ledger = ledger
        self.clock = clock
        self._seeded: set[str] = set()  # scopes
        self._seeded_owners: set[tuple[str, tuple[Budget, ...]]] = set()  # the fast check, per request

    # ------------------------------------------------------------------ admission

    @staticmethod
    def check_cap(principal: Principal | None, model_cap: int | None, max_tokens: int | None) -> None:
        """400 ``max_tokens_too_large`` above the key's or the model's cap."""
        if max_tokens is None:
            return
        key_cap = principal.key.max_tokens if principal is not None and principal.key is not None else None
        for cap, whose in ((key_cap, "this API key"), (model_cap, "this model")):
            if cap is not None and max_tokens > cap:
                raise InvalidRequest(
                    f"max_tokens: {max_tokens} is above {cap}, the most {whose} may ask for",
                    code="max_tokens_too_large",
                    param="max_tokens",
                    policy=True,
                )

    async def reserve(
        self,
        lease_id: str,
        principal: Principal | None,
        model: Owner,
        model_limits: tuple[int | None, int | None],
        price: Price,
        input_estimate: int,
        max_output: int,
    ) -> Lease | None:
        """Admit the call against every limit that applies, or raise :class:`LimitExceeded`."""
        now = self.clock()
        worst = price.worst_case(input_estimate, max_output)
        lease = Lease(lease_id, price)
        limits: list[Limit] = []
        about: dict[str, _About] = {}
        key = principal.key if principal is not None else None
        team = principal.team if principal is not None else None
        if key is not None:
            owner = Owner("key", key.id, key.name)
            await self._seed(owner, key.budgets, now)
            self._add(
                limits, about, lease, owner, key.budgets, (key.rpm, key.tpm, key.concurrency), worst, input_estimate
            )
        if team is not None:
            owner = Owner("team", team.id, team.name)
            await self._seed(owner, team.budgets, now)
            self._add(
                limits, about, lease, owner, team.budgets, (team.rpm, team.tpm, team.concurrency), worst, input_estimate
            )
        self._add(limits, about, lease, model, (), (*model_limits, None), worst, input_estimate)
        if not limits:
            return None
        refusal = await self.counters.acquire(lease_id, limits, now)
        if refusal is not None:
            raise self._refused(refusal, about[refusal.limit.scope], now)
        return lease

    def _add(
        self,
        limits: list[Limit],
        about: dict[str, _About],
        lease: Lease,
        owner: Owner,
        budgets: tuple[Budget, ...],
        rates: tuple[int | None, int | None, int | None],
        worst: float,
        input_estimate: int,
    ) -> None:
        for budget in budgets:
            win = BUDGET_WINDOWS[budget.window]
            code = BUDGET_CODES[budget.window]
            label = _BUDGET_LABELS[budget.window]
            if budget.usd is not None:
                scope = owner.scope(f"usd:{budget.window}")
                limits.append(Limit(scope, win, budget.usd, worst, code))
                about[scope] = _About(owner, label, "usd")
                lease.budgets.append((scope, win, "usd"))
            if budget.credits is not None:
                scope = owner.scope(f"credits:{budget.window}")
                limits.append(Limit(scope, win, budget.credits, self.prices.credits(worst), code))
                about[scope] = _About(owner, label, "credits")
                lease.budgets.append((scope, win, "credits"))
        rpm, tpm, concurrency = rates
        if rpm is not None:
            scope = owner.scope("rpm")
            limits.append(Limit(scope, PER_MINUTE, rpm, 1, "rate_limit_rpm"))
            about[scope] = _About(owner, "requests per minute", "requests")
        if tpm is not None:
            scope = owner.scope("tpm")
            limits.append(Limit(scope, PER_MINUTE, tpm, input_estimate, "rate_limit_tpm"))
            about[scope] = _About(owner, "tokens per minute", "tokens")
            lease.tokens.append(scope)
        if concurrency is not None:
            scope = owner.scope("concurrency")
            limits.append(Limit(scope, CONCURRENT, concurrency, 1, "concurrency_limit"))
            about[scope] = _About(owner, "concurrent requests", "concurrent")

    def _refused(self, refusal: Refusal, about: _About, now: float) -> LimitExceeded:
        limit = refusal.limit
        reset_at = now + refusal.retry_after if refusal.retry_after is not None else None
        if about.unit == "usd":
            amount = f"${limit.limit:,.2f} (${refusal.used:,.2f} used)"
        elif about.unit == "credits":
            amount = f"{limit.limit:,.2f} credits ({refusal.used:,.2f} used)"
        else:
            amount = f"{limit.limit:g}"
        if reset_at is not None:
            stamp = datetime.fromtimestamp(reset_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            when = f"capacity frees at {stamp} (in {_duration(refusal.retry_after or 0)})"
        elif about.unit == "concurrent":
            when = "a slot frees when one of its requests ends"
        else:
            when = "nothing will free it: an administrator must raise it"
        message = f"modelgate: {about.owner} reached its {about.what} of {amount}; {when}"
        retry_after = refusal.retry_after if about.unit != "concurrent" else CONCURRENCY_RETRY
        resource = about.unit if about.unit in ("requests", "tokens") else "spend"
        info = RateLimitInfo(resource, limit.limit, max(0.0, limit.limit - refusal.used), reset_at)
        return LimitExceeded(message, code=limit.code, retry_after=retry_after, info=info)

    # ------------------------------------------------------------------ settlement

    def charges(self, lease: Lease, cost: float, tokens: int) -> list[Charge]:
        """The real amounts that replace a lease's reservations."""
        credits = self.prices.credits(cost)
        out = [Charge(scope, win, cost if unit == "usd" else credits) for scope, win, unit in lease.budgets]
        out += [Charge(scope, PER_MINUTE, tokens) for scope in lease.tokens]
        return out

    async def settle(self, lease: Lease, cost: float, tokens: int) -> None:
        await self.counters.release(lease.id, self.charges(lease, cost, tokens), self.clock())

    # ------------------------------------------------------------------ restart

    async def _seed(self, owner: Owner, budgets: tuple[Budget, ...], now: float) -> None:
        """Restore an owner's budget windows from the ledger, once per scope and process
        (and, with Redis, once for all: the counters seed only a scope they have never seen)."""
        if self.ledger is None or (owner.id, budgets) in self._seeded_owners:
            return
        self._seeded_owners.add((owner.id, budgets))
        ids = {"key_id": owner.id} if owner.kind == "key" else {"team_id": owner.id}
        for budget in budgets:
            scopes = [
                (owner.scope(f"{unit}:{budget.window}"), unit)
                for unit, limit in (("usd", budget.usd), ("credits", budget.credits))
                if limit is not None and owner.scope(f"{unit}:{budget.window}") not in self._seeded
            ]
            if not scopes:
                continue
            win = BUDGET_WINDOWS[budget.window]
            entries: dict[str, list[tuple[float, float]]] = {"usd": [], "credits": []}
            if win.kind == "rolling":
                assert win.seconds is not None
                since = datetime.fromtimestamp(now - win.seconds, UTC)
                for b in await self.ledger.spend_buckets(since=since, bucket_seconds=60, **ids):
                    entries["usd"].append((float(b.start), b.cost_usd))
                    entries["credits"].append((float(b.start), b.credits))
            else:
                start = month_bounds(now)[0] if win.kind == "month" else 0
                spend = await self.ledger.spend(since=datetime.fromtimestamp(start, UTC), **ids)
                entries["usd"].append((float(start), spend.cost_usd))
                entries["credits"].append((float(start), spend.credits))
            for scope, unit in scopes:
                self._seeded.add(scope)
                await self.counters.seed(scope, win, [e for e in entries[unit] if e[1] > 0], now)


def _duration(seconds: float) -> str:
    """``3h12m``, ``45s``: how long until a limit frees, for people."""
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    text = "".join(parts)
    return text if text and not secs else text + f"{secs}s"
