"""Every portal page on both stores: the embedded defaults (SQLite, counters in process) and a
fleet's (PostgreSQL, Redis), with real traffic through a key and an endpoint, so each query a
page makes runs on each dialect."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.app import Gateway
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
        key_id, secret = await create_key(web, name=f"pages-{gw.tenancy.database.dialect}", budget_7d_usd="5")
        endpoint_id = await create_endpoint(web, name=f"app-{gw.tenancy.database.dialect}")
        assert await call(web, secret) == 200
        assert await through(web, endpoint_id, secret) == 200
        assert await call(web, secret, "dead-model") == 502
        await gw.tenancy.writer.flush()

        pages = [
            *(f"/portal/overview?range={r}" for r in ("24h", "7d", "30d")),
            "/portal/keys",
            f"/portal/keys/{key_id}",
            "/portal/teams",
            "/portal/providers",
            "/portal/endpoints",
            f"/portal/endpoints/{endpoint_id}",
        ]
        for page in pages:
            response = await web.get(page)
            assert response.status_code == 200, (page, response.text[:500])
        overview = await web.get("/portal/overview?range=24h")
        assert re.search(r'id="stat-requests">3<', overview.text)
        endpoint = await web.get(f"/portal/endpoints/{endpoint_id}")
        assert re.search(r'id="stat-requests">1<', endpoint.text)

    async with asgi_client(gw) as holder:
        assert (await log_in(holder, secret)).status_code == 303
        me = await holder.get("/portal/me")
        assert me.status_code == 200 and "7d" in me.text
        assert (await holder.get("/portal/overview")).status_code == 403
