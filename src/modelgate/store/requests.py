"""The request log: one record per request, listed newest first, grouped into agent sessions.

The settler builds a :class:`RequestRecord` per request and the batched writer
(``accounting.ledger``) writes it in the same transaction as the request's ledger row,
with :meth:`RequestStore.write` (and :meth:`RequestStore.write_bodies` for the keys
and endpoints that opted in to bodies). Reads serve the admin API and the portal:
:meth:`~RequestStore.list` with keyset pagination on ``(at, id)`` so a page costs the
same at the millionth row as at the first, :meth:`~RequestStore.sessions` and
:meth:`~RequestStore.session`. Unlike the ledger, the log is pruned (:meth:`~RequestStore.prune`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.analytics import LATENCY_EDGES, LatencyHistogram
from modelgate.store.database import Database
from modelgate.store.ledger import _unix_seconds as unix_seconds
from modelgate.store.records import BodyRecord, RequestRecord, SessionSummary, require_aware
from modelgate.store.schema import request_bodies, requests

#: Columns of ``requests`` that a record carries as they are (``at`` and ``attempts`` are converted).
_PLAIN: Final = tuple(f.name for f in fields(RequestRecord) if f.name not in ("at", "attempts", "id", "body"))
_BODY_PLAIN: Final = ("request_id", "request", "response", "truncated")
StatusClass = Literal["2xx", "3xx", "4xx", "5xx"]
_CLASSES: Final[dict[str, tuple[int, int]]] = {
    "2xx": (200, 300),
    "3xx": (300, 400),
    "4xx": (400, 500),
    "5xx": (500, 600),
}
#: A page of records (an alias: ``RequestStore.list`` shadows the builtin in the class's annotations).
Records = list[RequestRecord]
#: Time to first token per time bucket: (the bucket's start, a histogram over ``LATENCY_EDGES``).
TtftBuckets = list[tuple[datetime, LatencyHistogram]]
#: Rows deleted per statement (and per transaction) when pruning: never one giant delete.
PRUNE_BATCH: Final = 5_000


class RequestStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._compiled: dict[tuple[str, str], tuple[str, Callable[[Any], tuple[Any, ...]]]] = {}

    # ------------------------------------------------------------------ writes

    async def insert_many(self, records: Sequence[RequestRecord]) -> None:
        """Write a batch of records in one transaction (the writer uses :meth:`write` inside its own)."""
        if records:
            async with self._db.write() as conn:
                await self.write(conn, records)

    async def insert_bodies(self, bodies: Sequence[BodyRecord]) -> None:
        if bodies:
            async with self._db.write() as conn:
                await self.write_bodies(conn, bodies)

    async def write(self, conn: AsyncConnection, records: Sequence[RequestRecord]) -> None:
        """Write ``records`` on ``conn`` with the driver's own executemany, as the ledger does
        (``LedgerStore.write``): compiled once per dialect, the rows as plain tuples, ``at``
        converted as ``UTCDateTime`` would and the attempts serialized with orjson."""
        if not records:
            return
        for record in records:
            require_aware(record.at, "RequestRecord.at")
        sql, rest = self._insert(conn.dialect, requests, ("at", "attempts"), _PLAIN)
        when = _sqlite_time if conn.dialect.name == "sqlite" else _same
        dumps = orjson.dumps
        values = [(when(r.at), dumps(r.attempts).decode(), *rest(r)) for r in records]
        await conn.exec_driver_sql(sql, values)

    async def write_bodies(self, conn: AsyncConnection, bodies: Sequence[BodyRecord]) -> None:
        if not bodies:
            return
        for body in bodies:
            require_aware(body.at, "BodyRecord.at")
        sql, rest = self._insert(conn.dialect, request_bodies, ("at",), _BODY_PLAIN)
        when = _sqlite_time if conn.dialect.name == "sqlite" else _same
        await conn.exec_driver_sql(sql, [(when(b.at), *rest(b)) for b in bodies])

    def _insert(
        self, dialect: sa.Dialect, table: sa.Table, converted: tuple[str, ...], plain: tuple[str, ...]
    ) -> tuple[str, Callable[[Any], tuple[Any, ...]]]:
        """The INSERT into ``table`` in the dialect's parameter style, the ``converted`` columns
        first, and a getter of the ``plain`` columns' values in the statement's order."""
        compiled = self._compiled.get((dialect.name, table.name))
        if compiled is None:
            names = (*converted, *plain)
            columns, params = ", ".join(names), ", ".join(f":{name}" for name in names)
            done = sa.text(f"INSERT INTO {table.name} ({columns}) VALUES ({params})").compile(dialect=dialect)
            order = tuple(done.positiontup or ())
            if order[: len(converted)] != converted or sorted(order) != sorted(names):
                raise RuntimeError(f"unexpected parameter style {dialect.paramstyle!r} for the {table.name} insert")
            rest = order[len(converted) :]
            getter = attrgetter(*rest)
            row: Callable[[Any], tuple[Any, ...]] = getter if len(rest) > 1 else (lambda o: (getter(o),))
            compiled = self._compiled[(dialect.name, table.name)] = (str(done), row)
        return compiled

    # ------------------------------------------------------------------ reads

    async def list(
        self,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        endpoint_id: str | None = None,
        session_id: str | None = None,
        request_id: str | None = None,
        model: str | None = None,
        status: StatusClass | None = None,
        errors: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> Records:
        """Records newest first (by time, then id), filtered; ``before`` is the ``id`` of the last
        record of the previous page. ``request_id`` matches the gateway's request id or the
        upstream's (see :meth:`get`); ``model`` matches the model asked or the one that served;
        ``errors`` keeps failed requests only (status 400 and up, or an error recorded)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        c = requests.c
        query = sa.select(requests).order_by(c.at.desc(), c.id.desc()).limit(limit)
        for column, value in ((c.key_id, key_id), (c.team_id, team_id), (c.endpoint_id, endpoint_id)):
            if value is not None:
                query = query.where(column == value)
        if session_id is not None:
            query = query.where(c.session_id == session_id)
        if request_id is not None:
            query = query.where(_either_id(request_id))
        if model is not None:
            query = query.where(sa.or_(c.model == model, c.served_model == model))
        if status is not None:
            if status not in _CLASSES:
                raise ValueError(f"status must be one of {', '.join(_CLASSES)}, got {status!r}")
            low, high = _CLASSES[status]
            query = query.where(c.status >= low, c.status < high)
        if errors:
            query = query.where(sa.or_(c.status >= 400, c.error_type.is_not(None)))
        if since is not None:
            query = query.where(c.at >= require_aware(since, "since"))
        if until is not None:
            query = query.where(c.at < require_aware(until, "until"))
        if before is not None:
            # Keyset on (at, id): the cursor row's time, found once (an InitPlan), bounds the
            # index range on its own; the id breaks ties between records of the same instant.
            cursor = sa.select(c.at).where(c.id == before).scalar_subquery()
            query = query.where(c.at <= cursor, sa.or_(c.at < cursor, c.id < before))
        async with self._db.read() as conn:
            return [_record(row) for row in (await conn.execute(query)).mappings()]

    async def get(self, ref: str) -> RequestRecord | None:
        """One request's record, with its bodies when they were stored, found by the gateway's
        request id (``req_…``) or by the upstream's.

        On a passthrough answer the client sees the upstream's id (``request-id`` /
        ``x-request-id``), and that is the id a user reports. The indexed column holds the last
        attempt's (the one that served, or the last that failed): an earlier, retried attempt's
        id never reached the client, since only the answer's headers do, so it is not looked up
        (it stays in ``attempts``). Should both match, the gateway's id wins; should one upstream
        id name several records (an upstream that repeats ids), the first written."""
        c = requests.c
        own = sa.case((c.request_id == ref, 0), else_=1)
        query = sa.select(requests).where(_either_id(ref)).order_by(own, c.id).limit(1)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            record = _record(row)
            bodies = sa.select(request_bodies).where(request_bodies.c.request_id == record.request_id)
            body = (await conn.execute(bodies)).mappings().first()
        if body is not None:
            record.body = BodyRecord(
                request_id=body["request_id"],
                at=body["at"],
                request=body["request"],
                response=body["response"],
                truncated=bool(body["truncated"]),
            )
        return record

    async def sessions(
        self,
        *,
        key_id: str | None = None,
        endpoint_id: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
        limit: int = 50,
    ) -> Sequence[SessionSummary]:
        """Agent sessions (records grouped by client session id and key), the latest active first.

        ``since`` counts only the requests from then on; ``before`` pages: the sessions whose
        last request came before it (the ``last_at`` of the previous page's last session)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        c = requests.c
        last = sa.func.max(c.at)
        failed = sa.case((sa.or_(c.status >= 400, c.error_type.is_not(None)), 1), else_=0)
        models = (
            sa.func.group_concat(c.model.distinct())
            if self._db.dialect == "sqlite"
            else sa.func.string_agg(c.model.distinct(), sa.literal_column("','"))
        )
        query = (
            sa.select(
                c.session_id,
                c.key_id,
                sa.func.min(c.at),
                last,
                sa.func.count(),
                sa.func.sum(c.cost_usd),
                sa.func.sum(c.input_tokens),
                sa.func.sum(c.output_tokens),
                sa.func.sum(c.cache_read_tokens),
                sa.func.sum(c.cache_write_tokens),
                sa.func.sum(c.tool_calls),
                sa.func.sum(failed),
                models,
            )
            .where(c.session_id.is_not(None))
            .group_by(c.session_id, c.key_id)
            .order_by(last.desc(), c.session_id)
            .limit(limit)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if endpoint_id is not None:
            query = query.where(c.endpoint_id == endpoint_id)
        if since is not None:
            query = query.where(c.at >= require_aware(since, "since"))
        if before is not None:
            query = query.having(last < require_aware(before, "before"))
        async with self._db.read() as conn:
            result = await conn.execute(query)
            return [
                SessionSummary(
                    session_id=row[0],
                    key_id=row[1],
                    first_at=_aware(row[2]),
                    last_at=_aware(row[3]),
                    requests=int(row[4]),
                    cost_usd=float(row[5] or 0.0),
                    input_tokens=int(row[6] or 0),
                    output_tokens=int(row[7] or 0),
                    cache_read_tokens=int(row[8] or 0),
                    cache_write_tokens=int(row[9] or 0),
                    tool_calls=int(row[10] or 0),
                    errors=int(row[11] or 0),
                    models=tuple(sorted(m for m in (row[12] or "").split(",") if m)),
                )
                for row in result
            ]

    async def session(self, session_id: str, *, key_id: str | None = None, limit: int = 1000) -> Records:
        """The requests of one session, in order (the first ``limit``)."""
        c = requests.c
        query = sa.select(requests).where(c.session_id == session_id).order_by(c.at, c.id).limit(limit)
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        async with self._db.read() as conn:
            return [_record(row) for row in (await conn.execute(query)).mappings()]

    async def ttft_timeline(
        self,
        *,
        since: datetime,
        until: datetime,
        bucket_seconds: int,
        key_id: str | None = None,
        endpoint_id: str | None = None,
    ) -> TtftBuckets:
        """Time to first token of the streams in ``[since, until)`` per bucket of Unix time (aligned
        as the ledger's ``timeline``), oldest first, only buckets with streams: a histogram over
        ``LATENCY_EDGES`` each, so at most one row per bucket and bin leaves the database; for
        everyone, one key or one per-application endpoint."""
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1")
        c = requests.c
        width = sa.literal(int(bucket_seconds), sa.BigInteger)
        where = [
            c.at >= require_aware(since, "since"),
            c.at < require_aware(until, "until"),
            c.stream.is_(True),
            c.ttft_ms.is_not(None),
        ]
        if key_id is not None:
            where.append(c.key_id == key_id)
        if endpoint_id is not None:
            where.append(c.endpoint_id == endpoint_id)
        last = len(LATENCY_EDGES)
        rows = (
            sa.select(
                ((unix_seconds(self._db.dialect, c.at) // width) * width).label("start"),
                sa.case(*((c.ttft_ms < edge, i) for i, edge in enumerate(LATENCY_EDGES)), else_=last).label("bin"),
            )
            .where(*where)
            .subquery()
        )
        # Grouped over a subquery, as the ledger's reads: PostgreSQL would not match the bound
        # parameters of the select's expressions with the GROUP BY's.
        query = sa.select(rows.c.start, rows.c.bin, sa.func.count()).group_by(rows.c.start, rows.c.bin)
        buckets: dict[int, LatencyHistogram] = {}
        async with self._db.read() as conn:
            for start, bin, count in await conn.execute(query):
                buckets.setdefault(int(start), LatencyHistogram()).add(int(bin), int(count))
        return [(datetime.fromtimestamp(s, UTC), histogram) for s, histogram in sorted(buckets.items())]

    async def user_agents(self, session_ids: Sequence[str]) -> dict[tuple[str, str | None], str]:
        """A user agent seen in each of these sessions, by (session id, key id): the client that drove it."""
        if not session_ids:
            return {}
        c = requests.c
        query = (
            sa.select(c.session_id, c.key_id, sa.func.max(c.user_agent))
            .where(c.session_id.in_(sorted(set(session_ids))), c.user_agent.is_not(None))
            .group_by(c.session_id, c.key_id)
        )
        async with self._db.read() as conn:
            return {(str(row[0]), row[1]): str(row[2]) for row in await conn.execute(query) if row[2] is not None}

    # ------------------------------------------------------------------ pruning

    async def prune(self, before: datetime, batch: int = PRUNE_BATCH) -> int:
        """Delete the records older than ``before`` (and their bodies), ``batch`` rows per
        transaction so that neither a lock nor the WAL grows with the backlog; the count deleted."""
        deleted = await self._prune(requests, requests.c.id, requests.c.at, before, batch)
        await self.prune_bodies(before, batch)
        return deleted

    async def prune_bodies(self, before: datetime, batch: int = PRUNE_BATCH) -> int:
        """Delete the bodies older than ``before``, in batches; the count deleted."""
        return await self._prune(request_bodies, request_bodies.c.request_id, request_bodies.c.at, before, batch)

    async def _prune(
        self, table: sa.Table, key: sa.Column[Any], at: sa.Column[datetime], before: datetime, batch: int
    ) -> int:
        require_aware(before, "before")
        oldest = sa.select(key).where(at < before).order_by(at).limit(batch).scalar_subquery()
        statement = table.delete().where(key.in_(oldest))
        total = 0
        while True:
            async with self._db.write() as conn:
                count = (await conn.execute(statement)).rowcount
            total += count
            if count < batch:
                return total


def _either_id(ref: str) -> sa.ColumnElement[bool]:
    """The records whose gateway request id or (last attempt's) upstream request id is ``ref``:
    an OR over two indexed columns, which both databases answer with the two indexes."""
    c = requests.c
    return sa.or_(c.request_id == ref, c.upstream_request_id == ref)


def _record(row: Any) -> RequestRecord:
    values = dict(row)
    values["stream"] = bool(values["stream"])
    attempts = values["attempts"]
    if isinstance(attempts, (str, bytes)):  # a driver that hands JSON back as text
        values["attempts"] = orjson.loads(attempts)
    return RequestRecord(**values)


def _aware(value: Any) -> datetime:
    """An aggregate's time: SQLite hands back the stored text, PostgreSQL a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_time(at: datetime) -> str:
    """``at`` as SQLAlchemy stores a naive UTC ``DateTime`` in SQLite (as the ledger writes it)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(at: datetime) -> datetime:
    return at
