"""The usage ledger: one row per request, written in batches, summed for budgets and reports.

The gateway settles each request into a :class:`LedgerRow` and a writer off
the hot path flushes them with :meth:`LedgerStore.insert_many`. Budgets never
read the ledger per request: :meth:`~LedgerStore.spend` and
:meth:`~LedgerStore.spend_buckets` seed the counters after a restart, and
:meth:`~LedgerStore.summary` feeds ``modelgate usage`` and the admin API;
:meth:`~LedgerStore.timeline`, :meth:`~LedgerStore.deployments` and
:meth:`~LedgerStore.recent` feed the portal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.analytics import LATENCY_EDGES, DeploymentTraffic, TimeBucket, Traffic
from modelgate.store.database import Database
from modelgate.store.records import LedgerRow, Spend, SpendBucket, UsageGroup, UsageGroupBy, require_aware
from modelgate.store.schema import endpoints, keys, ledger, teams

_FIELDS: Final = tuple(field.name for field in fields(LedgerRow))
_REST: Final = tuple(name for name in _FIELDS if name != "at")
_TOKEN_KINDS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")
#: A client's own hang-up: not counted as an error of the gateway or the upstream.
_CLIENT_CLOSED: Final = 499
_LAST_BIN: Final = len(LATENCY_EDGES)
_GROUP_COLUMNS: Final[Mapping[str, sa.Column[Any]]] = {
    "key": ledger.c.key_id,
    "team": ledger.c.team_id,
    "model": ledger.c.model,
    "served_model": ledger.c.served_model,
    "provider": ledger.c.provider,
    "endpoint": ledger.c.endpoint,
    "door": ledger.c.door,
    "endpoint_id": ledger.c.endpoint_id,
}


class LedgerStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._compiled: dict[str, tuple[str, Callable[[LedgerRow], tuple[Any, ...]]]] = {}

    @property
    def database(self) -> Database:
        """The database written to (the batched writer opens one transaction for several tables)."""
        return self._db

    async def insert_many(self, rows: Sequence[LedgerRow]) -> None:
        """Write a batch with the driver's own executemany, in one transaction.

        A row per request is the busiest write the gateway makes, so the statement is
        compiled once per dialect and the rows go to the driver as plain tuples: through
        SQLAlchemy's per-row parameter processing a row cost several times more CPU than the
        request that made it. The one column that needs converting, ``at``, is converted here
        as the schema's ``UTCDateTime`` does (naive UTC text on SQLite, as SQLAlchemy writes it).
        """
        if rows:
            async with self._db.write() as conn:
                await self.write(conn, rows)

    async def write(self, conn: AsyncConnection, rows: Sequence[LedgerRow]) -> None:
        """:meth:`insert_many` on a transaction of the caller's: the batched writer puts a
        batch's ledger rows and request records in one."""
        if not rows:
            return
        for row in rows:
            require_aware(row.at, "LedgerRow.at")
        sql, rest = self._insert(conn.dialect)
        when = _sqlite_time if conn.dialect.name == "sqlite" else _same
        values = [(when(row.at), *rest(row)) for row in rows]
        await conn.exec_driver_sql(sql, values)

    def _insert(self, dialect: sa.Dialect) -> tuple[str, Callable[[LedgerRow], tuple[Any, ...]]]:
        """The INSERT of a ledger row in ``dialect``'s own parameter style (``at`` first), and
        a getter of the other columns' values in the statement's order (one C call a row)."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            names = ("at", *_REST)
            columns, params = ", ".join(names), ", ".join(f":{name}" for name in names)
            statement = sa.text(f"INSERT INTO {ledger.name} ({columns}) VALUES ({params})")
            done = statement.compile(dialect=dialect)
            order = tuple(done.positiontup or ())
            if order[:1] != ("at",) or sorted(order) != sorted(_FIELDS):  # named parameters: not expected
                raise RuntimeError(f"unexpected parameter style {dialect.paramstyle!r} for the ledger insert")
            compiled = self._compiled[dialect.name] = (str(done), attrgetter(*order[1:]))
        return compiled

    async def spend(self, *, key_id: str | None = None, team_id: str | None = None, since: datetime) -> Spend:
        """A key's or a team's totals from ``since`` on."""
        tokens = ledger.c.input_tokens + ledger.c.output_tokens
        query = sa.select(
            sa.func.coalesce(sa.func.sum(ledger.c.cost_usd), 0.0),
            sa.func.coalesce(sa.func.sum(ledger.c.credits), 0.0),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(tokens), 0),
        ).where(_owner(key_id, team_id), ledger.c.at >= require_aware(since, "since"))
        async with self._db.read() as conn:
            cost, credits, requests, total = (await conn.execute(query)).one()
        return Spend(float(cost), float(credits), int(requests), int(total))

    async def spend_buckets(
        self,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        since: datetime,
        bucket_seconds: int = 60,
    ) -> list[SpendBucket]:
        """A key's or a team's spend from ``since`` on, per bucket of Unix time, oldest first.

        Buckets are aligned to multiples of ``bucket_seconds`` since the epoch (the
        first one may start before ``since``; it holds only rows from ``since`` on),
        and only buckets with rows are returned. Rolling-window counters rebuild
        their state from these after a restart.
        """
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1")
        width = sa.literal(int(bucket_seconds), sa.BigInteger)
        rows = (
            sa.select(
                ((_unix_seconds(self._db.dialect, ledger.c.at) // width) * width).label("start"),
                ledger.c.cost_usd,
                ledger.c.credits,
            )
            .where(_owner(key_id, team_id), ledger.c.at >= require_aware(since, "since"))
            .subquery()
        )
        # Grouped over a subquery: PostgreSQL would not see the select's and the GROUP BY's
        # expressions as one when each carries its own bound parameter.
        query = (
            sa.select(rows.c.start, sa.func.sum(rows.c.cost_usd), sa.func.sum(rows.c.credits))
            .group_by(rows.c.start)
            .order_by(rows.c.start)
        )
        async with self._db.read() as conn:
            result = await conn.execute(query)
            return [SpendBucket(int(start), float(cost), float(credits)) for start, cost, credits in result]

    async def summary(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
        group_by: UsageGroupBy = "key",
        endpoint_id: str | None = None,
    ) -> list[UsageGroup]:
        """Requests, tokens by kind, cost and credits per group in ``[since, until)``, costliest first;
        for one key, team or endpoint, or for everyone."""
        if group_by not in _GROUP_COLUMNS:
            raise ValueError(f"group_by must be one of {', '.join(_GROUP_COLUMNS)}, got {group_by!r}")
        column = _GROUP_COLUMNS[group_by]
        source: sa.FromClause = ledger
        groups: list[sa.ColumnElement[Any]] = [column]
        if group_by == "key":
            source = ledger.outerjoin(keys, keys.c.id == ledger.c.key_id)
            groups.append(keys.c.name)
        elif group_by == "team":
            source = ledger.outerjoin(teams, teams.c.id == ledger.c.team_id)
            groups.append(teams.c.name)
        elif group_by == "endpoint_id":
            source = ledger.outerjoin(endpoints, endpoints.c.id == ledger.c.endpoint_id)
            groups.append(endpoints.c.name)
        name = groups[1] if len(groups) > 1 else sa.null()
        cost = sa.func.sum(ledger.c.cost_usd)
        query = (
            sa.select(
                column,
                name,
                sa.func.count(),
                *(sa.func.sum(ledger.c[f"{kind}_tokens"]) for kind in _TOKEN_KINDS),
                cost,
                sa.func.sum(ledger.c.credits),
            )
            .select_from(source)
            .group_by(*groups)
            .order_by(cost.desc(), column)
        )
        if since is not None:
            query = query.where(ledger.c.at >= require_aware(since, "since"))
        if until is not None:
            query = query.where(ledger.c.at < require_aware(until, "until"))
        if key_id is not None:
            query = query.where(ledger.c.key_id == key_id)
        if team_id is not None:
            query = query.where(ledger.c.team_id == team_id)
        if endpoint_id is not None:
            query = query.where(ledger.c.endpoint_id == endpoint_id)
        async with self._db.read() as conn:
            result = await conn.execute(query)
            return [
                UsageGroup(
                    group=row[0],
                    name=row[1],
                    requests=int(row[2]),
                    input_tokens=int(row[3]),
                    output_tokens=int(row[4]),
                    cache_read_tokens=int(row[5]),
                    cache_write_tokens=int(row[6]),
                    reasoning_tokens=int(row[7]),
                    cost_usd=float(row[8]),
                    credits=float(row[9]),
                )
                for row in result
            ]

    async def timeline(
        self,
        *,
        since: datetime,
        until: datetime,
        bucket_seconds: int,
        key_id: str | None = None,
        endpoint_id: str | None = None,
    ) -> list[TimeBucket]:
        """Traffic in ``[since, until)`` per bucket of Unix time (aligned as in :meth:`spend_buckets`),
        oldest first, only buckets with rows; for one key, one endpoint (both: their intersection)
        or everyone. Each filter has its index, ``(key_id, at)`` and ``(endpoint_id, at)``."""
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1")
        width = sa.literal(int(bucket_seconds), sa.BigInteger)
        start = ((_unix_seconds(self._db.dialect, ledger.c.at) // width) * width).label("start")
        where = [ledger.c.at >= require_aware(since, "since"), ledger.c.at < require_aware(until, "until")]
        if key_id is not None:
            where.append(ledger.c.key_id == key_id)
        if endpoint_id is not None:
            where.append(ledger.c.endpoint_id == endpoint_id)
        buckets: dict[int, Traffic] = {}
        for row in await self._binned([start], where):
            buckets.setdefault(int(row[0]), Traffic()).add(*_traffic_row(row[1:]))
        return [TimeBucket(datetime.fromtimestamp(s, UTC), traffic) for s, traffic in sorted(buckets.items())]

    async def deployments(self, *, since: datetime, until: datetime | None = None) -> list[DeploymentTraffic]:
        """Traffic per provider and upstream model in ``[since, until)`` (calls no upstream served are left out)."""
        where = [ledger.c.at >= require_aware(since, "since"), ledger.c.provider.is_not(None)]
        if until is not None:
            where.append(ledger.c.at < require_aware(until, "until"))
        groups: dict[tuple[str, str], Traffic] = {}
        for row in await self._binned([ledger.c.provider, ledger.c.served_model], where):
            groups.setdefault((str(row[0]), str(row[1] or "")), Traffic()).add(*_traffic_row(row[2:]))
        return [DeploymentTraffic(p, m, traffic) for (p, m), traffic in sorted(groups.items())]

    async def _binned(
        self, group: Sequence[sa.ColumnElement[Any]], where: Sequence[sa.ColumnElement[bool]]
    ) -> list[tuple[Any, ...]]:
        """Rows of ``group``'s values, latency bin, requests, errors, cost and tokens: at most one
        row per group and bin, however many requests (the latencies are never read one by one)."""
        status = ledger.c.status
        failed = sa.and_(status >= 400, status != _CLIENT_CLOSED)
        rows = (
            sa.select(
                *(column.label(f"g{i}") for i, column in enumerate(group)),
                sa.case(
                    *((ledger.c.latency_ms < edge, i) for i, edge in enumerate(LATENCY_EDGES)), else_=_LAST_BIN
                ).label("bin"),
                sa.case((failed, 1), else_=0).label("failed"),
                ledger.c.cost_usd,
                (ledger.c.input_tokens + ledger.c.output_tokens).label("tokens"),
            )
            .where(*where)
            .subquery()
        )
        # Grouped over a subquery, as in spend_buckets: PostgreSQL would not match the bound
        # parameters of the select's expressions with the GROUP BY's.
        keys = [*(rows.c[f"g{i}"] for i in range(len(group))), rows.c.bin]
        query = sa.select(
            *keys,
            sa.func.count(),
            sa.func.sum(rows.c.failed),
            sa.func.sum(rows.c.cost_usd),
            sa.func.sum(rows.c.tokens),
        ).group_by(*keys)
        async with self._db.read() as conn:
            return [tuple(row) for row in await conn.execute(query)]

    async def recent(
        self, *, key_id: str | None = None, endpoint_id: str | None = None, limit: int = 20
    ) -> list[LedgerRow]:
        """The newest rows, newest first; for one key, one endpoint or everyone."""
        query = sa.select(*(ledger.c[name] for name in _FIELDS)).order_by(ledger.c.at.desc(), ledger.c.id.desc())
        if key_id is not None:
            query = query.where(ledger.c.key_id == key_id)
        if endpoint_id is not None:
            query = query.where(ledger.c.endpoint_id == endpoint_id)
        async with self._db.read() as conn:
            result = await conn.execute(query.limit(limit))
            return [LedgerRow(**row._asdict()) for row in result]

    async def oldest(
        self, *, key_id: str | None = None, team_id: str | None = None, since: datetime
    ) -> datetime | None:
        """The time of the oldest billed row (cost above zero) from ``since`` on: in a rolling
        window, the moment part of the spend leaves it and capacity frees."""
        query = sa.select(sa.func.min(ledger.c.at)).where(
            _owner(key_id, team_id), ledger.c.at >= require_aware(since, "since"), ledger.c.cost_usd > 0
        )
        async with self._db.read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return value if isinstance(value, datetime) else None


def _traffic_row(row: Sequence[Any]) -> tuple[int, int, int, float, int]:
    """A ``_binned`` row's bin, requests, errors, cost and tokens (sums are None on no rows, numeric on PG)."""
    bin, requests, errors, cost, tokens = row
    return int(bin), int(requests), int(errors or 0), float(cost or 0.0), int(tokens or 0)


def _owner(key_id: str | None, team_id: str | None) -> sa.ColumnElement[bool]:
    if (key_id is None) == (team_id is None):
        raise ValueError("give exactly one of key_id and team_id")
    return ledger.c.key_id == key_id if key_id is not None else ledger.c.team_id == team_id


def _unix_seconds(dialect: str, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    """Whole Unix seconds of a timestamp: SQLite keeps naive UTC text, PostgreSQL a timestamptz."""
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def _sqlite_time(at: datetime) -> str:
    """``at`` as SQLAlchemy stores a naive UTC ``DateTime`` in SQLite (``2026-12-03 20:49:00.000000``)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(at: datetime) -> datetime:
    return at
