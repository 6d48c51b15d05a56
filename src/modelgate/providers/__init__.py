"""Upstream providers: one adapter per upstream kind, all behind :class:`Provider`."""

from __future__ import annotations

from modelgate.config import ProviderConfig
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Provider
from modelgate.providers.http import HttpClient
from modelgate.providers.openai_compatible import OpenAICompatibleProvider

#: Provider class for each ``type`` in the config. ``openai`` uses Chat Completions until
#: the Responses-only models arrive; ``gemini`` lands with its own adapter.
PROVIDER_TYPES: dict[str, type[Provider]] = {
    "anthropic": AnthropicProvider,
    "openai": OpenAICompatibleProvider,
    "openai-compatible": OpenAICompatibleProvider,
}


def build_provider(config: ProviderConfig, client: HttpClient) -> Provider:
    try:
        cls = PROVIDER_TYPES[config.type]
    except KeyError:
        raise ValueError(f"provider {config.name!r}: type {config.type!r} is not supported yet") from None
    return cls(config, client)


__all__ = ["PROVIDER_TYPES", "HttpClient", "Provider", "build_provider"]
