from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from modelgate.store import BodyRecord, Database, RequestRecord, RequestStore, SessionSummary
from modelgate.store.analytics import bin_of
from modelgate.store.schema import request_bodies, requests
from tests.store.conftest import T0

ATTEMPT = {
    "provider": "anth",
    "model": "claude-sonnet-4-6",
    "key_id": "anth#0",
    "passthrough": True,
    "status": 200,
    "latency_ms": 120,
    "error_type": None,
    "error_message": None,
    "upstream_request_id": "msg_1",
}


def rec(seconds: float, key_id: str | None = "key_a", **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "request_id": f"req_{seconds}_{key_id}",
        "team_id": "team_x",
        "door": "anthropic",
        "endpoint": "messages",
        "model": "sonnet",
        "served_model": "claude-sonnet-4-6",
        "provider": "anth",
        "stream": True,
        "status": 200,
        "latency_ms": 900,
        "ttft_ms": 300,
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": 0.25,
        "attempts": [ATTEMPT],
    }
    values.update(fields)
    return RequestRecord(at=T0 + timedelta(seconds=seconds), key_id=key_id, **values)


@pytest.fixture
def store(db: Database) -> RequestStore:
    return RequestStore(db)


async def test_a_record_reads_back_field_for_field(store: RequestStore) -> None:
    await store.insert_many([])  # nothing to write is fine
    written = rec(
        0,
        endpoint_id="ep_1",
        session_id="sess-1",
        error_type="overloaded",
        error_message="upstream anth is overloaded",
        stop_reason="end_turn",
        cache_read_tokens=5,
        cache_write_tokens=6,
        reasoning_tokens=7,
        tool_calls=2,
        user_agent="claude-cli/2.0.14 (external, cli)",
        client_ip="203.0.113.9",
        attempts=[{**ATTEMPT, "status": 529, "error_type": "overloaded"}, ATTEMPT],
        upstream_request_id="msg_1",
    )
    await store.insert_many([written])
    got = await store.get(written.request_id)
    assert got is not None
    assert isinstance(got.id, int)
    got.id = None
    assert got == written
    assert got.body is None
    assert await store.get("req_missing") is None


async def test_get_brings_the_bodies_when_stored(store: RequestStore) -> None:
    await store.insert_many([rec(0)])
    body = BodyRecord(request_id="req_0_key_a", at=T0, request='{"model":"sonnet"}', response="data: x", truncated=True)
    await store.insert_bodies([body])
    await store.insert_bodies([])
    got = await store.get("req_0_key_a")
    assert got is not None and got.body == body


async def test_get_finds_a_record_by_either_id(store: RequestStore) -> None:
    # What the client saw on a passthrough answer is the upstream's id: the last attempt's.
    retried = rec(
        0,
        attempts=[{**ATTEMPT, "status": 529, "upstream_request_id": "req_up_first"}, ATTEMPT],
        upstream_request_id="req_up_served",
    )
    failed = rec(10, status=529, upstream_request_id="req_up_failed")
    local = rec(20)  # answered without an upstream (a warm-up, a refusal): no upstream id
    # An upstream id equal to another record's gateway id: looking it up finds the gateway's own.
    clash = rec(30, upstream_request_id="req_20_key_a")
    await store.insert_many([retried, failed, local, clash])
    await store.insert_bodies([BodyRecord(request_id="req_0_key_a", at=T0, request="{}")])

    by_upstream = await store.get("req_up_served")
    assert by_upstream is not None
    assert by_upstream.request_id == "req_0_key_a"
    assert by_upstream.upstream_request_id == "req_up_served"
    assert by_upstream.body == BodyRecord(request_id="req_0_key_a", at=T0, request="{}")  # the bodies by its own id
    by_own = await store.get("req_0_key_a")
    assert by_own is not None and by_own.id == by_upstream.id
    failed_got = await store.get("req_up_failed")
    assert failed_got is not None and failed_got.request_id == "req_10_key_a"
    assert failed_got.body is None
    clash_got = await store.get("req_20_key_a")
    assert clash_got is not None and clash_got.request_id == "req_20_key_a"
    assert await store.get("req_up_first") is None  # a retried attempt's id never reached the client
    assert await store.get("req_missing") is None

    async def ids(ref: str) -> list[str]:
        return [r.request_id for r in await store.list(request_id=ref)]

    assert await ids("req_up_served") == ["req_0_key_a"]
    assert await ids("req_0_key_a") == ["req_0_key_a"]
    assert await ids("req_20_key_a") == ["req_30_key_a", "req_20_key_a"]  # a filter matches both
    assert await ids("req_up_first") == []


async def test_list_is_newest_first_and_pages_by_keyset(store: RequestStore) -> None:
    # Two records of the same instant: the id breaks the tie, and no page loses either.
    await store.insert_many([rec(0), rec(10), rec(20), rec(20, request_id="req_twin"), rec(30)])
    first = await store.list(limit=2)
    assert [r.request_id for r in first] == ["req_30_key_a", "req_twin"]
    second = await store.list(limit=2, before=first[-1].id)
    assert [r.request_id for r in second] == ["req_20_key_a", "req_10_key_a"]
    third = await store.list(limit=2, before=second[-1].id)
    assert [r.request_id for r in third] == ["req_0_key_a"]
    assert await store.list(limit=2, before=third[-1].id) == []


async def test_list_filters(store: RequestStore) -> None:
    await store.insert_many(
        [
            rec(0),
            rec(10, key_id="key_b", team_id="team_y", model="opus", served_model="claude-opus-4-1"),
            rec(20, endpoint_id="ep_1", session_id="s1"),
            rec(30, status=429, error_type="rate_limited"),
            rec(40, status=200, error_type="upstream_unavailable"),  # a stream broken after its 200
            rec(50, status=503),
            rec(3600, key_id="key_b"),
        ]
    )

    async def ids(**filters: Any) -> list[float]:
        return [(r.at - T0).total_seconds() for r in await store.list(**filters)]

    assert await ids(key_id="key_b") == [3600, 10]
    assert await ids(team_id="team_y") == [10]
    assert await ids(endpoint_id="ep_1") == [20]
    assert await ids(session_id="s1") == [20]
    assert await ids(model="opus") == [10]
    assert await ids(model="claude-opus-4-1") == [10]
    assert await ids(errors=True) == [50, 40, 30]
    assert await ids(status="4xx") == [30]
    assert await ids(status="5xx") == [50]
    assert await ids(since=T0 + timedelta(seconds=30), until=T0 + timedelta(seconds=3600)) == [50, 40, 30]
    assert await ids(key_id="key_a", since=T0 + timedelta(seconds=45)) == [50]
    with pytest.raises(ValueError, match="status must be one of"):
        await store.list(status="6xx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        await store.list(limit=0)


async def test_sessions_group_by_session_and_key(store: RequestStore) -> None:
    await store.insert_many(
        [
            rec(0, session_id="s1", tool_calls=2, model="sonnet"),
            rec(60, session_id="s1", tool_calls=1, model="haiku", cost_usd=0.5, status=529, error_type="overloaded"),
            rec(120, session_id="s1", model="sonnet"),
            rec(30, session_id="s1", key_id="key_b"),  # the same id from another key: its own session
            rec(90, session_id="s2", endpoint_id="ep_1"),
            rec(100),  # no session
        ]
    )
    sessions = await store.sessions()
    assert sessions == [
        SessionSummary(
            session_id="s1",
            key_id="key_a",
            first_at=T0,
            last_at=T0 + timedelta(seconds=120),
            requests=3,
            cost_usd=1.0,
            input_tokens=300,
            output_tokens=30,
            cache_read_tokens=0,
            cache_write_tokens=0,
            tool_calls=3,
            errors=1,
            models=("haiku", "sonnet"),
        ),
        SessionSummary(
            session_id="s2",
            key_id="key_a",
            first_at=T0 + timedelta(seconds=90),
            last_at=T0 + timedelta(seconds=90),
            requests=1,
            cost_usd=0.25,
            input_tokens=100,
            output_tokens=10,
            cache_read_tokens=0,
            cache_write_tokens=0,
            tool_calls=0,
            errors=0,
            models=("sonnet",),
        ),
        SessionSummary(
            session_id="s1",
            key_id="key_b",
            first_at=T0 + timedelta(seconds=30),
            last_at=T0 + timedelta(seconds=30),
            requests=1,
            cost_usd=0.25,
            input_tokens=100,
            output_tokens=10,
            cache_read_tokens=0,
            cache_write_tokens=0,
            tool_calls=0,
            errors=0,
            models=("sonnet",),
        ),
    ]
    assert sessions[0].duration_seconds == 120.0 and sessions[0].tokens == 330
    assert [s.session_id for s in await store.sessions(key_id="key_b")] == ["s1"]
    assert [s.session_id for s in await store.sessions(endpoint_id="ep_1")] == ["s2"]
    later = await store.sessions(since=T0 + timedelta(seconds=60))
    assert [(s.session_id, s.requests) for s in later] == [("s1", 2), ("s2", 1)]
    page = await store.sessions(limit=1)
    assert [s.session_id for s in await store.sessions(limit=5, before=page[-1].last_at)] == ["s2", "s1"]
    turns = await store.session("s1", key_id="key_a")
    assert [(r.at - T0).total_seconds() for r in turns] == [0, 60, 120]
    assert len(await store.session("s1")) == 4


async def test_prune_deletes_in_batches_and_the_bodies_apart(store: RequestStore, db: Database) -> None:
    await store.insert_many([rec(s) for s in range(0, 70, 10)])  # 7 records, 0..60 s
    await store.insert_bodies(
        [BodyRecord(request_id=f"req_{s}_key_a", at=T0 + timedelta(seconds=s), request="{}") for s in (0, 30, 60)]
    )
    assert await store.prune_bodies(T0 + timedelta(seconds=31), batch=1) == 2
    assert await store.prune(T0 + timedelta(seconds=45), batch=2) == 5  # 3 batches: 2, 2, 1
    async with db.read() as conn:
        left = (await conn.execute(sa.select(requests.c.request_id).order_by(requests.c.at))).scalars().all()
        bodies = (await conn.execute(sa.select(request_bodies.c.request_id))).scalars().all()
    assert left == ["req_50_key_a", "req_60_key_a"]
    assert bodies == ["req_60_key_a"]
    assert await store.prune(T0 - timedelta(days=1)) == 0


async def test_ttft_timeline_counts_streams_per_bucket_and_bin(store: RequestStore) -> None:
    await store.insert_many(
        [
            rec(0, ttft_ms=120),  # bin [100, 150)
            rec(10, ttft_ms=130),
            rec(20, ttft_ms=2_500),  # bin [2000, 3000)
            rec(3_700, ttft_ms=40),  # the next hour: bin [40, 50)
            rec(3_710, ttft_ms=None),  # a stream that sent nothing: no first token
            rec(3_720, stream=False, ttft_ms=900),  # not a stream: left out
            rec(3_730, key_id="key_b", endpoint_id="ep_1", ttft_ms=700_000),  # above the last edge
            rec(7_300, ttft_ms=100),  # at ``until``: outside
        ]
    )
    buckets = await store.ttft_timeline(since=T0, until=T0 + timedelta(seconds=7_300), bucket_seconds=3600)
    assert [(start - T0, {i: n for i, n in enumerate(h.counts) if n}) for start, h in buckets] == [
        (timedelta(0), {bin_of(120): 2, bin_of(2_500): 1}),
        (timedelta(hours=1), {bin_of(40): 1, bin_of(700_000): 1}),
    ]
    assert buckets[0][1].percentile(0.5) == pytest.approx(100 + 50 * 1.5 / 2)
    mine = await store.ttft_timeline(since=T0, until=T0 + timedelta(hours=3), bucket_seconds=86_400, key_id="key_a")
    assert [(start, h.total) for start, h in mine] == [(datetime(2026, 3, 10, tzinfo=UTC), 5)]
    through = await store.ttft_timeline(
        since=T0, until=T0 + timedelta(hours=3), bucket_seconds=3600, endpoint_id="ep_1"
    )
    assert [(start - T0, h.total, h.percentile(0.5)) for start, h in through] == [(timedelta(hours=1), 1, 600_000.0)]
    assert await store.ttft_timeline(since=T0 - timedelta(hours=1), until=T0, bucket_seconds=60) == []
    with pytest.raises(ValueError, match="bucket_seconds"):
        await store.ttft_timeline(since=T0, until=T0, bucket_seconds=0)


async def test_user_agents_name_the_client_of_each_session(store: RequestStore) -> None:
    await store.insert_many(
        [
            rec(0, session_id="s1", user_agent="claude-cli/2.1.30 (external, cli)"),
            rec(1, session_id="s1", key_id="key_b", user_agent="codex_cli_rs/0.50.0"),
            rec(2, session_id="s2"),  # no user agent
            rec(3, session_id="s3", user_agent="curl/8.5.0"),
        ]
    )
    assert await store.user_agents(["s1", "s2", "s1"]) == {
        ("s1", "key_a"): "claude-cli/2.1.30 (external, cli)",
        ("s1", "key_b"): "codex_cli_rs/0.50.0",
    }
    assert await store.user_agents([]) == {}
