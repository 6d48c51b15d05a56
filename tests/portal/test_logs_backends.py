"""The request log's pages on both stores (SQLite; PostgreSQL with Redis), with real traffic: each
query they make (the filtered list and its cursor, a trace, sessions, the TTFT histogram) runs on
each dialect through the portal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.conftest import MASTER_KEY
from tests.pipeline.helpers import anthropic_body, asgi_client
from tests.policy.conftest import backend  # noqa: F401  (the fixture: embedded, postgres+redis)
from tests.policy.tenancy_helpers import tenant_gateway
from tests.portal.conftest import log_in
from tests.portal.test_app import create_key


@pytest.fixture
async def gw(fake: FakeUpstream, backend: dict[str, Any]) -> AsyncIterator[Gateway]:  # noqa: F811
    async with tenant_gateway(fake, backend) as gateway:
        yield gateway


async def test_the_log_pages_on_each_store(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    async with asgi_client(gw) as web:
        assert (await log_in(web, MASTER_KEY)).status_code == 303
        name = f"log-{gw.tenancy.database.dialect}"
        key_id, secret = await create_key(web, name=name)
        headers = {"x-api-key": secret, "anthropic-version": "2023-06-01", "x-modelgate-session-id": f"s-{name}"}
        for body in (anthropic_body("claude-sonnet-4-6"), anthropic_body("claude-sonnet-4-6", stream=True)):
            assert (await web.post("/v1/messages", json=body, headers=headers)).status_code == 200
        failed = await web.post("/v1/messages", json=anthropic_body("dead-model"), headers=headers)
        assert failed.status_code == 502
        await gw.tenancy.writer.flush()

        listed = await web.get("/portal/logs", params={"key": name, "range": "1h"})
        assert listed.status_code == 200
        rows = re.findall(r'data-request="([^"]+)"', listed.text)
        assert len(rows) == 3
        errors = await web.get("/portal/logs", params={"key": key_id, "errors": "1", "status": "5xx"})
        assert re.findall(r'data-request="([^"]+)"', errors.text) == rows[:1]
        monkeypatch.setattr("modelgate.portal.logs.PAGE", 2)
        first = await web.get("/portal/logs", params={"key": name})
        assert re.findall(r'data-request="([^"]+)"', first.text) == rows[:2]
        link = re.search(r'rel="next" href="([^"]+)"', first.text)
        assert link is not None
        older = await web.get(link.group(1).replace("&amp;", "&"))
        assert re.findall(r'data-request="([^"]+)"', older.text) == rows[2:]
        trace = await web.get(f"/portal/logs/{rows[0]}")
        assert trace.status_code == 200 and 'id="failure"' in trace.text and "dead-model" in trace.text
        sessions = await web.get("/portal/sessions")
        assert re.search(rf'<tr data-session="s-{name}">.*?<td class="num turns">3</td>', sessions.text, re.S)
        one = await web.get(f"/portal/sessions/s-{name}", params={"key": key_id})
        assert re.findall(r'data-turn="(\d)"', one.text) == ["1", "2", "3"]
        overview = await web.get("/portal/overview")
        assert overview.status_code == 200 and "No streamed request in this range." not in overview.text
        assert not re.search(r'id="stat-ttft-p50">—<', overview.text)
