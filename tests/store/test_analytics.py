"""The ledger's reads for the portal, on SQLite and PostgreSQL: traffic per time bucket and per
deployment (latency as a histogram), the newest rows, the oldest billed row; and the percentiles
computed from a histogram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelgate.store import Database, LedgerStore
from modelgate.store.analytics import BINS, LATENCY_EDGES, LatencyHistogram, Traffic, bin_of, total
from tests.store.conftest import T0
from tests.store.test_ledger import row

HOUR = 3600


@pytest.fixture
def ledger(db: Database) -> LedgerStore:
    return LedgerStore(db)


def test_bins_and_percentiles() -> None:
    assert [bin_of(ms) for ms in (0, 4, 5, 99, 100, 599_999, 600_000, 10**9)] == [0, 0, 1, 8, 9, 32, 33, 33]
    assert BINS == len(LATENCY_EDGES) + 1 == 34
    histogram = LatencyHistogram()
    assert histogram.percentile(0.5) is None
    for ms, count in ((120, 50), (800, 45), (3_500, 5)):
        histogram.add(bin_of(ms), count)
    assert histogram.total == 100
    assert histogram.percentile(0.5) == 150.0  # the whole first half sits in [100, 150): its top
    assert histogram.percentile(0.25) == 125.0  # half-way through that bin
    assert histogram.percentile(0.95) == 1000.0  # the 95th is the last of [750, 1000)
    assert histogram.percentile(0.99) == 3800.0  # four fifths into [3000, 4000)
    slow = LatencyHistogram()
    slow.add(bin_of(700_000), 3)
    assert slow.percentile(0.5) == 600_000.0  # above the last edge: its floor


def test_traffic_adds_up() -> None:
    a, b = Traffic(), Traffic()
    a.add(3, 4, 1, 0.5, 100)
    b.add(3, 2, 0, 0.25, 50)
    b.add(20, 2, 2, 0.0, 0)
    both = total([a, b])
    assert (both.requests, both.errors, both.cost_usd, both.tokens) == (8, 3, 0.75, 150)
    assert both.error_rate == 3 / 8 and Traffic().error_rate == 0.0
    assert both.latency.counts[3] == 6 and both.latency.counts[20] == 2 and both.latency.total == 8


async def test_timeline_buckets_traffic_and_latency(ledger: LedgerStore) -> None:
    await ledger.insert_many(
        [
            row(-1),  # before since
            row(0, latency_ms=120),
            row(60, latency_ms=130, status=502, cost_usd=0.0),
            row(120, latency_ms=3_500, status=499),  # the client hung up: not an error
            row(HOUR + 5, key_id="key_b", latency_ms=40, status=429),
            row(3 * HOUR, latency_ms=900),  # at until: outside
        ]
    )
    buckets = await ledger.timeline(since=T0, until=T0 + timedelta(hours=3), bucket_seconds=HOUR)
    assert [b.start for b in buckets] == [T0, T0 + timedelta(hours=1)]
    first, second = (b.traffic for b in buckets)
    assert (first.requests, first.errors, first.cost_usd, first.tokens) == (3, 1, 0.5, 330)
    assert first.latency.counts[bin_of(120)] == 2 and first.latency.counts[bin_of(3_500)] == 1
    assert (second.requests, second.errors, second.cost_usd) == (1, 1, 0.25)
    assert second.latency.percentile(0.5) == 40.0 + 10 * 0.5  # half of one request in [40, 50)
    mine = await ledger.timeline(since=T0, until=T0 + timedelta(hours=3), bucket_seconds=HOUR, key_id="key_b")
    assert [(b.start, b.traffic.requests) for b in mine] == [(T0 + timedelta(hours=1), 1)]
    days = await ledger.timeline(since=T0 - timedelta(days=1), until=T0 + timedelta(days=1), bucket_seconds=86_400)
    midnight = T0.replace(hour=0)
    assert [(b.start, b.traffic.requests) for b in days] == [(midnight, 6)]
    assert days[0].start.tzinfo is UTC
    with pytest.raises(ValueError, match="at least 1"):
        await ledger.timeline(since=T0, until=T0, bucket_seconds=0)


async def test_deployments_group_by_provider_and_upstream_model(ledger: LedgerStore) -> None:
    await ledger.insert_many(
        [
            row(0, latency_ms=200),
            row(1, latency_ms=400, status=500),
            row(2, provider="oai", served_model="gpt-4o", latency_ms=90),
            row(3, provider=None, served_model=None, status=401),  # refused before any upstream
            row(-10, provider="gem", served_model="gemini-2.5-flash"),  # before since
        ]
    )
    deployments = await ledger.deployments(since=T0)
    assert [(d.provider, d.served_model, d.traffic.requests, d.traffic.errors) for d in deployments] == [
        ("anth", "claude-sonnet-4-6", 2, 1),
        ("oai", "gpt-4o", 1, 0),
    ]
    assert deployments[0].traffic.latency.percentile(0.5) == 300.0  # the top of [200, 300)
    assert await ledger.deployments(since=T0, until=T0 + timedelta(seconds=1)) != deployments
    assert len(await ledger.deployments(since=T0, until=T0 + timedelta(seconds=1))) == 1


async def test_recent_and_oldest(ledger: LedgerStore) -> None:
    await ledger.insert_many([row(n, request_id=f"req_{n}", cost_usd=0.0 if n == 0 else 0.1) for n in range(5)])
    await ledger.insert_many([row(10, key_id="key_b", request_id="req_b")])
    newest = await ledger.recent(key_id="key_a", limit=3)
    assert [r.request_id for r in newest] == ["req_4", "req_3", "req_2"]
    assert newest[0].at == T0 + timedelta(seconds=4) and newest[0].served_model == "claude-sonnet-4-6"
    assert [r.request_id for r in await ledger.recent(limit=2)] == ["req_b", "req_4"]
    assert await ledger.oldest(key_id="key_a", since=T0) == T0 + timedelta(seconds=1)  # the free row skipped
    assert await ledger.oldest(team_id="team_x", since=T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=3)
    assert await ledger.oldest(key_id="key_z", since=T0) is None
    assert isinstance(await ledger.oldest(key_id="key_b", since=datetime(2000, 1, 1, tzinfo=UTC)), datetime)


async def test_the_portal_reads_filter_by_endpoint(ledger: LedgerStore) -> None:
    await ledger.insert_many(
        [
            row(0, endpoint_id="ep_billing", request_id="req_a", latency_ms=120),
            row(10, endpoint_id="ep_billing", key_id="key_b", request_id="req_b", status=500, cost_usd=0.0),
            row(HOUR + 5, endpoint_id="ep_billing", request_id="req_c", model="gpt", cost_usd=1.0),
            row(20, endpoint_id="ep_other", request_id="req_d"),
            row(30, request_id="req_e"),  # through the plain base URL
        ]
    )
    until = T0 + timedelta(hours=2)
    mine = await ledger.timeline(since=T0, until=until, bucket_seconds=HOUR, endpoint_id="ep_billing")
    assert [(b.start, b.traffic.requests, b.traffic.errors, b.traffic.cost_usd) for b in mine] == [
        (T0, 2, 1, 0.25),
        (T0 + timedelta(hours=1), 1, 0, 1.0),
    ]
    both = await ledger.timeline(since=T0, until=until, bucket_seconds=HOUR, endpoint_id="ep_billing", key_id="key_b")
    assert [(b.start, b.traffic.requests) for b in both] == [(T0, 1)]
    assert await ledger.timeline(since=T0, until=until, bucket_seconds=HOUR, endpoint_id="ep_none") == []
    everyone = await ledger.timeline(since=T0, until=until, bucket_seconds=HOUR)
    assert sum(b.traffic.requests for b in everyone) == 5

    keys = await ledger.summary(since=T0, endpoint_id="ep_billing", group_by="key")
    assert [(g.group, g.requests, g.cost_usd) for g in keys] == [("key_a", 2, 1.25), ("key_b", 1, 0.0)]
    models = await ledger.summary(since=T0, endpoint_id="ep_billing", group_by="model")
    assert [(g.group, g.requests) for g in models] == [("gpt", 1), ("sonnet", 2)]
    by_endpoint = await ledger.summary(since=T0, group_by="endpoint_id")
    assert {g.group: g.requests for g in by_endpoint} == {"ep_billing": 3, "ep_other": 1, None: 1}

    recent = await ledger.recent(endpoint_id="ep_billing", limit=2)
    assert [r.request_id for r in recent] == ["req_c", "req_b"]
    assert [r.endpoint_id for r in recent] == ["ep_billing", "ep_billing"]
