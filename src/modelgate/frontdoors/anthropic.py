"""The Anthropic Messages front door: ``/v1/messages`` and ``/v1/messages/count_tokens``.

When the routed provider also speaks Anthropic, the request takes the passthrough path:
the client's bytes go upstream untouched (unknown fields, betas and thinking signatures
survive) unless the model id must be rewritten, every ``anthropic-*`` header goes along,
and the upstream's bytes come back untouched. Otherwise the request goes through the IR.
``count_tokens`` is forwarded to an Anthropic upstream, counted by a Gemini upstream, and
estimated locally (``accounting.tokens``) for the others.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.errors import GatewayError, InvalidRequest, RateLimitInfo
from modelgate.frontdoors.base import FrontDoor, rewrite
from modelgate.pipeline.context import Call, Operation
from modelgate.policy.auth import bearer
from modelgate.protocols import anthropic as codec
from modelgate.protocols.codec import Background, StreamCollector, StreamEncoder
from modelgate.protocols.tap import AnswerTap
from modelgate.routing.catalog import ModelRoute


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise InvalidRequest("request body is empty: expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None


class AnthropicFrontDoor(FrontDoor):
    protocol = codec.PROTOCOL

    def routes(self, prefix: str = "") -> list[Route]:
        return [
            Route(prefix + "/v1/messages", self.messages, methods=["POST"]),
            Route(prefix + "/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    async def messages(self, request: Request) -> Response:
        return await self.chain.handle(request, self, Operation.GENERATE, "messages")

    async def count_tokens(self, request: Request) -> Response:
        return await self.chain.handle(request, self, Operation.COUNT_TOKENS, "count_tokens")

    # ------------------------------------------------------------------ admit

    def credentials(self, request: Request) -> list[str]:
        headers = request.headers
        return [c for c in (headers.get("x-api-key"), bearer(headers.get("authorization"))) if c]

    def rate_limit_headers(self, info: RateLimitInfo) -> dict[str, str]:
        """Anthropic's ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``."""
        if info.resource not in ("requests", "tokens"):
            return {}
        prefix = f"anthropic-ratelimit-{info.resource}-"
        headers = {prefix + "limit": str(int(info.limit)), prefix + "remaining": str(max(0, int(info.remaining)))}
        if info.reset_at is not None:
            reset = datetime.fromtimestamp(math.ceil(info.reset_at), tz=UTC)
            headers[prefix + "reset"] = reset.strftime("%Y-%m-%dT%H:%M:%SZ")
        return headers

    def parse(self, request: Request, raw: bytes, operation: Operation) -> Call:
        body = parse_json(raw)
        counting = operation is Operation.COUNT_TOKENS
        codec.check_request(body, require_max_tokens=not counting)
        return Call(operation, raw, body, body["model"], bool(body.get("stream")) and not counting)

    # ------------------------------------------------------------------ errors, passthrough

    def render_error(self, err: GatewayError, request_id: str) -> tuple[int, Any]:
        return codec.render_error(err, request_id)

    def passthrough_body(self, call: Call, upstream_model: str, max_tokens_cap: int | None = None) -> bytes:
        """The client's bytes, untouched, unless another model serves than the one it named (an
        alias, a fallback): then the body is fitted to that model (``fit_body``: thinking,
        ``max_tokens``), so that a session written for a newer model is not refused."""
        if upstream_model == call.model:
            return call.raw
        return orjson.dumps(codec.fit_body(call.body, upstream_model, max_tokens_cap))

    def think(self, call: Call, upstream_model: str, budget: int) -> None:
        """Adaptive thinking where the serving model has it, else ``budget`` (kept under
        ``max_tokens``; none when it cannot fit)."""
        thinking = call.body.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            return
        value: dict[str, Any] = {"type": "adaptive"}
        if not codec.supports_adaptive_thinking(upstream_model):
            max_tokens = call.body.get("max_tokens")
            budget = min(budget, max_tokens - 1) if isinstance(max_tokens, int) else budget
            if budget < codec.MIN_THINKING_BUDGET:
                return
            value = {"type": "enabled", "budget_tokens": budget}
        rewrite(call, {**call.body, "thinking": value})

    def background(self, call: Call) -> Background | None:
        """Claude Code's warm-ups and session titles (``protocols.anthropic.background``)."""
        return codec.classify_background(call.body) if call.operation is Operation.GENERATE else None

    def retarget(self, call: Call, route: ModelRoute) -> None:
        """The body fitted to the model it moved to (``fit_body``: ``max_tokens``, effort,
        thinking), as for any model other than the one named."""
        rewrite(call, codec.fit_body(call.body, call.model, route.output_cap()))

    def forced_stream(self, call: Call, body: bytes) -> tuple[bytes, StreamCollector] | None:
        if call.operation is not Operation.GENERATE:
            return None
        return codec.with_stream(body, call.body), codec.MessageCollector()

    def tap(self, call: Call) -> AnswerTap | None:
        return codec.AnthropicTap() if call.operation is Operation.GENERATE else None

    # ------------------------------------------------------------------ translated

    def decode(self, call: Call) -> ir.Request:
        return codec.decode_request(call.body)

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp)

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder()

    def decode_count(self, call: Call) -> ir.Request:
        return codec.decode_request({**call.body, "max_tokens": 1})

    def count_body(self, call: Call, tokens: int) -> Any:
        return {"input_tokens": tokens}
