"""The fake upstream for the codec tests that read real answers (the answer taps)."""

from __future__ import annotations

from modelgate.testing.pytest_plugin import fake_upstream, fake_upstream_server  # noqa: F401  (fixtures)
