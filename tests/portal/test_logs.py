"""The request log's pages in process: the filtered list and its pages, a failed request's trace,
agent sessions, the operator-only guard, hostile strings rendered inert, and the log turned off."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.portal.logs import attempt_views, client_kind
from modelgate.portal.sessions import turns
from modelgate.store import BodyRecord, RequestRecord
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import anthropic_body, build_gateway
from tests.portal.conftest import log_in
from tests.portal.test_app import create_key

HOSTILE = '<script>alert("x")</script>'


def attempt(provider: str, model: str, status: int, latency_ms: int, **fields: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "key_id": f"{provider}#0",
        "passthrough": False,
        "status": status,
        "latency_ms": latency_ms,
        "error_type": None,
        "error_message": None,
        "upstream_request_id": None,
        **fields,
    }


def record(gw: Gateway, seconds_ago: float, request_id: str, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "key_id": None,
        "team_id": None,
        "door": "anthropic",
        "endpoint": "messages",
        "model": "claude-sonnet-4-6",
        "served_model": "claude-sonnet-4-6",
        "provider": "anth",
        "status": 200,
        "latency_ms": 400,
        "input_tokens": 120,
        "output_tokens": 30,
        "cost_usd": 0.0012,
        "attempts": [attempt("anth", "claude-sonnet-4-6", 200, 380)],
        **fields,
    }
    return RequestRecord(request_id=request_id, at=datetime.now(UTC) - timedelta(seconds=seconds_ago), **values)


def ids(html: str) -> list[str]:
    return re.findall(r'data-request="([^"]+)"', html)


@pytest.fixture
async def logged(portal_gw: Gateway, admin_web: httpx.AsyncClient) -> tuple[str, str]:
    """Records of two keys: (alice's id, bob's id); alice's include a failed-over and a failed request."""
    alice, _ = await create_key(admin_web, name="alice")
    bob, _ = await create_key(admin_web, name="bob")
    failover = [
        attempt("anth", "claude-sonnet-4-6", 529, 120, error_type="overloaded", error_message="anth is overloaded"),
        attempt("anth", "claude-sonnet-4-6", 529, 95, error_type="overloaded", error_message="anth is overloaded"),
        attempt("anth-eu", "claude-sonnet-4-6-eu", 200, 610),
    ]
    failed = [attempt("anth", "claude-sonnet-4-6", 503, 50, error_type="api_error", error_message="upstream down")]
    records = [
        record(portal_gw, 300, "req_old", key_id=alice, model="gpt-4o", served_model="gpt-4o", provider="oai"),
        record(portal_gw, 200, "req_over", key_id=alice, attempts=failover, latency_ms=1400, session_id="s1"),
        record(
            portal_gw,
            100,
            "req_fail",
            key_id=alice,
            status=503,
            error_type="api_error",
            error_message="every upstream failed: upstream down",
            attempts=failed,
            session_id="s1",
            tool_calls=2,
            user_agent="claude-cli/2.1.30 (external, cli)",
            client_ip="10.1.2.3",
        ),
        record(portal_gw, 50, "req_bob", key_id=bob, endpoint_id="ep_team", stream=True, ttft_ms=210),
        record(portal_gw, 10, "req_hostile", key_id=bob, model=HOSTILE, error_message=HOSTILE, status=400),
        record(portal_gw, 5, "req_odd_session", key_id=bob, session_id=f"team/a b?{HOSTILE}", status=200),
    ]
    assert portal_gw.tenancy.requests is not None
    await portal_gw.tenancy.requests.insert_many(records)
    await portal_gw.tenancy.requests.insert_bodies(
        [
            BodyRecord(
                request_id="req_hostile", at=records[-1].at, request='{"prompt": "' + HOSTILE.replace('"', "'") + '"}'
            )
        ]
    )
    return alice, bob


async def test_the_list_is_newest_first_and_filters(admin_web: httpx.AsyncClient, logged: tuple[str, str]) -> None:
    _, bob = logged
    page = await admin_web.get("/portal/logs")
    assert page.status_code == 200
    assert ids(page.text) == ["req_odd_session", "req_hostile", "req_bob", "req_fail", "req_over", "req_old"]
    assert '<a href="/portal/logs" class="active" aria-current="page">Logs</a>' in page.text

    async def listed(**params: str) -> list[str]:
        response = await admin_web.get("/portal/logs", params=params)
        assert response.status_code == 200, response.text
        return ids(response.text)

    assert await listed(key="alice") == ["req_fail", "req_over", "req_old"]
    assert await listed(key=bob) == ["req_odd_session", "req_hostile", "req_bob"]
    assert await listed(endpoint="ep_team") == ["req_bob"]
    assert await listed(session="s1") == ["req_fail", "req_over"]
    assert await listed(model="gpt-4o") == ["req_old"]
    assert await listed(status="5xx") == ["req_fail"]
    assert await listed(status="2xx", key="alice") == ["req_over", "req_old"]
    assert await listed(errors="1") == ["req_hostile", "req_fail"]
    assert await listed(range="1h") == ["req_odd_session", "req_hostile", "req_bob", "req_fail", "req_over", "req_old"]
    assert await listed(range="all", until="2000-01-01T00:00") == []
    refused = await admin_web.get("/portal/logs", params={"key": "nobody"})
    assert refused.status_code == 400 and "no key" in refused.text and 'value="nobody"' in refused.text
    assert (await admin_web.get("/portal/logs", params={"status": "6xx"})).status_code == 400
    assert (await admin_web.get("/portal/logs", params={"before": "x"})).status_code == 400


async def test_the_list_pages_with_an_older_link(
    admin_web: httpx.AsyncClient, logged: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelgate.portal.logs.PAGE", 2)
    first = await admin_web.get("/portal/logs", params={"key": "alice"})
    assert ids(first.text) == ["req_fail", "req_over"]
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older is not None and "key=alice" in older.group(1) and "before=" in older.group(1)
    second = await admin_web.get(older.group(1).replace("&amp;", "&"))
    assert ids(second.text) == ["req_old"]
    assert 'rel="next"' not in second.text and "← Newest" in second.text


async def test_a_failed_request_trace_shows_its_error_and_every_attempt(
    admin_web: httpx.AsyncClient, logged: tuple[str, str]
) -> None:
    failed = await admin_web.get("/portal/logs/req_fail")
    assert failed.status_code == 200
    failure = failed.text[
        failed.text.index('id="failure"') : failed.text.index("</section>", failed.text.index('id="failure"'))
    ]
    assert "api_error" in failure and "every upstream failed: upstream down" in failure
    assert "the last: anth claude-sonnet-4-6 answered 503 (api_error: upstream down)" in failure
    assert "Claude Code" in failed.text and "10.1.2.3" in failed.text
    assert 'href="/portal/sessions/s1?key=' in failed.text
    over = await admin_web.get("/portal/logs/req_over")
    assert 'id="failure"' not in over.text
    rows = re.findall(r'<tr class="attempt" data-attempt="(\d)">(.*?)</tr>', over.text, re.S)
    assert [n for n, _ in rows] == ["1", "2", "3"]
    roles = [re.search(r'class="chip role-[a-z-]+">([a-z ]+)<', row).group(1) for _, row in rows]  # type: ignore[union-attr]
    assert roles == ["first try", "retry", "fallback"]
    assert "anth is overloaded" in rows[0][1] and "claude-sonnet-4-6-eu" in rows[2][1]
    assert over.text.count('<svg class="span"') == 3
    assert "Not stored" in over.text
    missing = await admin_web.get("/portal/logs/req_nope")
    assert missing.status_code == 404 and "No request req_nope" in missing.text


async def test_hostile_strings_render_inert(admin_web: httpx.AsyncClient, logged: tuple[str, str]) -> None:
    for path in ("/portal/logs", "/portal/logs/req_hostile", "/portal/sessions", "/portal/logs/req_odd_session"):
        page = await admin_web.get(path)
        assert HOSTILE not in page.text and "<script>alert" not in page.text
        assert "&lt;script&gt;alert(" in page.text
    trace = await admin_web.get("/portal/logs/req_hostile")
    body = re.search(r'<pre class="body" id="request-body">(.*?)</pre>', trace.text, re.S)
    assert (
        body is not None
        and body.group(1) == "{\n  &#34;prompt&#34;: &#34;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&#34;\n}"
    )


async def test_sessions_list_and_one_session_with_its_turns(
    admin_web: httpx.AsyncClient, logged: tuple[str, str]
) -> None:
    alice, _ = logged
    listing = await admin_web.get("/portal/sessions")
    assert listing.status_code == 200
    row = re.search(r'<tr data-session="s1">(.*?)</tr>', listing.text, re.S)
    assert row is not None
    assert "alice" in row.group(1) and "Claude Code" in row.group(1) and '<td class="num turns">2</td>' in row.group(1)
    assert f'href="/portal/sessions/s1?key={alice}"' in row.group(1)
    bobs = (await admin_web.get("/portal/sessions", params={"key": "bob"})).text
    assert re.findall(r'<tr data-session="([^"]+)"', bobs) == [
        "team/a b?&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    ]
    one = await admin_web.get(f"/portal/sessions/s1?key={alice}")
    assert one.status_code == 200
    assert re.findall(r'data-turn="(\d)"', one.text) == ["1", "2"]
    assert '<span class="value" id="stat-turns">2</span>' in one.text
    assert 'href="/portal/logs/req_over">trace' in one.text and 'href="/portal/logs/req_fail">trace' in one.text
    assert (await admin_web.get("/portal/sessions/nope")).status_code == 404


async def test_a_key_holder_is_refused_and_sees_only_their_own_requests(
    web: httpx.AsyncClient, portal_gw: Gateway
) -> None:
    await log_in(web, MASTER_KEY)
    _, mine = await create_key(web, name="holder")
    _, other = await create_key(web, name="other")
    headers = {"anthropic-version": "2023-06-01"}
    assert (
        await web.post("/v1/messages", json=anthropic_body("claude-haiku-4-5"), headers={**headers, "x-api-key": mine})
    ).status_code == 200
    assert (
        await web.post("/v1/messages", json=anthropic_body("gpt-4o"), headers={**headers, "x-api-key": other})
    ).status_code == 200
    await portal_gw.tenancy.writer.flush()
    web.cookies.clear()
    assert (await log_in(web, mine)).status_code == 303
    for path in ("/portal/logs", "/portal/logs/req_x", "/portal/sessions", "/portal/sessions/s1"):
        assert (await web.get(path)).status_code == 403, path
    me = await web.get("/portal/me")
    assert "claude-haiku-4-5" in me.text and "gpt-4o" not in me.text
    assert "/portal/logs/" not in me.text  # no link to an operator's page


async def test_the_pages_say_when_the_request_log_is_off(fake: FakeUpstream) -> None:
    from tests.pipeline.helpers import asgi_client

    gw = build_gateway(fake)
    gw.portal.logs.admin.log = None  # as ``records.enabled: false`` builds it
    await gw.start()
    try:
        async with asgi_client(gw) as client:
            await log_in(client, MASTER_KEY)
            for path in ("/portal/logs", "/portal/logs/req_1", "/portal/sessions", "/portal/sessions/s1"):
                page = await client.get(path)
                assert page.status_code == 200 and "The request log is off" in page.text, path
            overview = await client.get("/portal/overview")
            assert overview.status_code == 200 and "time to first token is not recorded" in overview.text
            _, secret = await create_key(client, name="holder")
            headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
            assert (
                await client.post("/v1/messages", json=anthropic_body("claude-haiku-4-5"), headers=headers)
            ).status_code == 200
            await gw.tenancy.writer.flush()
            client.cookies.clear()
            await log_in(client, secret)
            me = await client.get("/portal/me")
            assert me.status_code == 200 and "claude-haiku-4-5" in me.text  # the ledger's rows
    finally:
        await gw.close()


def test_the_client_is_guessed_from_its_user_agent() -> None:
    assert [
        client_kind(ua)
        for ua in (
            "claude-cli/2.1.30 (external, cli)",
            "codex_cli_rs/0.50.0 (Debian 13; x86_64)",
            "GeminiCLI/0.9.0 (linux; x64)",
            "Anthropic/Python 0.69.0",
            "OpenAI/Python 1.109.1",
            "google-genai-sdk/1.40.0 gl-python/3.12",
            "curl/8.14.1",
            "something-else/1.0",
            None,
        )
    ] == ["Claude Code", "Codex CLI", "Gemini CLI", "Anthropic SDK", "OpenAI SDK", "google-genai", "curl", None, None]


def test_attempts_and_turns_lie_on_one_time_line() -> None:
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    over = RequestRecord(
        request_id="r",
        at=at,
        key_id=None,
        team_id=None,
        door="anthropic",
        endpoint="messages",
        latency_ms=1000,
        attempts=[attempt("a", "m", 529, 250), attempt("b", "m", 200, 500)],
    )
    views = attempt_views(over)
    assert [(v.role, v.status) for v in views] == [("first try", 529), ("fallback", 200)]
    assert 'x="0.00"' in views[0].bar and 'width="25.00"' in views[0].bar and "span-bad" in views[0].bar
    assert 'x="25.00"' in views[1].bar and 'width="50.00"' in views[1].bar and "span-ok" in views[1].bar
    later = RequestRecord(
        request_id="r2",
        at=at + timedelta(seconds=3),
        key_id=None,
        team_id=None,
        door="anthropic",
        endpoint="messages",
        latency_ms=1000,
    )
    placed = turns([over, later])
    assert [(t.number, t.offset_seconds) for t in placed] == [(1, 0.0), (2, 3.0)]
    assert 'x="75.00"' in placed[1].bar and 'width="25.00"' in placed[1].bar


async def test_the_overview_charts_ttft_and_ranks_endpoints(
    admin_web: httpx.AsyncClient, portal_gw: Gateway, logged: tuple[str, str]
) -> None:
    from modelgate.store import LedgerRow

    team = await portal_gw.tenancy.endpoint_store.create("team-app")
    now = datetime.now(UTC)
    rows = [
        LedgerRow(
            request_id=f"req_ep_{n}",
            at=now - timedelta(minutes=n),
            key_id=None,
            team_id=None,
            door="anthropic",
            endpoint="messages",
            endpoint_id=endpoint,
            model="claude-sonnet-4-6",
            cost_usd=cost,
            status=200,
            latency_ms=300,
        )
        for n, (endpoint, cost) in enumerate([(team.id, 0.5), (team.id, 0.25), ("ep_other", 0.1), (None, 9.0)])
    ]
    await portal_gw.tenancy.ledger.insert_many(rows)
    page = await admin_web.get("/portal/overview")
    assert page.status_code == 200
    top = page.text[page.text.index("Top endpoints by spend") :]
    top = top[: top.index("</table>")]
    assert re.findall(r'<td>(?:<a href="/portal/endpoints/(ep_\w+)">)?([^<]+)', top) == [
        ("", "(plain base URL)"),
        (team.id, "team-app"),
        ("ep_other", "ep_other"),  # an endpoint deleted since: its id
    ]
    ttft = page.text[page.text.index('id="ttft"') :]
    assert '<svg class="chart' in ttft[: ttft.index("</section>")]
    assert '<span class="value" id="stat-ttft-p50">' in page.text and 'stat-ttft-p50">—' not in page.text


async def test_a_session_id_of_any_characters_links_to_its_page_and_sessions_page(
    admin_web: httpx.AsyncClient, logged: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = await admin_web.get("/portal/logs/req_odd_session")
    link = re.search(r'href="(/portal/sessions/team/[^"]+)"', trace.text)
    assert link is not None
    one = await admin_web.get(link.group(1).replace("&amp;", "&"))
    assert one.status_code == 200 and re.findall(r'data-turn="(\d)"', one.text) == ["1"]
    assert 'href="/portal/logs/req_odd_session">trace' in one.text
    monkeypatch.setattr("modelgate.portal.sessions.PAGE", 1)
    first = await admin_web.get("/portal/sessions")
    assert len(re.findall(r"<tr data-session=", first.text)) == 1 and "team/a b?" in first.text
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = await admin_web.get(older.group(1).replace("&amp;", "&"))
    assert re.findall(r'<tr data-session="([^"]+)"', second.text) == ["s1"]
    assert "← Latest" in second.text


async def test_the_overview_says_when_no_stream_came(admin_web: httpx.AsyncClient) -> None:
    page = await admin_web.get("/portal/overview")
    ttft = page.text[page.text.index('id="ttft"') :]
    assert "No streamed request in this range." in ttft[: ttft.index("</section>")]
    assert '<span class="value" id="stat-ttft-p50">—</span>' in page.text


async def test_a_passthrough_request_is_found_by_the_upstream_id_its_client_saw(
    admin_web: httpx.AsyncClient, portal_gw: Gateway, fake: FakeUpstream
) -> None:
    """On a passthrough answer the client sees the upstream's ``request-id`` (Claude Code prints
    it, SDKs expose it as ``_request_id``): the operator finds the trace by it, in the portal and
    through the admin API, for an answer and for a relayed error."""
    _, secret = await create_key(admin_web, name="reporter")
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    served = await admin_web.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=headers)
    fake.script(error={"status": 529, "message": "anth is overloaded"})
    refused = await admin_web.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=headers)
    assert (served.status_code, refused.status_code) == (200, 529)
    seen = [served.headers["request-id"], refused.headers["request-id"]]  # the fake upstream's ids
    assert all(s.startswith("req_011C") for s in seen) and seen[0] != seen[1]
    await portal_gw.tenancy.writer.flush()
    log = portal_gw.tenancy.requests
    assert log is not None
    records = {r.upstream_request_id: r for r in await log.list(limit=10)}
    assert sorted(records) == sorted(seen)
    for upstream_id in seen:
        own = records[upstream_id].request_id
        assert own != upstream_id  # the gateway's id, which this client never saw

        trace = await admin_web.get(f"/portal/logs/{upstream_id}")
        assert trace.status_code == 200
        assert f'<code>{own}</code> · upstream <code class="upstream-id"' in trace.text
        assert f">{upstream_id}</code>" in trace.text
        assert (await admin_web.get(f"/portal/logs/{own}")).text == trace.text  # either id, one trace

        listed = await admin_web.get("/portal/logs", params={"request_id": f" {upstream_id} ", "range": "all"})
        assert (listed.status_code, ids(listed.text)) == (200, [own])
        assert f'name="request_id" value="{upstream_id}"' in listed.text

        master = {"authorization": f"Bearer {MASTER_KEY}"}
        shown = (await admin_web.get(f"/admin/requests/{upstream_id}", headers=master)).json()
        assert (shown["request_id"], shown["upstream_request_id"]) == (own, upstream_id)
        found = (await admin_web.get("/admin/requests", params={"request_id": upstream_id}, headers=master)).json()
        assert [r["request_id"] for r in found["data"]] == [own]
    assert records[seen[1]].status == 529
    missing = await admin_web.get("/portal/logs", params={"request_id": "req_011Cnope", "range": "all"})
    assert (missing.status_code, ids(missing.text)) == (200, [])
