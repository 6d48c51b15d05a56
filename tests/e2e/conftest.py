"""The end-to-end tests' shared assertion helpers get pytest's assertion rewriting too."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("tests.e2e.harness")
