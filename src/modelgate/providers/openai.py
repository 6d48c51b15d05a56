"""The ``openai`` provider kind: OpenAI's own API (``base_url`` ending in ``/v1``).

It serves both OpenAI wire protocols natively, so a Chat Completions client or a Responses
client (Codex) reaching an OpenAI model is passed through untouched, to
``{base_url}/chat/completions`` or ``{base_url}/responses`` — except Chat clients of models
only the Responses API serves, which OpenAI refuses on ``/chat/completions``: those are
translated to ``/responses`` (:meth:`OpenAIProvider.passes_through`). Clients of other protocols
(Claude Code, Gemini clients) are translated to Chat Completions with OpenAI's own rules:

- ``max_tokens`` is sent as ``max_completion_tokens`` (OpenAI's reasoning models refuse the
  old name; every model takes the new one);
- ``top_k`` is dropped (OpenAI has no such parameter and refuses it);
- ``reasoning_effort`` (from Claude Code's thinking) only goes to reasoning models
  (:func:`is_reasoning_model`): the others refuse it, and a thinking request must not
  break ``gpt-4o``;
- ``temperature`` and ``top_p`` pass unchanged: reasoning models take only the default
  (1) and refuse anything else with a 400 that reaches the client with OpenAI's wording.

Models that only the Responses API serves go to ``{base_url}/responses`` instead, through
``protocols.openai_responses``: those whose model config says ``api: responses``, else
those the built-in list names (:func:`needs_responses_api`): ``*codex*`` (``gpt-5-codex``,
``gpt-5.1-codex-max``, ``codex-mini-latest``), ``o1-pro``, ``o3-pro``, ``gpt-5-pro`` and
other ``gpt-5.x-pro``, ``computer-use-preview`` and the ``*deep-research`` models. A config
``api: chat`` overrides the list. The choice is made by the upstream model id.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from modelgate import ir
from modelgate.config import ModelConfig, ProviderConfig
from modelgate.pipeline.context import Call, Operation
from modelgate.protocols import WireProtocol
from modelgate.protocols import openai_chat as chat_codec
from modelgate.protocols import openai_responses as responses_codec
from modelgate.providers.http import HttpClient
from modelgate.providers.keys import UpstreamKey
from modelgate.providers.openai_compatible import OpenAICompatibleProvider

_RESPONSES_ONLY = re.compile(r"codex|deep-research|computer-use|^(o1|o3|gpt-5(\.\d+)?)-pro\b")
_REASONING = re.compile(r"^(o\d|gpt-5|codex)")


def needs_responses_api(model: str) -> bool:
    """Whether OpenAI serves ``model`` only through the Responses API (the built-in list)."""
    return bool(_RESPONSES_ONLY.search(model))


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` takes ``reasoning_effort``: the o-series and gpt-5 (not gpt-5-chat)."""
    return bool(_REASONING.match(model)) and "-chat" not in model


class OpenAIProvider(OpenAICompatibleProvider):
    protocol = WireProtocol.OPENAI_CHAT
    protocols = frozenset({WireProtocol.OPENAI_CHAT, WireProtocol.OPENAI_RESPONSES})

    def __init__(self, config: ProviderConfig, client: HttpClient, models: Sequence[ModelConfig] = ()) -> None:
        super().__init__(config, client)
        self._apis: dict[str, str] = {}
        self._api_patterns: list[tuple[str, str]] = []
        for m in models:
            if m.api is None:
                continue
            for d in m.targets:
                if d.provider != config.name:
                    continue
                if d.upstream_model:
                    self._apis.setdefault(d.upstream_model, m.api)
                elif m.name.endswith("*"):
                    self._api_patterns.append((m.name[:-1], m.api))
                else:
                    self._apis.setdefault(m.name, m.api)

    @property
    def responses_url(self) -> str:
        return self.base_url + "/responses"

    @property
    def compact_url(self) -> str:
        return self.base_url + "/responses/compact"

    def passes_through(self, protocol: str, model: str) -> bool:
        if protocol == WireProtocol.OPENAI_CHAT and self.api_for(model) == "responses":
            return False  # OpenAI answers 404 for these on /chat/completions: translate to /responses
        return super().passes_through(protocol, model)

    def passthrough_url(self, call: Call, protocol: WireProtocol, upstream_model: str) -> str:
        if protocol == WireProtocol.OPENAI_RESPONSES:
            return self.compact_url if call.operation is Operation.COMPACT else self.responses_url
        return self.chat_url

    def api_for(self, model: str) -> str:
        """``chat`` or ``responses``: the API that serves the upstream model ``model``."""
        api = self._apis.get(model)
        if api is None:
            api = next((a for prefix, a in self._api_patterns if model.startswith(prefix)), None)
        if api is None:
            api = "responses" if needs_responses_api(model) else "chat"
        return api

    # ----------------------------------------------------------------- translated path

    def chat_payload(self, req: ir.Request) -> dict[str, Any]:
        payload = chat_codec.encode_request(req, req.model)
        payload["max_completion_tokens"] = payload.pop("max_tokens")
        payload.pop("top_k", None)
        if not is_reasoning_model(req.model):
            payload.pop("reasoning_effort", None)
        return payload

    def _responses_payload(self, req: ir.Request) -> dict[str, Any]:
        return responses_codec.encode_request(req, req.model, reasoning=is_reasoning_model(req.model))

    async def complete(self, req: ir.Request, key: UpstreamKey | None) -> ir.Response:
        if self.api_for(req.model) != "responses":
            return await super().complete(req, key)
        payload = self._responses_payload(req)
        payload.pop("stream", None)
        resp = await self.post(self.responses_url, orjson.dumps(payload), self.headers(key))
        return self.decoded(responses_codec.decode_response, await self.read_json(resp))

    async def open_stream(
        self, req: ir.Request, key: UpstreamKey | None, first_byte: float | None = None
    ) -> AsyncIterator[list[ir.StreamEvent]]:
        if self.api_for(req.model) != "responses":
            return await super().open_stream(req, key, first_byte)
        payload = self._responses_payload(req)
        payload["stream"] = True
        resp = await self.post(
            self.responses_url, orjson.dumps(payload), self.headers(key), first_byte or self.first_byte_timeout
        )
        return self.events(resp, responses_codec.StreamDecoder())
