"""The portal in process (httpx over ASGI, no socket): login and sessions, CSRF, roles, and every
page rendered with real data from a gateway that served real requests (the fake upstream)."""

from __future__ import annotations

import re

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.portal.auth import COOKIE
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import anthropic_body
from tests.portal.conftest import csrf_of, log_in

SECRET = re.compile(r"sk-mg-[A-Za-z0-9_-]{43}")


async def call(web: httpx.AsyncClient, secret: str, model: str = "claude-sonnet-4-6") -> int:
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    response = await web.post("/v1/messages", json=anthropic_body(model), headers=headers)
    return response.status_code


async def create_key(web: httpx.AsyncClient, **fields: str) -> tuple[str, str]:
    """Create a key through the portal's form: (its id, its secret)."""
    page = await web.get("/portal/keys")
    response = await web.post("/portal/keys", data={"csrf": csrf_of(page.text), **fields})
    assert response.status_code == 201, response.text
    secret = SECRET.search(response.text)
    key_id = re.search(r'href="/portal/keys/(key_[0-9a-f]+)"', response.text)
    assert secret is not None and key_id is not None
    return key_id.group(1), secret.group(0)


# login, sessions, CSRF


async def test_the_login_form_sets_a_visitor_session_and_safe_headers(web: httpx.AsyncClient) -> None:
    response = await web.get("/portal/login")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie and "Max-Age=" in cookie
    assert csrf_of(response.text)
    assert (await web.get("/portal/overview")).headers["location"] == "/portal/login"
    assert (await web.get("/portal")).headers["location"] == "/portal/login"
    missing = await web.get("/portal/nowhere")
    assert missing.status_code == 404 and "There is no page at /portal/nowhere." in missing.text
    assert (await web.get("/portal/static/none.css")).status_code == 404


async def test_the_master_key_logs_in_and_never_lands_in_the_cookie(web: httpx.AsyncClient) -> None:
    response = await log_in(web, MASTER_KEY)
    assert (response.status_code, response.headers["location"]) == (303, "/portal/overview")
    assert MASTER_KEY not in response.headers["set-cookie"]
    assert MASTER_KEY.encode() not in str(web.cookies.get(COOKIE)).encode()
    assert (await web.get("/portal/overview")).status_code == 200
    assert (await web.get("/portal/")).headers["location"] == "/portal/overview"


async def test_a_wrong_key_is_refused_and_repeated_failures_are_throttled(web: httpx.AsyncClient) -> None:
    for _ in range(10):
        response = await log_in(web, "mg-not-the-master-key")
        assert response.status_code == 401
        assert "That key is not valid here." in response.text
    assert (await log_in(web, "sk-mg-" + "x" * 43)).status_code == 429
    throttled = await log_in(web, MASTER_KEY)  # even the right key waits: the address is throttled
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert (await web.get("/portal/overview")).status_code == 303


async def test_the_login_needs_its_csrf_token(web: httpx.AsyncClient) -> None:
    await web.get("/portal/login")
    assert (await web.post("/portal/login", data={"key": MASTER_KEY})).status_code == 403
    assert (await web.post("/portal/login", data={"key": MASTER_KEY, "csrf": "forged"})).status_code == 403
    web.cookies.clear()
    assert (await web.post("/portal/login", data={"key": MASTER_KEY, "csrf": "forged"})).status_code == 403


async def test_a_tampered_or_foreign_cookie_is_no_session(admin_web: httpx.AsyncClient, portal_gw: Gateway) -> None:
    value = admin_web.cookies[COOKIE]
    payload, _, signature = value.rpartition(".")
    for forged in (payload + "." + signature[::-1], value.replace(value[3], "A" if value[3] != "A" else "B", 1), "x"):
        admin_web.cookies.set(COOKIE, forged, path="/portal")
        assert (await admin_web.get("/portal/overview")).headers.get("location") == "/portal/login"
        assert (await admin_web.post("/portal/keys", data={"name": "x", "csrf": "x"})).status_code == 403
    other = type(portal_gw.portal)(portal_gw.portal.admin, "another-master-key")  # another gateway's secret
    admin_web.cookies.set(COOKIE, other.codec.dumps(portal_gw.portal.codec.loads(value) or _fail()), path="/portal")
    assert (await admin_web.get("/portal/overview")).status_code == 303


def _fail() -> object:
    raise AssertionError("the session cookie did not load")


async def test_every_post_needs_the_sessions_csrf_token(admin_web: httpx.AsyncClient, portal_gw: Gateway) -> None:
    assert (await admin_web.post("/portal/keys", data={"name": "no-token"})).status_code == 403
    refused = await admin_web.post("/portal/keys", data={"name": "bad-token", "csrf": "0" * 32})
    assert refused.status_code == 403 and "security token" in refused.text
    assert (await admin_web.post("/portal/logout")).status_code == 403
    assert await portal_gw.portal.admin.list_keys() == []


async def test_logout_ends_the_session(admin_web: httpx.AsyncClient) -> None:
    page = await admin_web.get("/portal/keys")
    response = await admin_web.post("/portal/logout", data={"csrf": csrf_of(page.text)})
    assert (response.status_code, response.headers["location"]) == (303, "/portal/login")
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert (await admin_web.get("/portal/keys")).headers["location"] == "/portal/login"


# admin users


PASSWORD = "correct horse battery staple"


async def log_in_user(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    page = await client.get("/portal/login")
    return await client.post("/portal/login", data={"csrf": csrf_of(page.text), "user": name, "key": password})


async def test_an_admin_user_logs_in_with_a_name_and_a_password(portal_gw: Gateway, web: httpx.AsyncClient) -> None:
    assert portal_gw.portal.users is not None
    user = await portal_gw.portal.users.create("olivia", PASSWORD)
    response = await log_in_user(web, "olivia", PASSWORD)
    assert (response.status_code, response.headers["location"]) == (303, "/portal/overview")
    assert PASSWORD not in response.headers["set-cookie"]
    session = portal_gw.portal.codec.loads(web.cookies[COOKIE])
    assert session is not None and (session.role, session.user_id, session.user) == ("admin", user.id, "olivia")
    overview = await web.get("/portal/overview")
    assert overview.status_code == 200
    assert '<span class="who">olivia <span class="role">admin</span></span>' in overview.text
    made = await web.post("/portal/teams", data={"csrf": csrf_of(overview.text), "name": "by-olivia"})
    assert made.headers["location"] == "/portal/teams?done=created"  # an operator's session, CSRF and all
    web.cookies.clear()
    master = await log_in(web, MASTER_KEY)  # the master key's session names no user
    assert master.status_code == 303
    assert "operator (master key)" in (await web.get("/portal/overview")).text


async def test_a_wrong_password_and_an_unknown_user_are_refused_alike(
    portal_gw: Gateway, web: httpx.AsyncClient
) -> None:
    assert portal_gw.portal.users is not None
    await portal_gw.portal.users.create("olivia", PASSWORD)
    wrong = await log_in_user(web, "olivia", PASSWORD + "!")
    unknown = await log_in_user(web, "nobody", PASSWORD)
    empty = await log_in_user(web, "olivia", "")
    for refused in (wrong, unknown):
        assert refused.status_code == 401
        assert '<p class="error" role="alert">That user name and password are not valid here.</p>' in refused.text
    assert csrf_of(wrong.text) == csrf_of(unknown.text)  # the same visitor's page, but for the name typed
    assert wrong.text.replace('value="olivia"', 'value="nobody"') == unknown.text
    assert empty.status_code == 401
    assert (await web.get("/portal/overview")).headers["location"] == "/portal/login"
    for _ in range(7):  # the failures count against the address like a wrong key's
        assert (await log_in_user(web, "nobody", PASSWORD)).status_code == 401
    assert (await log_in_user(web, "olivia", PASSWORD)).status_code == 429


async def test_a_deleted_users_session_ends(portal_gw: Gateway, web: httpx.AsyncClient) -> None:
    users = portal_gw.portal.users
    assert users is not None
    await users.create("olivia", PASSWORD)
    await log_in_user(web, "olivia", PASSWORD)
    page = await web.get("/portal/keys")
    assert page.status_code == 200
    await users.delete("olivia")
    assert (await web.get("/portal/keys")).headers["location"] == "/portal/login"
    refused = await web.post("/portal/keys", data={"csrf": csrf_of(page.text), "name": "late"})
    assert refused.status_code == 403 and "Your session has ended" in refused.text
    assert await portal_gw.portal.admin.list_keys() == []
    assert (await log_in_user(web, "olivia", PASSWORD)).status_code == 401
    # a new password ends the sessions of the old one too
    await users.create("pat", PASSWORD)
    await log_in_user(web, "pat", PASSWORD)
    assert (await web.get("/portal/keys")).status_code == 200
    await users.set_password("pat", PASSWORD + " two")
    assert (await web.get("/portal/keys")).headers["location"] == "/portal/login"


# the key holder


async def test_a_key_holder_sees_only_its_own_page(portal_gw: Gateway, web: httpx.AsyncClient) -> None:
    key, secret = await portal_gw.portal.admin.create_key("holder", budgets=[])
    await portal_gw.tenancy.cache.refresh()
    assert await call(web, secret) == 200
    await portal_gw.tenancy.writer.flush()
    response = await log_in(web, secret)
    assert (response.status_code, response.headers["location"]) == (303, "/portal/me")
    assert key.id in str(portal_gw.portal.codec.loads(web.cookies[COOKIE]))
    assert secret not in response.headers["set-cookie"]
    me = await web.get("/portal/me")
    assert me.status_code == 200 and "holder" in me.text and "claude-sonnet-4-6" in me.text
    assert 'href="/portal/keys"' not in me.text  # no operator's nav
    for path in ("/portal/overview", "/portal/keys", f"/portal/keys/{key.id}", "/portal/teams", "/portal/providers"):
        assert (await web.get(path)).status_code == 403, path
    refused = await web.post(f"/portal/keys/{key.id}/revoke", data={"csrf": csrf_of(me.text)})
    assert refused.status_code == 403
    assert (await portal_gw.portal.admin.show_key(key.id)).revoked_at is None


async def test_a_holders_session_ends_when_the_key_is_rotated_or_revoked(
    portal_gw: Gateway, web: httpx.AsyncClient
) -> None:
    admin = portal_gw.portal.admin
    key, secret = await admin.create_key("rotated")
    await log_in(web, secret)
    assert (await web.get("/portal/me")).status_code == 200
    await admin.rotate_key(key.id)
    assert (await web.get("/portal/me")).headers["location"] == "/portal/login"
    assert (await log_in(web, secret)).status_code == 401  # the old secret
    other, secret = await admin.create_key("revoked")
    await log_in(web, secret)
    await admin.revoke_key(other.id)
    assert (await web.get("/portal/me")).headers["location"] == "/portal/login"
    assert (await log_in(web, secret)).status_code == 401


async def test_the_operators_pages_are_not_the_holders(admin_web: httpx.AsyncClient) -> None:
    assert (await admin_web.get("/portal/me")).status_code == 403


# keys and teams through the portal, checked at the gateway


async def test_create_use_edit_rotate_revoke_a_key(admin_web: httpx.AsyncClient, portal_gw: Gateway) -> None:
    key_id, secret = await create_key(admin_web, name="alice", budget_5h_usd="0.5", budget_month_usd="10", rpm="60")
    assert await call(admin_web, secret) == 200
    key = await portal_gw.portal.admin.show_key(key_id)
    assert [(b.window, b.usd) for b in key.budgets] == [("5h", 0.5), ("month", 10.0)]
    assert key.rpm == 60
    page = await admin_web.get(f"/portal/keys/{key_id}")
    assert page.status_code == 200 and secret not in page.text

    edit = {"csrf": csrf_of(page.text), "name": "alice", "budget_7d_usd": "3", "tpm": "1000", "models": "claude-*"}
    saved = await admin_web.post(f"/portal/keys/{key_id}", data=edit)
    assert (saved.status_code, saved.headers["location"]) == (303, f"/portal/keys/{key_id}?done=saved")
    key = await portal_gw.portal.admin.show_key(key_id)
    assert ([(b.window, b.usd) for b in key.budgets], key.rpm, key.tpm, key.models) == (
        [("7d", 3.0)],
        None,
        1000,
        ("claude-*",),
    )
    assert "Saved." in (await admin_web.get(saved.headers["location"])).text

    bad = await admin_web.post(f"/portal/keys/{key_id}", data={**edit, "rpm": "0"})
    assert bad.status_code == 422 and "rpm must be a whole number of at least 1" in bad.text

    rotated = await admin_web.post(f"/portal/keys/{key_id}/rotate", data={"csrf": edit["csrf"]})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new_secret = SECRET.search(rotated.text)
    assert new_secret is not None and new_secret.group(0) != secret
    assert await call(admin_web, secret) == 401
    assert await call(admin_web, new_secret.group(0)) == 200

    revoked = await admin_web.post(f"/portal/keys/{key_id}/revoke", data={"csrf": edit["csrf"]})
    assert revoked.headers["location"] == f"/portal/keys/{key_id}?done=revoked"
    assert await call(admin_web, new_secret.group(0)) == 401
    again = await admin_web.post(f"/portal/keys/{key_id}/rotate", data={"csrf": edit["csrf"]})
    assert again.status_code == 409 and "is revoked" in again.text


async def test_a_quarantined_key_is_released(admin_web: httpx.AsyncClient, portal_gw: Gateway) -> None:
    key_id, secret = await create_key(admin_web, name="bob")
    await portal_gw.tenancy.quarantine(await portal_gw.portal.admin.show_key(key_id), "too many addresses")
    page = await admin_web.get(f"/portal/keys/{key_id}")
    assert "too many addresses" in page.text and "Release from quarantine" in page.text
    assert await call(admin_web, secret) != 200
    released = await admin_web.post(f"/portal/keys/{key_id}/release", data={"csrf": csrf_of(page.text)})
    assert released.headers["location"] == f"/portal/keys/{key_id}?done=released"
    assert (await portal_gw.portal.admin.show_key(key_id)).quarantined_at is None
    assert await call(admin_web, secret) == 200


async def test_form_errors_are_shown_not_raised(admin_web: httpx.AsyncClient) -> None:
    page = await admin_web.get("/portal/keys")
    token = csrf_of(page.text)
    nameless = await admin_web.post("/portal/keys", data={"csrf": token, "name": " "})
    assert nameless.status_code == 422 and "a key needs a name" in nameless.text
    await create_key(admin_web, name="carol")
    twice = await admin_web.post("/portal/keys", data={"csrf": token, "name": "carol"})
    assert twice.status_code == 409
    no_team = await admin_web.post("/portal/keys", data={"csrf": token, "name": "dave", "team": "nope"})
    assert no_team.status_code == 404
    amount = await admin_web.post("/portal/keys", data={"csrf": token, "name": "erin", "budget_5h_usd": "lots"})
    assert amount.status_code == 422 and "budget_5h_usd" in amount.text
    assert (await admin_web.get("/portal/keys/key_nope")).status_code == 404


async def test_teams_are_created_edited_and_deleted(admin_web: httpx.AsyncClient, portal_gw: Gateway) -> None:
    page = await admin_web.get("/portal/teams")
    token = csrf_of(page.text)
    created = await admin_web.post("/portal/teams", data={"csrf": token, "name": "research", "budget_month_usd": "50"})
    assert created.headers["location"] == "/portal/teams?done=created"
    team = await portal_gw.portal.admin.show_team("research")
    assert [(b.window, b.usd) for b in team.budgets] == [("month", 50.0)]
    key_id, _ = await create_key(admin_web, name="member", team=team.id)
    shown = await admin_web.get(f"/portal/teams/{team.id}")
    assert shown.status_code == 200 and "member" in shown.text and "Delete team" not in shown.text
    edit = {"csrf": token, "name": "research", "rpm": "30", "budget_month_usd": "40"}
    saved = await admin_web.post(f"/portal/teams/{team.id}", data=edit)
    team = await portal_gw.portal.admin.show_team(team.id)
    assert saved.status_code == 303 and (team.rpm, [(b.window, b.usd) for b in team.budgets]) == (30, [("month", 40.0)])
    refused = await admin_web.post(f"/portal/teams/{team.id}/delete", data={"csrf": token})
    assert refused.status_code == 409
    key_page = await admin_web.get(f"/portal/keys/{key_id}")
    assert "Month" in key_page.text and "(team)" in key_page.text  # the team's window on the key's page
    await portal_gw.portal.admin.update_key(key_id, team=None)
    deleted = await admin_web.post(f"/portal/teams/{team.id}/delete", data={"csrf": token})
    assert deleted.headers["location"] == "/portal/teams?done=deleted"
    assert await portal_gw.portal.admin.list_teams() == []


# every page with real data


@pytest.mark.parametrize("range_", ["24h", "7d", "30d", "bogus"])
async def test_every_page_renders_with_traffic(admin_web: httpx.AsyncClient, portal_gw: Gateway, range_: str) -> None:
    key_id, secret = await create_key(admin_web, name="busy", budget_5h_usd="1")
    for _ in range(3):
        assert await call(admin_web, secret) == 200
    assert await call(admin_web, secret, "dead-model") == 502
    await portal_gw.tenancy.writer.flush()

    overview = await admin_web.get(f"/portal/overview?range={range_}")
    assert overview.status_code == 200
    assert re.search(r'id="stat-requests">4<', overview.text)
    assert "25%" in overview.text  # the error rate: one of four
    assert f'href="/portal/keys/{key_id}">busy<' in overview.text
    assert overview.text.count('<rect class="bar"') == 2  # one bucket of requests, one of spend
    assert 'aria-current="true">' + (range_ if range_ != "bogus" else "24h") + "<" in overview.text

    keys = await admin_web.get("/portal/keys")
    assert keys.status_code == 200 and 'data-key="busy"' in keys.text
    key = await admin_web.get(f"/portal/keys/{key_id}")
    assert key.status_code == 200
    assert key.text.count("<tr>") >= 5  # its recent requests
    assert re.search(r'data-window="key-5h">.*?class="num pct">(\d+\.\d)%', key.text, re.S)
    providers = await admin_web.get("/portal/providers")
    assert providers.status_code == 200
    row = re.search(r"<td>dead-model</td>.*?</tr>", providers.text, re.S)
    assert row is not None and "100%" in row.group(0)  # its error rate over 24 h
    assert "anth#0" in providers.text
    assert (await admin_web.get("/portal/teams")).status_code == 200
    assert (await admin_web.get("/portal/static/portal.css")).status_code == 200
    assert (await admin_web.get("/portal/static/portal.js")).status_code == 200


async def test_behind_a_trusted_proxy_the_forwarded_address_and_scheme_count(portal_gw: Gateway) -> None:
    from starlette.applications import Starlette

    from modelgate.portal import Portal

    portal = Portal(portal_gw.portal.admin, MASTER_KEY, trusted_proxies=("127.0.0.0/8",))
    transport = httpx.ASGITransport(app=Starlette(routes=portal.routes()), client=("127.0.0.1", 5000))

    async def attempt(client: httpx.AsyncClient, key: str, address: str) -> httpx.Response:
        headers = {"x-forwarded-for": address, "x-forwarded-proto": "https"}
        page = await client.get("/portal/login", headers=headers)
        assert "Secure" in page.headers["set-cookie"]
        return await client.post("/portal/login", data={"csrf": csrf_of(page.text), "key": key}, headers=headers)

    # The proxy speaks HTTPS to the browser (the Secure cookie comes back), plain HTTP to the gateway.
    async with httpx.AsyncClient(transport=transport, base_url="https://gw") as client:
        for _ in range(10):
            assert (await attempt(client, "wrong", "203.0.113.9")).status_code == 401
        assert (await attempt(client, MASTER_KEY, "203.0.113.9")).status_code == 429
        assert (await attempt(client, MASTER_KEY, "203.0.113.10")).status_code == 303
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as plain:
        page = await plain.get("/portal/login", headers={"x-forwarded-proto": "https"})
        assert "Secure" in page.headers["set-cookie"]  # the scheme the browser used, from the trusted proxy
    untrusted = Portal(portal_gw.portal.admin, MASTER_KEY)
    transport = httpx.ASGITransport(app=Starlette(routes=untrusted.routes()), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        page = await client.get("/portal/login", headers={"x-forwarded-proto": "https"})
        assert "Secure" not in page.headers["set-cookie"]


async def test_the_portal_is_mounted_after_the_model_routes(portal_gw: Gateway) -> None:
    paths = [getattr(route, "path", "") for route in portal_gw.routes()]
    portal = paths.index("/portal")
    assert paths[portal + 1] == "/portal"  # the Mount, right after the bare path
    for model_path in ("/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1/usage", "/healthz"):
        assert paths.index(model_path) < portal, model_path
