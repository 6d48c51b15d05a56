"""The settle stage: once per request, the tap's reading copied into the context, a client that
left before the end recorded as 499, and the log line written."""

from __future__ import annotations

import orjson

from modelgate import ir
from modelgate.pipeline.context import CLIENT_CLOSED, RequestContext
from modelgate.pipeline.settle import Settler
from modelgate.protocols.anthropic import AnthropicTap


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
