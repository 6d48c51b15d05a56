from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from modelgate.testing.pytest_plugin import fake_upstream, fake_upstream_server  # noqa: F401  (fixtures)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
