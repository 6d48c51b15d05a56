"""The OpenAI Chat Completions front door: ``POST /v1/chat/completions`` (also under
``/api/openai/v1`` and ``/api/openai``, for clients configured with either base URL).

When the routed provider serves Chat Completions natively (OpenAI, OpenAI-compatible servers),
the client's bytes go to ``{base_url}/chat/completions`` untouched (``stream_options``, ``n``,
``logprobs`` and every other field survive) unless the model id must be rewritten, and the
upstream's bytes come back untouched (so ``model`` in the answer is the upstream's id). A
stream whose client did not ask for usage is the one exception: the gateway asks for it and
hides it again (docs/decisions/0002-chat-stream-usage.md). Otherwise the request goes through
the IR: see :mod:`modelgate.protocols.openai_chat` for the mapping.

Errors use OpenAI's envelope and the ``x-request-id`` header; keys arrive as
``Authorization: Bearer`` (``x-api-key`` is accepted too): see :mod:`.openai_common`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelgate import ir
from modelgate.frontdoors.base import FrontDoor, count_field, effort_for, rewrite
from modelgate.frontdoors.openai_common import OpenAIFrontDoor, RequestCodec
from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import openai_chat as codec
from modelgate.protocols.codec import StreamCollector, StreamEncoder
from modelgate.protocols.openai_chat.tap import request_usage
from modelgate.protocols.tap import AnswerTap

#: Base paths clients are configured with; each serves ``{base}/chat/completions``.
BASES = ("/v1", "/api/openai/v1", "/api/openai")


class OpenAIChatFrontDoor(OpenAIFrontDoor):
    protocol = codec.PROTOCOL
    request_codec: ClassVar[RequestCodec] = codec

    def routes(self, bases: Sequence[str] = BASES) -> list[Route]:
        return [Route(base + "/chat/completions", self.completions, methods=["POST"]) for base in bases]

    async def completions(self, request: Request) -> Response:
        return await self.chain.handle(request, self, Operation.GENERATE, "chat")

    def max_tokens(self, call: Call) -> int | None:
        return count_field(call.body, "max_completion_tokens") or count_field(call.body, "max_tokens")

    # ------------------------------------------------------------------ passthrough

    def passthrough_query(self, request: Request) -> str:
        return ""

    def passthrough_body(self, call: Call, upstream_model: str, max_tokens_cap: int | None = None) -> bytes:
        """The client's bytes (see :meth:`FrontDoor.passthrough_body`), asking for usage in a
        stream whose client did not."""
        raw = FrontDoor.passthrough_body(self, call, upstream_model)
        if _adds_usage(call):
            body = call.body if raw is call.raw else {**call.body, "model": upstream_model}
            raw = request_usage(raw, body) or raw
        return raw

    def think(self, call: Call, upstream_model: str, budget: int) -> None:
        if call.body.get("reasoning_effort") in (None, "none"):
            rewrite(call, {**call.body, "reasoning_effort": effort_for(budget)})

    def forced_stream(self, call: Call, body: bytes) -> tuple[bytes, StreamCollector] | None:
        """Streamed with usage (``stream_options.include_usage``), collected into the
        ``chat.completion`` (:mod:`modelgate.protocols.openai_chat.collect`)."""
        return codec.with_stream(body, call.body), codec.CompletionCollector()

    def tap(self, call: Call) -> AnswerTap | None:
        return codec.ChatTap(hide_usage=_adds_usage(call))

    # ------------------------------------------------------------------ translated

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, int(time.time()))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder(call.model, int(time.time()), include_usage=codec.include_usage(call.body))


def _adds_usage(call: Call) -> bool:
    """Whether the gateway asks for the usage of a relayed stream (the client did not)."""
    body = call.body
    options = body.get("stream_options")
    return body.get("stream") is True and (
        options is None or (isinstance(options, dict) and not codec.include_usage(body))
    )
