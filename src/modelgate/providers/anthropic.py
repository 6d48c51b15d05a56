"""Upstream adapter for the Anthropic Messages API (and servers that speak it).

``base_url`` is written as the Anthropic SDK takes it, without ``/v1``: requests go to
``{base_url}/v1/messages`` (and ``/v1/messages/count_tokens``), the key in ``x-api-key``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError
from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import WireProtocol
from modelgate.protocols import anthropic as codec
from modelgate.providers.base import Provider
from modelgate.providers.keys import UpstreamKey

DEFAULT_VERSION = "2023-06-01"
#: Request fields ``count_tokens`` refuses.
_NOT_COUNTED = ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata")


class AnthropicProvider(Provider):
    protocol = WireProtocol.ANTHROPIC
    protocols = frozenset({WireProtocol.ANTHROPIC})
    base_headers = {"content-type": "application/json", "anthropic-version": DEFAULT_VERSION}
    #: A hung upstream is found by the first-byte timeout, not after ``read_timeout``.
    FORCE_STREAM = True

    @property
    def messages_url(self) -> str:
        return self.base_url + "/v1/messages"

    @property
    def count_tokens_url(self) -> str:
        return self.base_url + "/v1/messages/count_tokens"

    def passthrough_url(self, call: Call, protocol: WireProtocol, upstream_model: str) -> str:
        return self.count_tokens_url if call.operation is Operation.COUNT_TOKENS else self.messages_url

    def auth_header(self, secret: str) -> tuple[str, str]:
        return "x-api-key", secret

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        return codec.error_from_upstream(status, raw, headers)

    async def complete(self, req: ir.Request, key: UpstreamKey | None) -> ir.Response:
        payload = codec.encode_request(req)
        payload.pop("stream", None)
        resp = await self.post(self.messages_url, orjson.dumps(payload), self.headers(key))
        return self.decoded(codec.decode_response, await self.read_json(resp))

    async def open_stream(
        self, req: ir.Request, key: UpstreamKey | None, first_byte: float | None = None
    ) -> AsyncIterator[list[ir.StreamEvent]]:
        payload = codec.encode_request(req)
        payload["stream"] = True
        resp = await self.post(
            self.messages_url, orjson.dumps(payload), self.headers(key), first_byte or self.first_byte_timeout
        )
        return self.events(resp, codec.StreamDecoder())

    async def count_tokens(self, req: ir.Request, key: UpstreamKey | None) -> int:
        payload = codec.encode_request(req)
        for unused in _NOT_COUNTED:
            payload.pop(unused, None)
        resp = await self.post(self.count_tokens_url, orjson.dumps(payload), self.headers(key))
        return self.decoded(lambda answer: int(answer["input_tokens"]), await self.read_json(resp))
