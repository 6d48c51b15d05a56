"""The settle stage: once per request, the tap's reading copied into the context, a client that
left before the end recorded as 499, and the log line written."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from modelgate import ir
from modelgate.config import RecordsConfig
from modelgate.errors import ErrorKind, UpstreamHTTPError
from modelgate.pipeline.context import CLIENT_CLOSED, Attempt, Call, Operation, RequestContext
from modelgate.pipeline.settle import ERROR_MAX, Settler
from modelgate.protocols.anthropic import AnthropicTap
from modelgate.store import BodyRecord, RequestRecord


class Log:
    def __init__(self) -> None:
        self.written: list[RequestContext] = []

    def write(self, ctx: RequestContext) -> None:
        self.written.append(ctx)


def settler() -> tuple[Settler, Log]:
    log = Log()
    return Settler(log), log  # type: ignore[arg-type]


def message(stop: str = "end_turn") -> bytes:
    usage = {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 1}
    body = {"type": "message", "id": "msg_1", "role": "assistant", "model": "m", "content": [], "stop_reason": stop}
    return orjson.dumps({**body, "usage": usage})


def test_settle_runs_once() -> None:
    s, log = settler()
    ctx = RequestContext("req_1", "anthropic", "messages")
    s.settle(ctx)
    duration = ctx.duration
    assert ctx.settled and duration is not None and duration >= 0
    s.settle(ctx, client_gone=True)
    assert log.written == [ctx]
    assert (ctx.duration, ctx.client_gone, ctx.status) == (duration, False, None)  # the second call changed nothing


def test_the_taps_reading_is_the_requests() -> None:
    s, _ = settler()
    ctx = RequestContext("req_1", "anthropic", "messages")
    ctx.status = 200
    ctx.usage = ir.Usage(input_tokens=999)  # what an earlier stage guessed: the tap has the last word
    ctx.tap = tap = AnthropicTap()
    tap.whole(message())
    s.settle(ctx)
    assert ctx.usage == ir.Usage(input_tokens=7, output_tokens=3, cache_read_tokens=2, cache_write_tokens=1)
    assert (ctx.ended, ctx.stop_reason, ctx.status) == (True, "end_turn", 200)


def test_a_client_gone_before_the_end_is_499() -> None:
    s, log = settler()
    ctx = RequestContext("req_1", "anthropic", "messages")
    ctx.status = 200
    ctx.tap = AnthropicTap()
    ctx.tap.feed(b'event: ping\ndata: {"type":"ping"}\n\n')
    s.settle(ctx, client_gone=True)
    assert (ctx.status, ctx.client_gone, ctx.ended) == (CLIENT_CLOSED, True, False)
    assert log.written == [ctx]


def test_a_client_gone_after_the_end_keeps_its_status() -> None:
    s, _ = settler()
    ctx = RequestContext("req_1", "anthropic", "messages")
    ctx.status = 200
    ctx.tap = AnthropicTap()
    ctx.tap.whole(message())
    s.settle(ctx, client_gone=True)
    assert (ctx.status, ctx.client_gone, ctx.ended) == (200, True, True)


def test_a_translated_answer_keeps_what_respond_recorded() -> None:
    s, _ = settler()
    ctx = RequestContext("req_1", "openai_chat", "chat")
    ctx.usage, ctx.ended, ctx.stop_reason = ir.Usage(output_tokens=4), True, "end_turn"
    s.settle(ctx)
    assert (ctx.usage, ctx.ended, ctx.stop_reason) == (ir.Usage(output_tokens=4), True, "end_turn")


class Writer:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []
        self.bodies: list[BodyRecord] = []

    def add_record(self, record: RequestRecord) -> None:
        self.records.append(record)

    def add_body(self, body: BodyRecord) -> None:
        self.bodies.append(body)


def test_the_record_is_the_contexts_reading() -> None:
    writer = Writer()
    tenancy = SimpleNamespace(writer=writer, records=RecordsConfig(body_max_bytes=8))
    ctx = RequestContext("req_1", "anthropic", "messages")
    ctx.call = Call(Operation.GENERATE, b'{"model":"sonnet","x":1}', {}, "sonnet", True)
    failed = Attempt("anth", "claude-sonnet-4-6", "anth#0", True, "sonnet")
    message = "upstream is overloaded " + "!" * 2000
    failed.failed(UpstreamHTTPError(message, status=529, kind=ErrorKind.OVERLOADED, protocol="anthropic"))
    served = Attempt("anth-b", "claude-sonnet-4-6", "anth-b#1", False, "sonnet")
    served.answered(200)
    served.upstream_request_id = "msg_9"
    ctx.attempts = [failed, served]
    ctx.usage = ir.Usage(input_tokens=5, output_tokens=6, cache_read_tokens=7, cache_write_tokens=8, reasoning_tokens=9)
    ctx.status, ctx.stop_reason, ctx.first_byte, ctx.duration = 200, "end_turn", 0.0125, 0.5
    ctx.session_id, ctx.endpoint_id, ctx.user_agent, ctx.client_ip = "s1", "ep_1", "ua/1", "203.0.113.1"
    ctx.cost, ctx.tool_calls, ctx.log_bodies, ctx.answer = 0.125, 3, True, [b"event: a\n", b"data: {}\n\n"]
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    Settler.record(ctx, tenancy, at)  # type: ignore[arg-type]
    (record,) = writer.records
    assert record == RequestRecord(
        request_id="req_1",
        at=at,
        key_id=None,
        team_id=None,
        door="anthropic",
        endpoint="messages",
        endpoint_id="ep_1",
        session_id="s1",
        model="sonnet",
        served_model="claude-sonnet-4-6",
        provider="anth-b",
        stream=True,
        status=200,
        stop_reason="end_turn",
        latency_ms=500,
        ttft_ms=12,
        input_tokens=5,
        output_tokens=6,
        cache_read_tokens=7,
        cache_write_tokens=8,
        reasoning_tokens=9,
        cost_usd=0.125,
        tool_calls=3,
        user_agent="ua/1",
        client_ip="203.0.113.1",
        attempts=[
            {
                "provider": "anth",
                "model": "claude-sonnet-4-6",
                "route": "sonnet",
                "key_id": "anth#0",
                "passthrough": True,
                "status": 529,
                "latency_ms": record.attempts[0]["latency_ms"],
                "error_type": "overloaded",
                "error_message": message[:ERROR_MAX],
                "upstream_request_id": None,
            },
            {
                "provider": "anth-b",
                "model": "claude-sonnet-4-6",
                "route": "sonnet",
                "key_id": "anth-b#1",
                "passthrough": False,
                "status": 200,
                "latency_ms": record.attempts[1]["latency_ms"],
                "error_type": None,
                "error_message": None,
                "upstream_request_id": "msg_9",
            },
        ],
        upstream_request_id="msg_9",  # the last attempt's, which served: the id the client saw
    )
    assert writer.bodies == [
        BodyRecord(request_id="req_1", at=at, request='{"model"', response="event: a", truncated=True)
    ]
