"""OpenAI's documented ``response`` objects → IR: golden fixtures in ``fixtures/upstream_responses``."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.errors import UpstreamHTTPError
from modelgate.protocols.openai_responses import decode_response

from .helpers import as_json, check, load, names


@pytest.mark.parametrize("name", names("upstream_responses"))
def test_upstream_response_golden(name: str) -> None:
    body = load("upstream_responses", name)["response"]
    try:
        actual: Any = decode_response(body)
    except UpstreamHTTPError as e:
        actual = e
    check("upstream_responses", name, as_json(actual), key="expected")
