"""The request log line: its fields, their logfmt rendering, and when it is written at all."""

from __future__ import annotations

import logging
import re

import pytest

from modelgate import ir
from modelgate.errors import AuthenticationFailed, NotFound, UpstreamHTTPError
from modelgate.errors import ErrorKind as Kind
from modelgate.observability import request_log
from modelgate.observability.request_log import LOGGER, RequestLog, format_fields, request_fields
from modelgate.pipeline.context import Attempt, Call, Operation, RequestContext
from modelgate.policy.auth import Principal


def bare() -> RequestContext:
    return RequestContext("req_1", "anthropic", "messages")


def served() -> RequestContext:
    ctx = RequestContext("req_2", "openai_chat", "chat")
    ctx.caller = Principal("master", "master")
    ctx.call = Call(Operation.GENERATE, b"{}", {}, "sonnet", True)
    first = Attempt("anth", "claude-sonnet-4-6", "anth#0", False, status=529, latency=0.25)
    last = Attempt("anth", "claude-sonnet-4-6", "anth#1", True, status=200, latency=0.0123456)
    last.upstream_request_id = "req_up"
    ctx.attempts = [first, last]
    ctx.status = 200
    ctx.duration = 0.5
    ctx.first_byte = 0.1234567
    ctx.usage = ir.Usage(
        input_tokens=10, output_tokens=20, cache_read_tokens=3, cache_write_tokens=4, reasoning_tokens=5
    )
    ctx.ended = True
    ctx.stop_reason = "end_turn"
    return ctx


def test_the_fields_of_a_request_that_got_nowhere() -> None:
    assert request_fields(bare()) == {
        "request_id": "req_1",
        "door": "anthropic",
        "endpoint": "messages",
        "caller": None,
        "model": None,
        "served": None,
        "provider": None,
        "key": None,
        "path": None,
        "stream": None,
        "status": None,
        "attempts": 0,
        "latency_ms": None,
        "ttfb_ms": None,
        "upstream_ms": None,
        "upstream_request_id": None,
        "ended": False,
        "stop": None,
    }


def test_the_fields_of_a_served_request() -> None:
    fields = request_fields(served())
    assert fields == {
        "request_id": "req_2",
        "door": "openai_chat",
        "endpoint": "chat",
        "caller": "master",
        "model": "sonnet",
        "served": "claude-sonnet-4-6",
        "provider": "anth",
        "key": "anth#1",  # the last attempt: the one that served
        "path": "passthrough",
        "stream": True,
        "status": 200,
        "attempts": 2,
        "latency_ms": 500.0,
        "ttfb_ms": 123.46,
        "upstream_ms": 12.35,
        "upstream_request_id": "req_up",
        "ended": True,
        "stop": "end_turn",
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_tokens": 3,
        "cache_write_tokens": 4,
        "reasoning_tokens": 5,
    }
    # The order is the line's order: who, where, outcome, timings, then tokens.
    assert list(fields)[:3] == ["request_id", "door", "endpoint"]
    assert list(fields)[-5:] == [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ]


def test_tokens_only_with_usage() -> None:
    ctx = served()
    ctx.usage = None
    assert not any(k.endswith("_tokens") for k in request_fields(ctx))
    ctx.usage = ir.Usage()
    assert request_fields(ctx)["input_tokens"] == 0


def test_translated_path() -> None:
    ctx = served()
    ctx.attempts[-1].passthrough = False
    assert request_fields(ctx)["path"] == "translated"


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (NotFound("model: no provider serves model 'x'"), "not_found", None),
        (AuthenticationFailed("invalid x-api-key"), "authentication", "invalid_api_key"),
        (
            UpstreamHTTPError("Overloaded", status=529, kind=Kind.OVERLOADED, protocol="anthropic"),
            "overloaded",
            None,
        ),
    ],
)
def test_error_kind_code_and_message(error, kind: str, code: str | None) -> None:
    ctx = bare()
    ctx.fail(error)
    fields = request_fields(ctx)
    assert (fields["error"], fields["code"], fields["message"], fields["status"]) == (
        kind,
        code,
        error.message,
        error.status,
    )
    assert "client_gone" not in fields


def test_the_error_message_is_cut_at_300_characters() -> None:
    ctx = bare()
    ctx.fail(NotFound("x" * 1000), 404)
    assert request_fields(ctx)["message"] == "x" * 300


def test_no_error_fields_without_an_error() -> None:
    assert not {"error", "code", "message"} & set(request_fields(served()))


def test_client_gone_only_when_gone() -> None:
    ctx = bare()
    ctx.client_gone = True
    assert request_fields(ctx)["client_gone"] is True


# --------------------------------------------------------------------------- logfmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (1, "1"),
        (12.5, "12.5"),
        ("plain", "plain"),
        ("anth#0", "anth#0"),
        ("qwen2.5:0.5b", "qwen2.5:0.5b"),
        ("", '""'),
        ("two words", '"two words"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line one\nline two", '"line one\\nline two"'),
        ("back\\slash and space", '"back\\\\slash and space"'),
        ("back\\slash", "back\\slash"),  # quoted only when it must be
    ],
)
def test_logfmt_values(value, text: str) -> None:
    assert format_fields({"k": value}) == f"k={text}"


def test_a_line_is_one_line_and_parses_back() -> None:
    ctx = served()
    ctx.fail(NotFound('upstream said: "no"\nsee = docs'), 404)
    line = format_fields(request_fields(ctx))
    assert "\n" not in line
    pairs = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
    assert pairs["message"] == '"upstream said: \\"no\\"\\nsee = docs"'
    assert (pairs["request_id"], pairs["status"], pairs["stream"], pairs["code"]) == ("req_2", "404", "true", "-")
    assert list(pairs) == list(request_fields(ctx))


def test_a_carriage_return_does_not_split_the_line() -> None:
    line = format_fields({"message": "ok\rforged=1", "status": 200})
    assert len(line.splitlines()) == 1


# --------------------------------------------------------------------------- RequestLog


@pytest.fixture
def logger_at(caplog: pytest.LogCaptureFixture):
    def at(level: int) -> pytest.LogCaptureFixture:
        caplog.set_level(level, logger=LOGGER)
        return caplog

    return at


def test_a_line_at_info(logger_at) -> None:
    caplog = logger_at(logging.INFO)
    ctx = served()
    RequestLog("info").write(ctx)
    [record] = caplog.records
    assert (record.name, record.levelno) == ("modelgate.request", logging.INFO)
    assert record.modelgate == request_fields(ctx)
    assert record.getMessage() == format_fields(request_fields(ctx))
    assert record.getMessage().startswith("request_id=req_2 door=openai_chat endpoint=chat caller=master ")


@pytest.mark.parametrize(("level", "levelno"), [("debug", logging.DEBUG), ("warning", logging.WARNING)])
def test_the_configured_level(logger_at, level: str, levelno: int) -> None:
    caplog = logger_at(logging.DEBUG)
    RequestLog(level).write(bare())
    assert [r.levelno for r in caplog.records] == [levelno]


def test_off_writes_nothing_and_computes_nothing(logger_at, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog = logger_at(logging.DEBUG)

    def must_not_run(ctx: RequestContext) -> dict:
        raise AssertionError("fields computed for a line nobody writes")

    monkeypatch.setattr(request_log, "request_fields", must_not_run)
    RequestLog("off").write(served())
    RequestLog("nonsense").write(served())
    assert caplog.records == []


def test_a_level_the_logger_does_not_enable_writes_nothing(logger_at, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog = logger_at(logging.INFO)
    monkeypatch.setattr(request_log, "request_fields", lambda ctx: pytest.fail("fields computed"))
    RequestLog("debug").write(served())
    assert caplog.records == []


def test_warning_level_with_the_logger_at_warning(logger_at) -> None:
    caplog = logger_at(logging.WARNING)
    RequestLog("info").write(served())
    RequestLog("warning").write(served())
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


# --------------------------------------------------------------------------- through the gateway


async def test_the_gateways_level_comes_from_the_config(fake, caplog: pytest.LogCaptureFixture) -> None:
    from tests.pipeline.helpers import ANTHROPIC_HEADERS, anthropic_body, asgi_client, running_gateway

    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for level, expected in (("off", []), ("debug", [logging.DEBUG]), ("warning", [logging.WARNING])):
        caplog.clear()
        async with running_gateway(fake, request_log_level=level) as gw, asgi_client(gw) as client:
            r = await client.post("/v1/messages", json=anthropic_body("qwen-local"), headers=ANTHROPIC_HEADERS)
        assert r.status_code == 200
        records = [rec for rec in caplog.records if rec.name == LOGGER]
        assert [rec.levelno for rec in records] == expected
        if records:
            assert records[0].modelgate["request_id"] == r.headers["request-id"]
            assert records[0].modelgate["served"] == "qwen2.5:0.5b"
