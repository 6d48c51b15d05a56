"""Upstream adapter for the Anthropic Messages API (and servers that speak it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from modelgate import ir
from modelgate.errors import UpstreamHTTPError, kind_for_status
from modelgate.protocols import anthropic as codec
from modelgate.providers.base import Provider

DEFAULT_VERSION = "2023-06-01"
#: Client identification forwarded on passthrough, besides every ``anthropic-*`` header:
#: the upstream sees Claude Code as Claude Code. Credentials and hop-by-hop headers never pass.
_CLIENT_HEADERS = frozenset({"user-agent", "x-app", "x-claude-code-session-id"})


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class AnthropicProvider(Provider):
    protocol = codec.PROTOCOL

    @property
    def messages_url(self) -> str:
        return self.base_url + "/v1/messages"

    @property
    def count_tokens_url(self) -> str:
        return self.base_url + "/v1/messages/count_tokens"

    def headers(self, client_headers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Upstream headers: our key, plus every ``anthropic-*`` header the client sent,
        unchanged (versions and betas are open lists: never filter them)."""
        out = {"content-type": "application/json", "anthropic-version": DEFAULT_VERSION}
        if client_headers is not None:
            for name, value in client_headers.items():
                if name.startswith("anthropic-") or name in _CLIENT_HEADERS:
                    out[name] = value
        out.update(self.config.headers)
        key = self.next_key()
        if key is not None:
            out["x-api-key"] = key
        return out

    def error_from_upstream(self, status: int, raw: bytes, headers: Mapping[str, str]) -> UpstreamHTTPError:
        body = None
        message = raw.decode("utf-8", "replace")[:500] or f"upstream answered {status}"
        kind = kind_for_status(status)
        try:
            body = orjson.loads(raw)
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                message = str(err.get("message", message))
        except orjson.JSONDecodeError:
            body = None
        passed = {k: v for k, v in headers.items() if k.lower() in ("request-id", "x-should-retry")}
        return UpstreamHTTPError(
            message,
            status=status,
            kind=kind,
            protocol=self.protocol,
            body=body,
            raw=raw,
            retry_after=parse_retry_after(headers),
            headers=passed,
        )

    async def complete(self, req: ir.Request) -> ir.Response:
        payload = codec.encode_request(req)
        payload.pop("stream", None)
        resp = await self.post(self.messages_url, orjson.dumps(payload), self.headers())
        return codec.decode_response(orjson.loads(await resp.read()))

    async def open_stream(self, req: ir.Request) -> AsyncIterator[list[ir.StreamEvent]]:
        payload = codec.encode_request(req)
        payload["stream"] = True
        resp = await self.post(self.messages_url, orjson.dumps(payload), self.headers())
        decoder = codec.StreamDecoder()
        return self.events(resp, decoder)

    async def count_tokens(self, req: ir.Request) -> int:
        payload = codec.encode_request(req)
        for unused in ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata"):
            payload.pop(unused, None)
        resp = await self.post(self.count_tokens_url, orjson.dumps(payload), self.headers())
        return int(orjson.loads(await resp.read())["input_tokens"])
