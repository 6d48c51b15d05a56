"""The portal in a real browser: Debian's Chromium driven by Playwright, against a real gateway process.

Two stories, as an operator lives them. Log in with the master key, create a key and read it
off the page, use it through the gateway with the Anthropic SDK, watch its usage bar move, log
in as the key's holder and see the same, revoke the key and see the gateway refuse it. Then, as
an admin user (made with ``UserStore``, logged in with a name and a password): create an
endpoint, read its Anthropic base URL off the page, send requests through it with the Anthropic
SDK and watch the endpoint's request count move on its page. Each step leaves a screenshot in
the artifacts directory (``$MODELGATE_ARTIFACTS``, else ``tests/artifacts``;
``MODELGATE_ARTIFACTS=docs/portal`` refreshes the ones ``docs/portal.md`` shows).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anthropic
import httpx
import pytest

from modelgate.store import Database, UserRecord, UserStore
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.portal.conftest import (
    SESSIONS,
    PortalServer,
    artifacts_dir,
    backfill,
    backfill_log,
    history,
    in_store,
    write_rows,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

DESKTOP = {"width": 1280, "height": 1000}
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 1000}


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    yield ctx
    ctx.close()


def shot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/portal/")
    assert page.url.endswith("/portal/login")
    page.fill("#key", key)
    page.click("button[type=submit]")


def percent_of(page: Page, window: str) -> float:
    text = page.locator(f'tr[data-window="{window}"] .pct').inner_text()
    return float(text.rstrip("%"))


def wait_for_percent(page: Page, window: str, above: float, seconds: float = 15) -> float:
    """Reload until the window's bar is above ``above`` (the ledger is written in batches)."""
    deadline = time.monotonic() + seconds
    while True:
        value = percent_of(page, window)
        if value > above or time.monotonic() > deadline:
            return value
        time.sleep(0.3)
        page.reload()


def test_operator_creates_uses_watches_and_revokes_a_key(
    portal_gateway: PortalServer, context: BrowserContext, browser: Browser
) -> None:
    from playwright.sync_api import expect  # imported late: the browser fixture installs the library if missing

    base = portal_gateway.base_url
    backfill(
        portal_gateway,
        {
            "ci-bot": [{"window": "7d", "usd": 1.2}],
            "alice-laptop": [{"window": "5h", "usd": 0.5}, {"window": "month", "usd": 20}],
            "eval-runner": [],
        },
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{base}/portal/")
    shot(page, "login")
    log_in(page, base, MASTER_KEY)
    page.wait_for_url("**/portal/overview")

    # a team and a key with a 5-hour and a monthly budget
    page.click("nav >> text=Teams")
    page.click("summary:has-text('Create a team')")
    page.fill("form.form input[name=name]", "research")
    page.fill("input[name=budget_month_usd]", "50")
    page.click("button:has-text('Create team')")
    assert page.locator("p.notice").inner_text() == "Team created."

    page.click("nav >> text=Keys")
    page.click("summary:has-text('Create a key')")
    page.fill("form.form input[name=name]", "browser-key")
    page.select_option("select[name=team]", label="research")
    page.fill("input[name=budget_5h_usd]", "0.002")
    page.fill("input[name=budget_month_usd]", "5")
    page.fill("input[name=rpm]", "120")
    shot(page, "key-form")
    page.click("button:has-text('Create key')")
    secret = page.locator("[data-secret]").inner_text().strip()
    assert re.fullmatch(r"sk-mg-[A-Za-z0-9_-]{43}", secret)
    page.click("button[data-copy]")
    expect(page.locator("button[data-copy]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "key-created")

    page.click("text=Go to the key")
    assert percent_of(page, "key-5h") == 0.0
    assert page.locator('tr[data-window="key-5h"] td').last.inner_text() == "nothing spent"

    # the key at work through the gateway, then its bar
    with anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0, timeout=30) as client:
        for n in range(6):
            message = client.messages.create(
                model="claude-sonnet-4-6", max_tokens=400, messages=[{"role": "user", "content": f"Hello {n}"}]
            )
            assert message.content[0].type == "text"
        with pytest.raises(anthropic.APIStatusError):
            client.messages.create(model="dead-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    used = wait_for_percent(page, "key-5h", 0.0)
    assert 0.0 < used <= 100.0
    assert "UTC" in page.locator('tr[data-window="key-5h"] td').last.inner_text()  # when capacity frees
    assert page.locator("table >> text=claude-sonnet-4-6").count() >= 1  # the recent requests
    shot(page, "key")

    page.click("nav >> text=Keys")
    shot(page, "keys")
    page.click("nav >> text=Overview")
    assert page.locator("#stat-requests").inner_text() != "0"
    assert page.locator("svg.chart rect.bar").count() >= 2  # requests and spend
    shot(page, "overview")
    page.click("nav >> text=Providers")
    assert page.locator("td >> text=claude-sonnet-4-6").count() >= 1
    shot(page, "providers")

    # the key's holder sees its own page, and no operator's page
    holder = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    holder.set_default_timeout(15_000)
    mine = holder.new_page()
    log_in(mine, base, secret)
    mine.wait_for_url("**/portal/me")
    assert percent_of(mine, "key-5h") == used
    assert mine.locator("nav a").count() == 0
    shot(mine, "holder-phone")
    operator_phone = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    phone = operator_phone.new_page()
    log_in(phone, base, MASTER_KEY)
    phone.wait_for_url("**/portal/overview")
    shot(phone, "overview-phone")
    operator_phone.close()
    assert mine.goto(f"{base}/portal/keys").status == 403  # type: ignore[union-attr]

    # revoke: the gateway refuses the key, and its holder's session ends
    page.click("nav >> text=Keys")
    page.click("text=browser-key")
    page.click("button:has-text('Revoke')")
    assert "revoked" in page.locator("p.notice").inner_text()
    assert page.locator("h1 .badge").inner_text() == "revoked"
    with (
        anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0, timeout=30) as client,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 401
    mine.goto(f"{base}/portal/me")
    assert mine.url.endswith("/portal/login")
    holder.close()

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/portal/login")


def stat(page: Page, name: str) -> str:
    return page.locator(f"#stat-{name}").inner_text()


def wait_for_requests(page: Page, above: int, seconds: float = 15) -> int:
    """Reload until the page's request count is above ``above`` (the ledger is written in batches)."""
    deadline = time.monotonic() + seconds
    while True:
        value = int(stat(page, "requests"))
        if value > above or time.monotonic() > deadline:
            return value
        time.sleep(0.3)
        page.reload()


def wait_for_rows(page: Page, selector: str, count: int, seconds: float = 15) -> None:
    """Reload until ``count`` rows match (the request log is written with the ledger, in batches)."""
    deadline = time.monotonic() + seconds
    while page.locator(selector).count() < count and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()


def test_an_admin_user_makes_an_endpoint_and_watches_its_traffic(
    portal_gateway: PortalServer, context: BrowserContext, browser: Browser
) -> None:
    from playwright.sync_api import expect

    base = portal_gateway.base_url
    password = "a long operator passphrase"

    async def make_user(db: Database) -> UserRecord:
        return await UserStore(db).create("olivia", password)

    in_store(portal_gateway, make_user)
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as admin:
        made = admin.post("/admin/keys", json={"name": "support-app"}).raise_for_status().json()
        admin.post("/admin/keys", json={"name": "support-ci"}).raise_for_status()
    key_id, secret = made["id"], made["key"]

    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/portal/")
    page.fill("#user", "olivia")
    page.fill("#key", "not the password")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "That user name and password are not valid here."
    page.fill("#key", password)  # the name typed stays
    page.click("button[type=submit]")
    page.wait_for_url("**/portal/overview")
    assert page.locator(".who").inner_text() == "olivia admin"

    # the endpoint, made in the portal: two keys allowed, Claude models only
    page.click("nav >> text=Endpoints")
    page.click("summary:has-text('Create an endpoint')")
    page.fill("form.form input[name=name]", "support-bot")
    page.fill("form.form input[name=description]", "the customer support assistant")
    page.select_option("select[name=keys]", label=["support-app", "support-ci"])
    page.fill("form.form input[name=models]", "claude-*")
    shot(page, "endpoint-form")
    page.click("button:has-text('Create endpoint')")
    assert page.locator("p.notice").inner_text().startswith("Endpoint created")
    url = page.locator("#url-anthropic").inner_text().strip()
    found = re.fullmatch(re.escape(base) + r"/v1/(ep_[a-z0-9]{12})/anthropic", url)
    assert found is not None, url
    endpoint_id = found.group(1)
    page.click('button[data-copy="#url-anthropic"]')
    expect(page.locator('button[data-copy="#url-anthropic"]')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == url
    page.click("summary:has-text('Anthropic Python SDK')")
    snippet = page.locator('[data-recipe="anthropic-sdk@endpoint"] pre').inner_text()
    assert f'base_url="{url}"' in snippet and "sk-mg-your-virtual-key" in snippet
    assert int(stat(page, "requests")) == 0

    # a day of its history (for the charts), then live traffic through its URL with the Anthropic SDK
    write_rows(portal_gateway, history([key_id], endpoint_id=endpoint_id))
    page.goto(f"{base}/portal/endpoints/{endpoint_id}")
    before = int(stat(page, "requests"))
    assert before > 0
    with anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0, timeout=30) as client:
        for n in range(3):
            message = client.messages.create(
                model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": f"Hi {n}"}]
            )
            assert message.content[0].type == "text"
        with pytest.raises(anthropic.PermissionDeniedError):  # a model the endpoint does not allow
            client.messages.create(model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert wait_for_requests(page, before + 3) == before + 4  # three served, one refused by the endpoint
    assert page.locator("svg.chart rect.bar").count() >= 2
    assert page.locator("table.top >> text=support-app").count() == 1  # its top keys
    shot(page, "endpoint")
    phone_context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    phone_context.add_cookies(context.cookies())
    phone = phone_context.new_page()
    phone.goto(f"{base}/portal/endpoints/{endpoint_id}")
    assert phone.locator("#url-anthropic").inner_text() == url
    shot(phone, "endpoint-phone")
    phone_context.close()

    page.click("nav >> text=Endpoints")
    row = page.locator('tr[data-endpoint="support-bot"]')
    assert row.locator("td.requests").inner_text() == str(before + 4)
    shot(page, "endpoints")

    # disabled in the portal, the gateway answers its clients 404
    page.click("text=support-bot")
    page.click("button:has-text('Disable')")
    assert page.locator("h1 .badge").inner_text() == "disabled"
    with (
        anthropic.Anthropic(base_url=url, api_key=secret, max_retries=0, timeout=30) as client,
        pytest.raises(anthropic.NotFoundError),
    ):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def test_operator_traces_a_failover_and_an_agent_session(
    portal_gateway: PortalServer, upstream: FakeUpstream, context: BrowserContext
) -> None:
    """Why did this request fail, and what did this agent session do: a request that fails over
    (529, then the second deployment), one that fails on both, and two turns of one session."""
    from playwright.sync_api import expect

    base = portal_gateway.base_url
    with httpx.Client(base_url=base, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=30) as admin:
        created = [
            admin.post("/admin/keys", json={"name": name, "log_bodies": name == "agent-laptop"})
            .raise_for_status()
            .json()
            for name in ("agent-laptop", "codex-box")
        ]
        endpoints = [
            admin.post("/admin/endpoints", json={"name": name}).raise_for_status().json()["id"]
            for name in ("ci-agents", "docs-bot")
        ]
    backfill_log(portal_gateway, [key["id"] for key in created], endpoints)
    headers = {"x-modelgate-session-id": "s1", "user-agent": "claude-cli/2.1.30 (external, cli)"}
    with anthropic.Anthropic(
        base_url=base, api_key=created[0]["key"], max_retries=0, timeout=30, default_headers=headers
    ) as agent:
        upstream.script(error={"status": 529, "message": "anth is overloaded"}, match={"model": "claude-sonnet-4-6"})
        first = agent.messages.with_raw_response.create(
            model="sonnet-ha",
            max_tokens=200,
            messages=[{"role": "user", "content": 'List the files. [[fake:tool Bash {"command": "ls"}]]'}],
        )
        assert first.http_response.headers["x-modelgate-provider"] == "anth-eu"
        with agent.messages.stream(
            model="sonnet-ha", max_tokens=200, messages=[{"role": "user", "content": "Summarise the files."}]
        ) as stream:
            assert stream.get_final_message().content[0].type == "text"
    with anthropic.Anthropic(base_url=base, api_key=created[1]["key"], max_retries=0, timeout=30) as other:
        upstream.script(error={"status": 529, "message": "anth is overloaded"}, times=2)
        with pytest.raises(anthropic.APIStatusError) as refused:
            other.messages.create(model="sonnet-ha", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code == 529

    page = context.new_page()
    log_in(page, base, MASTER_KEY)
    page.wait_for_url("**/portal/overview")
    page.click("nav >> text=Logs")
    # the passthrough relays the upstream's request-id header: the rows are found by what they show
    failed, failed_over = "tr.failed:has-text('sonnet-ha')", "tr:not(.failed):has-text('sonnet-ha'):has-text('2 tries')"
    wait_for_rows(page, failed, 1)
    mine = "table.log tbody tr:has-text('agent-laptop'), table.log tbody tr:has-text('codex-box')"
    assert page.locator(mine).count() == 3 + sum(turns for *_, turns in SESSIONS)
    page.set_viewport_size(WIDE)  # type: ignore[arg-type]
    shot(page, "logs")
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]

    # why did this request fail
    page.check("input[name=errors]")
    page.click("button:has-text('Filter')")
    expect(page.locator(failed)).to_have_count(1)
    assert page.locator(failed_over).count() == 0
    assert page.locator(mine).count() == 2  # and the rate-limited turn of the backfill
    page.click(f"{failed} td a >> nth=0")
    expect(page.locator("#failure")).to_contain_text("529")
    expect(page.locator("#failure")).to_contain_text("anth is overloaded")
    assert page.locator("tr.attempt").count() == 2
    shot(page, "trace-failed")

    # the request that failed over: two attempts, the second served; its bodies were kept
    page.click("a:has-text('← Logs')")
    page.click(f"{failed_over} td a >> nth=0")
    assert page.locator("tr.attempt").count() == 2
    expect(page.locator('tr.attempt[data-attempt="1"]')).to_contain_text("529")
    # the second deployment of the same model: a retry, not a fallback
    expect(page.locator('tr.attempt[data-attempt="2"]')).to_contain_text("retry")
    expect(page.locator('tr.attempt[data-attempt="2"]')).to_contain_text("claude-sonnet-4-6-eu")
    expect(page.locator("#request-body")).to_contain_text("List the files.")
    assert page.locator("#failure").count() == 0
    shot(page, "trace")

    # what did this agent session do
    page.click("a[href^='/portal/sessions/s1']")
    page.wait_for_url("**/portal/sessions/s1*")
    expect(page.locator("#stat-turns")).to_have_text("2")
    assert page.locator("tr.turn").count() == 2
    expect(page.locator('tr.turn[data-turn="1"]')).to_contain_text("2 tries")
    shot(page, "session")
    page.click("nav >> text=Sessions")
    expect(page.locator('tr[data-session="s1"] td.turns')).to_have_text("2")
    expect(page.locator('tr[data-session="s1"]')).to_contain_text("Claude Code")
    assert page.locator("table.sessions tbody tr").count() == 4
    shot(page, "sessions")
    page.click('tr[data-session="5d0c6a2e-claude-refactor"] a')
    assert page.locator("tr.turn").count() == 9
    page.click("nav >> text=Overview")
    assert page.locator("#ttft svg.chart polyline.line").count() >= 2  # p50 and p95
    endpoints = page.locator("section.card", has_text="Top endpoints by spend")
    expect(endpoints).to_contain_text("ci-agents")
    expect(endpoints).to_contain_text("docs-bot")
    shot(page, "overview")
