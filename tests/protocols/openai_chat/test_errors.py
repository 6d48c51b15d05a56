"""Upstream error bodies → typed errors: golden fixtures in ``fixtures/errors``."""

from __future__ import annotations

import orjson
import pytest

from modelgate.errors import UpstreamHTTPError
from modelgate.protocols import openai_chat as codec

from .helpers import as_json, check, load, names


@pytest.mark.parametrize("name", names("errors"))
def test_error_from_upstream_golden(name: str) -> None:
    case = load("errors", name)
    body = case["body"] if isinstance(case["body"], str) else orjson.dumps(case["body"]).decode()
    err = codec.error_from_upstream(case["status"], body.encode())
    assert isinstance(err, UpstreamHTTPError) and err.raw == body.encode()
    check("errors", name, as_json(err), key="expected")
