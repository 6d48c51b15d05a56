"""JSON log lines (``server.log_format: json``): one object per line, each naming the request
it was written for — the request log line and any other line written while serving it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from modelgate.cli import log_config
from modelgate.observability.logs import REQUEST_ID, JSONFormatter, RequestIdFilter
from modelgate.testing.runner import FakeUpstream
from tests.pipeline.helpers import ANTHROPIC_HEADERS, UPSTREAM_KEY, anthropic_body, configured_gateway, provider_config


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The ``modelgate`` loggers written as JSON into a buffer, as ``serve --log-format json`` does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("modelgate")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


async def test_every_line_of_a_request_names_it(fake: FakeUpstream, json_lines: io.StringIO) -> None:
    config = {
        "providers": [provider_config("anth", "anthropic", fake.anthropic_base_url, ("sk-revoked-0000", UPSTREAM_KEY))],
        "models": [{"name": "claude-sonnet-4-6", "provider": "anth"}],
    }
    async with configured_gateway(config) as (_, client):
        first = await client.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
        second = await client.post("/v1/messages", json=anthropic_body("claude-sonnet-4-6"), headers=ANTHROPIC_HEADERS)
    assert first.status_code == second.status_code == 200
    written = lines(json_lines)
    [refused] = [line for line in written if line["logger"] == "modelgate.keys"]
    settled = [line for line in written if line["logger"] == "modelgate.request" and "status" in line]
    assert len(settled) == 2
    assert refused["level"] == "warning" and "anth#0 refused with 401" in str(refused["message"])
    assert str(settled[0]["request_id"]).startswith("req_")
    assert refused["request_id"] == settled[0]["request_id"] != settled[1]["request_id"]
    assert settled[0]["status"] == 200 and settled[0]["attempts"] == 2  # the request log line's fields
    assert settled[0]["message"] == "request settled"
    assert "sk-revoked" not in json_lines.getvalue()


def test_a_line_outside_a_request_has_no_id_and_odd_values_still_format() -> None:
    record = logging.LogRecord("modelgate", logging.ERROR, __file__, 1, "boom %s", (object(),), None)
    RequestIdFilter().filter(record)
    line = orjson.loads(JSONFormatter().format(record))
    assert line["request_id"] is None and line["level"] == "error" and line["message"].startswith("boom <object")
    settled = logging.LogRecord("modelgate.request", logging.INFO, __file__, 1, "status=200", (), None)
    settled.modelgate = {"when": object(), "status": 200}
    line = orjson.loads(JSONFormatter().format(settled))
    assert line["message"] == "request settled" and line["status"] == 200
    assert str(line["when"]).startswith("<object")
    token = REQUEST_ID.set("req_abc")
    try:
        RequestIdFilter().filter(record)
        assert orjson.loads(JSONFormatter().format(record))["request_id"] == "req_abc"
    finally:
        REQUEST_ID.reset(token)


def test_serve_configures_json_or_text_with_the_request_id_filter() -> None:
    as_json, as_text = log_config("info", "json"), log_config("info")
    assert as_json["formatters"]["modelgate"] == {"()": "modelgate.observability.logs.JSONFormatter"}
    assert "format" in as_text["formatters"]["modelgate"]
    for config in (as_json, as_text):
        assert config["handlers"]["modelgate"]["filters"] == ["request_id"]
        assert config["filters"]["request_id"] == {"()": "modelgate.observability.logs.RequestIdFilter"}
