"""Every portal page on both stores: the embedded defaults (SQLite, counters in process) and a
fleet's (PostgreSQL, Redis), with real traffic through a key and an endpoint, so each query a
page makes runs on each dialect."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.app import Gateway
from modelgate.store import Budget
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import asgi_client
from tests.policy.conftest import backend  # noqa: F401  (the fixture: embedded, postgres+redis)
from tests.policy.tenancy_helpers import tenant_gateway
from tests.portal.conftest import log_in
from tests.portal.test_app import call, create_key
from tests.portal.test_endpoints import create_endpoint, through


@pytest.fixture
async def gw(fake: FakeUpstream, backend: dict[str, Any]) -> AsyncIterator[Gateway]:  # noqa: F811
    async with tenant_gateway(fake, backend) as gateway:
        yield gateway


async def test_every_page_renders_on_each_store(gw: Gateway) -> None:
    async with asgi_client(gw) as web:
        assert (await log_in(web, MASTER_KEY)).status_code == 303
        dialect = gw.tenancy.database.dialect
        team = await gw.portal.admin.create_team(f"team-{dialect}", budgets=[Budget("5h", usd=5.0)])
        await gw.tenancy.refresh()
        key_id, secret = await create_key(web, name=f"pages-{dialect}", budget_7d_usd="5", team=team.id)
        endpoint_id = await create_endpoint(web, name=f"app-{dialect}")
        assert await call(web, secret) == 200
        assert await through(web, endpoint_id, secret) == 200
        assert await call(web, secret, "dead-model") == 502
        await gw.tenancy.writer.flush()

        pages = [
            *(f"/portal/overview?range={r}" for r in ("24h", "7d", "30d")),
            "/portal/keys",
            f"/portal/keys/{key_id}",
            "/portal/teams",
            f"/portal/teams/{team.id}",
            "/portal/providers",
            "/portal/endpoints",
            f"/portal/endpoints/{endpoint_id}",
        ]
        for page in pages:
            response = await web.get(page)
            assert response.status_code == 200, (page, response.text[:500])
        overview = await web.get("/portal/overview?range=24h")
        assert re.search(r'id="stat-requests">3<', overview.text)
        team_page = await web.get(f"/portal/teams/{team.id}")
        assert 'data-window="team-5h"' in team_page.text and "nothing spent" not in team_page.text
        endpoint = await web.get(f"/portal/endpoints/{endpoint_id}")
        assert re.search(r'id="stat-requests">1<', endpoint.text)

    async with asgi_client(gw) as holder:
        assert (await log_in(holder, secret)).status_code == 303
        me = await holder.get("/portal/me")
        assert me.status_code == 200 and "7d" in me.text
        assert (await holder.get("/portal/overview")).status_code == 403
