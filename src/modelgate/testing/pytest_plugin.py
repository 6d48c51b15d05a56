"""Pytest fixtures for the fake upstream.

Enable with ``pytest_plugins = ["modelgate.testing.pytest_plugin"]`` in a conftest:

* ``fake_upstream_server`` (session): one fake upstream subprocess for the whole run;
* ``fake_upstream`` (function): the same server, reset (no scripts, no recordings,
  start-up config) before each test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelgate.testing.runner import FakeUpstream, run_fake_upstream


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[FakeUpstream]:
    with run_fake_upstream() as fake:
        yield fake


@pytest.fixture
def fake_upstream(fake_upstream_server: FakeUpstream) -> FakeUpstream:
    fake_upstream_server.reset()
    return fake_upstream_server
