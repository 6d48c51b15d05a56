"""Upstream adapter for OpenAI Chat Completions servers: vLLM, Ollama, llama.cpp, OpenAI.

``base_url`` is written as the OpenAI SDK takes it, ending in ``/v1``; requests
go to ``{base_url}/chat/completions``. Local servers often need no key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError
from modelgate.protocols import openai_chat as codec
from modelgate.providers.anthropic import parse_retry_after
from modelgate.providers.base import Provider


class OpenAICompatibleProvider(Provider):
    protocol = "openai"

    @property
    def chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    def headers(self) -> dict[str, str]:
        out = {"content-type": "application/json"}
        out.update(self.config.headers)
        key = self.next_key()
        if key is not None:
            out["authorization"] = f"Bearer {key}"
        return out

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        err = codec.error_from_upstream(status, raw)
        err.retry_after = parse_retry_after(headers)
        return err

    async def complete(self, req: ir.Request) -> ir.Response:
        payload = codec.encode_request(req, req.model)
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        resp = await self.post(self.chat_url, orjson.dumps(payload), self.headers())
        return codec.decode_response(orjson.loads(await resp.read()))

    async def open_stream(self, req: ir.Request) -> AsyncIterator[list[ir.StreamEvent]]:
        payload = codec.encode_request(req, req.model)
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
        resp = await self.post(self.chat_url, orjson.dumps(payload), self.headers())
        decoder = codec.StreamDecoder()
        return self.events(resp, decoder)
