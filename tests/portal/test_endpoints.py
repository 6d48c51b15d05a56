"""The portal's Endpoints pages in process: made, edited, switched and deleted through the forms,
each change checked at the gateway's own endpoint routes; an endpoint's traffic on its page;
its base URLs and the client recipes filled in with them."""

from __future__ import annotations

import html
import re

import httpx

from modelgate.app import Gateway
from modelgate.recipes import KEY, recipe
from tests.pipeline.helpers import anthropic_body
from tests.portal.conftest import csrf_of, log_in
from tests.portal.test_app import call, create_key

BASE = "http://gw"  # the in-process client's


async def through(web: httpx.AsyncClient, endpoint_id: str, secret: str, model: str = "claude-sonnet-4-6") -> int:
    """A Messages request through the endpoint's Anthropic base URL: its status."""
    headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    response = await web.post(f"/v1/{endpoint_id}/anthropic/v1/messages", json=anthropic_body(model), headers=headers)
    return response.status_code


def snippet(page: str, name: str) -> str:
    """The text of a recipe as the page shows it."""
    found = re.search(rf'data-recipe="{re.escape(name)}">.*?<pre id="[^"]+"><code>(.*?)</code></pre>', page, re.S)
    assert found is not None, name
    return html.unescape(found.group(1))


async def create_endpoint(web: httpx.AsyncClient, **fields: str | list[str]) -> str:
    page = await web.get("/portal/endpoints")
    response = await web.post("/portal/endpoints", data={"csrf": csrf_of(page.text), **fields})
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/portal/endpoints/(ep_[a-z0-9]{12})\?done=created", response.headers["location"])
    assert found is not None, response.headers["location"]
    return found.group(1)


async def test_an_endpoint_is_made_used_and_shown_with_its_traffic(
    admin_web: httpx.AsyncClient, portal_gw: Gateway
) -> None:
    alice_id, alice = await create_key(admin_web, name="alice")
    bob_id, bob = await create_key(admin_web, name="bob")
    carol_id, _ = await create_key(admin_web, name="carol")
    await portal_gw.portal.admin.revoke_key(carol_id)
    form = await admin_web.get("/portal/endpoints")
    assert f'<option value="{alice_id}">alice</option>' in form.text
    assert carol_id not in form.text  # a revoked key is not offered
    endpoint_id = await create_endpoint(
        admin_web,
        name="billing-bot",
        description="the billing assistant",
        keys=[alice_id, bob_id],
        models="claude-*, gpt-4o",
        log_bodies="on",
    )
    made = await portal_gw.tenancy.endpoint_store.get(endpoint_id)
    assert (made.name, made.description, made.keys, made.models, made.log_bodies) == (
        "billing-bot",
        "the billing assistant",
        (alice_id, bob_id),
        ("claude-*", "gpt-4o"),
        True,
    )
    # the refresh ran: the gateway serves it at once, with its restrictions
    assert await through(admin_web, endpoint_id, alice) == 200
    assert await through(admin_web, endpoint_id, alice) == 200
    assert await through(admin_web, endpoint_id, bob, "dead-model") == 403  # not an allowed model
    assert await through(admin_web, endpoint_id, bob, "gpt-4o") == 200
    carol = (await create_key(admin_web, name="carol-2"))[1]
    assert await through(admin_web, endpoint_id, carol) == 403  # not one of its keys
    assert await call(admin_web, alice) == 200  # the plain base URL: not the endpoint's traffic
    await portal_gw.tenancy.writer.flush()
    rows = await portal_gw.tenancy.ledger.recent(endpoint_id=endpoint_id)
    assert [(r.key_id, r.model, r.status) for r in rows] == [
        (bob_id, "gpt-4o", 200),
        (bob_id, "dead-model", 403),
        (alice_id, "claude-sonnet-4-6", 200),
        (alice_id, "claude-sonnet-4-6", 200),
    ]  # carol's refusal (a key the endpoint does not list) is refused at admission, with no ledger row

    page = await admin_web.get(f"/portal/endpoints/{endpoint_id}?done=created")
    assert page.status_code == 200
    text = page.text
    assert "Endpoint created" in text and "the billing assistant" in text
    assert '<span class="chip">alice</span><span class="chip">bob</span>' in text
    assert f'<option value="{alice_id}" selected>alice</option>' in text  # the edit form, as stored
    for client in ("anthropic", "openai", "gemini"):
        assert f'<code id="url-{client}" class="url">{BASE}/v1/{endpoint_id}/{client}</code>' in text
        assert f'data-copy="#url-{client}"' in text
    assert re.search(r'id="stat-requests">4<', text) and "25%" in text  # the error rate: one of four
    assert text.count('<rect class="bar"') == 2  # one bucket of requests, one of spend
    assert f'href="/portal/keys/{alice_id}">alice<' in text  # the top keys
    assert "claude-sonnet-4-6" in text  # the top models and the recent requests

    # the client recipes: docs/clients.md's endpoint forms with this endpoint's URL, the key a placeholder
    expected = recipe("anthropic-sdk@endpoint").fill(BASE, endpoint_id=endpoint_id)
    assert snippet(text, "anthropic-sdk@endpoint") == expected
    assert f'base_url="{BASE}/v1/{endpoint_id}/anthropic"' in expected
    assert 'data-recipe="codex-env"' in text and 'data-recipe="codex-config@endpoint"' in text
    assert KEY in text and alice not in text and bob not in text
    assert "ep_abc123def456" not in text and "127.0.0.1:8080" not in text

    listing = await admin_web.get("/portal/endpoints")
    row = re.search(r'<tr data-endpoint="billing-bot">.*?</tr>', listing.text, re.S)
    assert row is not None and endpoint_id in row.group(0) and ">active<" in row.group(0)
    assert "every key" not in row.group(0) and '<span class="chip">claude-*</span>' in row.group(0)
    overview = await admin_web.get("/portal/overview")
    assert re.search(r'id="stat-requests">5<', overview.text)  # everyone's: the endpoint's four and the plain one
    assert f'href="/portal/endpoints/{endpoint_id}">billing-bot<' in overview.text  # the top endpoints


async def test_an_endpoint_is_edited_disabled_enabled_and_deleted(
    admin_web: httpx.AsyncClient, portal_gw: Gateway
) -> None:
    key_id, secret = await create_key(admin_web, name="dana")
    endpoint_id = await create_endpoint(admin_web, name="eval")
    assert await through(admin_web, endpoint_id, secret) == 200
    page = await admin_web.get(f"/portal/endpoints/{endpoint_id}")
    token = csrf_of(page.text)

    edit = {"csrf": token, "name": "eval-runner", "description": "", "models": "gpt-*"}
    saved = await admin_web.post(f"/portal/endpoints/{endpoint_id}", data=edit)
    assert (saved.status_code, saved.headers["location"]) == (303, f"/portal/endpoints/{endpoint_id}?done=saved")
    edited = await portal_gw.tenancy.endpoint_store.get(endpoint_id)
    assert (edited.name, edited.models, edited.keys, edited.log_bodies) == ("eval-runner", ("gpt-*",), (), False)
    assert await through(admin_web, endpoint_id, secret) == 403  # claude-sonnet-4-6 is no longer allowed

    disabled = await admin_web.post(f"/portal/endpoints/{endpoint_id}/disable", data={"csrf": token})
    assert disabled.headers["location"] == f"/portal/endpoints/{endpoint_id}?done=disabled"
    assert await through(admin_web, endpoint_id, secret) == 404
    shown = await admin_web.get(disabled.headers["location"])
    assert ">disabled<" in shown.text and "answer 404" in shown.text and "Enable" in shown.text
    enabled = await admin_web.post(f"/portal/endpoints/{endpoint_id}/enable", data={"csrf": token})
    assert enabled.headers["location"] == f"/portal/endpoints/{endpoint_id}?done=enabled"
    assert await through(admin_web, endpoint_id, secret) == 403  # served again (and the model rule holds)

    deleted = await admin_web.post(f"/portal/endpoints/{endpoint_id}/delete", data={"csrf": token})
    assert deleted.headers["location"] == "/portal/endpoints?done=deleted"
    assert await portal_gw.tenancy.endpoint_store.list_all() == []
    assert await through(admin_web, endpoint_id, secret) == 404
    assert (await admin_web.get(f"/portal/endpoints/{endpoint_id}")).status_code == 404
    gone = await admin_web.post(f"/portal/endpoints/{endpoint_id}/disable", data={"csrf": token})
    assert gone.status_code == 404
    assert (await portal_gw.portal.admin.show_key(key_id)).revoked_at is None  # the key outlives the endpoint


async def test_endpoint_forms_check_their_fields_and_their_token(
    admin_web: httpx.AsyncClient, portal_gw: Gateway
) -> None:
    page = await admin_web.get("/portal/endpoints")
    token = csrf_of(page.text)
    assert (await admin_web.post("/portal/endpoints", data={"name": "no-token"})).status_code == 403
    nameless = await admin_web.post("/portal/endpoints", data={"csrf": token, "name": " "})
    assert nameless.status_code == 422 and "an endpoint needs a name" in nameless.text
    await create_endpoint(admin_web, name="twice")
    twice = await admin_web.post("/portal/endpoints", data={"csrf": token, "name": "twice"})
    assert twice.status_code == 409 and "already exists" in twice.text
    unknown = await admin_web.post("/portal/endpoints", data={"csrf": token, "name": "x", "keys": "key_nope"})
    assert unknown.status_code == 404 and "key_nope" in unknown.text
    assert [e.name for e in await portal_gw.tenancy.endpoint_store.list_all()] == ["twice"]


async def test_a_key_holder_gets_no_endpoint_page(portal_gw: Gateway, web: httpx.AsyncClient) -> None:
    _, secret = await portal_gw.portal.admin.create_key("holder")
    await log_in(web, secret)
    assert (await web.get("/portal/endpoints")).status_code == 403
    me = await web.get("/portal/me")
    refused = await web.post("/portal/endpoints", data={"csrf": csrf_of(me.text), "name": "mine"})
    assert refused.status_code == 403
    assert await portal_gw.tenancy.endpoint_store.list_all() == []


async def test_the_base_urls_start_with_the_public_url_else_what_the_browser_used(portal_gw: Gateway) -> None:
    from starlette.applications import Starlette

    from modelgate.admin.endpoints import EndpointAdmin
    from modelgate.portal import Portal

    master = "mg-another-master-key"
    endpoint = await portal_gw.tenancy.endpoint_store.create("urls")
    service = EndpointAdmin(portal_gw.tenancy.endpoint_store, portal_gw.tenancy.tenants)

    async def anthropic_url(portal: Portal, base: str, **headers: str) -> str:
        transport = httpx.ASGITransport(app=Starlette(routes=portal.routes()), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            assert (await log_in(client, master)).status_code == 303
            page = await client.get(f"/portal/endpoints/{endpoint.id}", headers=headers)
        found = re.search(r'<code id="url-anthropic" class="url">([^<]+)</code>', page.text)
        assert found is not None, page.text
        return found.group(1)

    public = Portal(portal_gw.portal.admin, master, endpoints=service, public_url="https://gw.example.com/")
    assert await anthropic_url(public, "http://10.0.0.5:8080") == f"https://gw.example.com/v1/{endpoint.id}/anthropic"
    plain = Portal(portal_gw.portal.admin, master, endpoints=service)
    assert await anthropic_url(plain, "http://10.0.0.5:8080") == f"http://10.0.0.5:8080/v1/{endpoint.id}/anthropic"
    proxied = Portal(portal_gw.portal.admin, master, endpoints=service, trusted_proxies=("127.0.0.0/8",))
    forwarded = await anthropic_url(proxied, "http://gw.example.com", **{"x-forwarded-proto": "https"})
    assert forwarded == f"https://gw.example.com/v1/{endpoint.id}/anthropic"
    none = Portal(portal_gw.portal.admin, master)  # a portal without the endpoint service
    transport = httpx.ASGITransport(app=Starlette(routes=none.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        await log_in(client, master)
        assert (await client.get("/portal/endpoints")).status_code == 404
