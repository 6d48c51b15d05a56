"""Upstream adapter for OpenAI Chat Completions servers: vLLM, Ollama, llama.cpp, OpenAI.

``base_url`` is written as the OpenAI SDK takes it, ending in ``/v1``; requests
go to ``{base_url}/chat/completions``. Local servers often need no key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError
from modelgate.pipeline.context import Call
from modelgate.protocols import WireProtocol
from modelgate.protocols import openai_chat as codec
from modelgate.providers.base import Provider
from modelgate.providers.keys import UpstreamKey


class OpenAICompatibleProvider(Provider):
    protocol = WireProtocol.OPENAI_CHAT
    protocols = frozenset({WireProtocol.OPENAI_CHAT})

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    def passthrough_url(self, call: Call, protocol: WireProtocol, upstream_model: str) -> str:
        return self.chat_url

    def auth_header(self, secret: str) -> tuple[str, str]:
        return "authorization", f"Bearer {secret}"

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return codec.error_from_upstream(status, raw, headers)

    def chat_payload(self, req: ir.Request) -> dict[str, Any]:
        """The Chat Completions request for ``req`` (a hook for OpenAI's own rules)."""
        return codec.encode_request(req, req.model)

    async def complete(self, req: ir.Request, key: UpstreamKey | None) -> ir.Response:
        payload = self.chat_payload(req)
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        resp = await self.post(self.chat_url, orjson.dumps(payload), self.headers(key))
        return self.decoded(codec.decode_response, await self.read_json(resp))

    async def open_stream(
        self, req: ir.Request, key: UpstreamKey | None, first_byte: float | None = None
    ) -> AsyncIterator[list[ir.StreamEvent]]:
        payload = self.chat_payload(req)
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        resp = await self.post(
            self.chat_url, orjson.dumps(payload), self.headers(key), first_byte or self.first_byte_timeout
        )
        return self.events(resp, codec.StreamDecoder())
