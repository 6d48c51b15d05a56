"""The request log's reads with ten million records, on the local PostgreSQL.

    .venv/bin/python bench/request_log_query.py                  # 10M rows, ~1000 keys, 30 days
    .venv/bin/python bench/request_log_query.py --rows 1000000   # quicker

A fresh schema is migrated (the gateway's own tables and indexes), filled server-side with
``INSERT … SELECT generate_series`` (in chunks, the ``requests`` indexes dropped meanwhile and
built after, as a bulk load does), ANALYZEd, then the reads the admin API and the portal make
are timed through :class:`~modelgate.store.RequestStore` (median of ``--runs``, after one
warm-up run each): the last hour of one key, its next page, a whole day of one key's
sessions, the newest page of everything, one request by the gateway's id and by the upstream's
(the one a passthrough client saw). The schema is dropped at the end.

Rows are spread over 30 days at a steady rate, over ``--keys`` keys with a skew (the busiest
key makes ~3 % of the traffic, as one CI bot or one heavy user does), sessions of a key per
hour, a few models, 5 % errors.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from modelgate.store import Database, RequestStore, upgrade_database
from modelgate.store.schema import requests

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 1_000_000
ATTEMPTS = (
    '[{"provider":"anth","model":"claude-sonnet-4-6","key_id":"anth#0","passthrough":true,"status":200,'
    '"latency_ms":812,"error_type":null,"error_message":null,"upstream_request_id":"req_011C"}]'
)

FILL = """
INSERT INTO requests (request_id, at, key_id, team_id, endpoint_id, session_id, door, endpoint, model,
    served_model, provider, stream, status, error_type, error_message, stop_reason, latency_ms, ttft_ms,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd,
    tool_calls, user_agent, client_ip, attempts, upstream_request_id)
SELECT
    'req_' || substr(md5(g::text), 1, 24),
    at,
    'key_' || k,
    'team_' || (k % 50),
    CASE WHEN k % 10 = 0 THEN 'ep_' || (k % 7) END,
    's_' || k || '_' || floor(extract(epoch FROM at) / 3600)::bigint,
    (ARRAY['anthropic', 'openai_chat', 'openai_responses', 'gemini'])[1 + k % 4],
    'messages',
    m,
    m,
    'anth',
    g % 3 <> 0,
    CASE WHEN g % 20 = 0 THEN 529 ELSE 200 END,
    CASE WHEN g % 20 = 0 THEN 'overloaded' END,
    CASE WHEN g % 20 = 0 THEN 'upstream anth is overloaded' END,
    'end_turn',
    200 + (g * 7919) % 20000,
    100 + (g * 104729) % 2000,
    1000 + (g * 31) % 50000,
    (g * 17) % 4000,
    (g * 13) % 30000,
    0,
    0,
    ((g * 37) % 1000) / 10000.0,
    (g % 5),
    'claude-cli/2.1.330 (external, cli)',
    '10.0.' || (k % 256) || '.' || (g % 256),
    CAST(:attempts AS json),
    'req_011C' || substr(md5('upstream' || g::text), 1, 24)
FROM (
    SELECT
        g,
        now() - interval '30 days' + (g * (interval '30 days' / CAST(:total AS bigint))) AS at,
        floor(power(random(), 2) * CAST(:keys AS int))::int AS k,
        (ARRAY['claude-sonnet-4-6', 'claude-haiku-4-5', 'gpt-5-codex', 'gemini-2.5-pro'])[1 + (g % 4)] AS m
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
) AS s
"""


async def fill(db: Database, rows: int, keys: int) -> float:
    started = time.perf_counter()
    async with db.write() as conn:
        for index in requests.indexes:
            await conn.execute(sa.text(f"DROP INDEX {index.name}"))
    for start in range(0, rows, CHUNK):
        stop = min(rows, start + CHUNK) - 1
        async with db.write() as conn:
            await conn.execute(
                sa.text(FILL), {"start": start, "stop": stop, "total": rows, "keys": keys, "attempts": ATTEMPTS}
            )
        print(f"  {stop + 1:>11,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
    async with db.write() as conn:
        await conn.execute(sa.text("SET maintenance_work_mem = '512MB'"))
        for index in requests.indexes:
            await conn.run_sync(lambda sync, index=index: index.create(sync))
        await conn.execute(sa.text("SET maintenance_work_mem = DEFAULT"))
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE requests"))
    return time.perf_counter() - started


async def timed(runs: int, read: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """The median milliseconds of ``runs`` calls (after one to warm up), and what the last returned."""
    result = await read()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    schema = f"mg_bench_{secrets.token_hex(4)}"
    async with Database(PG_URL) as admin:
        async with admin.write() as conn:
            await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        try:
            async with Database(PG_URL, schema=schema) as db:
                await upgrade_database(db)
                print(f"filling {args.rows:,} records over {args.keys} keys and 30 days (schema {schema})")
                took = await fill(db, args.rows, args.keys)
                print(f"filled, indexed and analyzed in {took:.0f} s")
                await report(db, args.runs)
        finally:
            async with admin.write() as conn:
                await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


async def report(db: Database, runs: int) -> None:
    store = RequestStore(db)
    now = datetime.now(UTC)
    async with db.read() as conn:
        busiest = (
            await conn.execute(
                sa.text(
                    "SELECT key_id FROM requests WHERE at >= :since GROUP BY key_id ORDER BY count(*) DESC LIMIT 1"
                ),
                {"since": now - timedelta(hours=1)},
            )
        ).scalar_one()
        total = (await conn.execute(sa.text("SELECT count(*) FROM requests"))).scalar_one()
    typical = "key_500"
    print(f"\n{total:,} records; median of {runs} runs, milliseconds (through RequestStore, asyncpg)")
    hour = now - timedelta(hours=1)
    rows: list[tuple[str, float, int]] = []
    for name, key in (("typical key", typical), ("busiest key", busiest)):
        ms, page = await timed(runs, lambda key=key: store.list(key_id=key, since=hour, limit=50))
        rows.append((f"last hour of one key ({name}), 50 newest", ms, len(page)))
        if page:
            ms, nxt = await timed(runs, lambda key=key, page=page: store.list(key_id=key, before=page[-1].id, limit=50))
            rows.append((f"  its next page (keyset, {name})", ms, len(nxt)))
        ms, sessions = await timed(runs, lambda key=key: store.sessions(key_id=key, since=now - timedelta(days=1)))
        rows.append((f"sessions of one key, last 24 h ({name})", ms, len(sessions)))
    ms, newest = await timed(runs, lambda: store.list(limit=50))
    rows.append(("newest 50 of all keys", ms, len(newest)))
    ms, errors = await timed(runs, lambda: store.list(errors=True, since=hour, limit=50))
    rows.append(("newest 50 errors, last hour", ms, len(errors)))
    ms, one = await timed(runs, lambda: store.get(newest[-1].request_id))
    rows.append(("one request by id", ms, 1 if one else 0))
    upstream_id = newest[-1].upstream_request_id or ""
    ms, one = await timed(runs, lambda: store.get(upstream_id))
    rows.append(("one request by the upstream's id", ms, 1 if one else 0))
    ms, found = await timed(runs, lambda: store.list(request_id=upstream_id, limit=50))
    rows.append(("  the list filtered by it", ms, len(found)))
    ms, all_sessions = await timed(runs, lambda: store.sessions(since=hour, limit=50))
    rows.append(("sessions of all keys, last hour, 50", ms, len(all_sessions)))
    width = max(len(r[0]) for r in rows)
    for name, ms, n in rows:
        print(f"  {name:<{width}}  {ms:8.2f} ms  ({n} rows)")


if __name__ == "__main__":
    asyncio.run(main())
