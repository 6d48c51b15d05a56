"""Fixtures of the pipeline tests: a gateway built in this process, a client over ASGI, and a
record of every settlement."""

from __future__ import annotations

import logging

import pytest

from modelgate.app import Gateway
from tests.pipeline.helpers import (
    REQUEST_LOGGER,
    RequestLogLines,
    Settlements,
    record_settlements,
)


@pytest.fixture
def settled(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> Settlements:
    return record_settlements(gw, monkeypatch)


@pytest.fixture
def request_log(caplog: pytest.LogCaptureFixture) -> RequestLogLines:
    """The request log lines written during the test (the logger enabled at INFO)."""
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    return RequestLogLines(caplog)
