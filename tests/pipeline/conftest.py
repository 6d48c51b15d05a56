"""Fixtures of the pipeline tests: a gateway built in this process, a client over ASGI, and a
record of every settlement."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from modelgate.app import Gateway
from modelgate.testing.runner import FakeUpstream
from tests.pipeline.helpers import (
    REQUEST_LOGGER,
    RequestLogLines,
    Settlements,
    asgi_client,
    record_settlements,
    running_gateway,
)


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Gateway]:
    """A gateway of the shared test config, started; the fake upstream reset."""
    async with running_gateway(fake) as gateway:
        yield gateway


@pytest.fixture
async def ac(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of ``gw`` over ASGI (no socket)."""
    async with asgi_client(gw) as client:
        yield client


@pytest.fixture
def settled(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> Settlements:
    return record_settlements(gw, monkeypatch)


@pytest.fixture
def request_log(caplog: pytest.LogCaptureFixture) -> RequestLogLines:
    """The request log lines written during the test (the logger enabled at INFO)."""
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    return RequestLogLines(caplog)
