"""The OpenAI Chat Completions front door: ``POST /v1/chat/completions`` (also under
``/api/openai/v1`` and ``/api/openai``, for clients configured with either base URL).

When the routed provider serves Chat Completions natively (OpenAI, OpenAI-compatible servers),
the client's bytes go to ``{base_url}/chat/completions`` untouched (``stream_options``, ``n``,
``logprobs`` and every other field survive) unless the model id must be rewritten, and the
upstream's bytes come back untouched (so ``model`` in the answer is the upstream's id). Otherwise
the request goes through the IR: see :mod:`modelgate.protocols.openai_chat` for the mapping.

Errors use OpenAI's envelope and the ``x-request-id`` header; keys arrive as
``Authorization: Bearer`` (``x-api-key`` is accepted too): see :mod:`.openai_common`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.routing import Route

from modelgate import ir
from modelgate.frontdoors.base import Call, StreamEncoder, Target, passthrough_body
from modelgate.frontdoors.openai_common import OpenAIFrontDoor
from modelgate.protocols import openai_chat as codec

if TYPE_CHECKING:
    from modelgate.routing.catalog import Route as ModelRoute

#: Base paths clients are configured with; each serves ``{base}/chat/completions``.
BASES = ("/v1", "/api/openai/v1", "/api/openai")


class OpenAIChatFrontDoor(OpenAIFrontDoor):
    protocol = codec.PROTOCOL
    request_codec = codec

    def routes(self) -> list[Route]:
        return [Route(base + "/chat/completions", self.answer, methods=["POST"]) for base in BASES]

    # ------------------------------------------------------------------ protocol hooks

    def encode_response(self, resp: ir.Response, call: Call) -> Any:
        return codec.encode_response(resp, int(time.time()))

    def stream_encoder(self, call: Call, request_id: str) -> StreamEncoder:
        return codec.StreamEncoder(call.model, int(time.time()), include_usage=codec.include_usage(call.body))

    def passthrough(self, request: Request, call: Call, route: ModelRoute) -> Target:
        provider = route.provider
        body = passthrough_body(call, route.upstream_model)
        return Target(provider.base_url + "/chat/completions", body, provider.headers())  # type: ignore[attr-defined]
