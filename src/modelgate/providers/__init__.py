"""Upstream providers: one adapter per upstream kind, all behind :class:`Provider`."""

from __future__ import annotations

from collections.abc import Sequence

from modelgate.config import ModelConfig, ProviderConfig
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import Provider
from modelgate.providers.gemini import GeminiProvider
from modelgate.providers.http import HttpClient
from modelgate.providers.openai import OpenAIProvider
from modelgate.providers.openai_compatible import OpenAICompatibleProvider

#: Provider class for each ``type`` in the config; ``gemini`` lands with its own adapter.
PROVIDER_TYPES: dict[str, type[Provider]] = {
    "anthropic": AnthropicProvider,
    "openai": OpenAIProvider,
    "openai-compatible": OpenAICompatibleProvider,
    "gemini": GeminiProvider,
}


def build_provider(config: ProviderConfig, client: HttpClient, models: Sequence[ModelConfig] = ()) -> Provider:
    """The provider for ``config``; ``models`` (the whole catalog) tells the ``openai`` kind
    which API serves each of its models."""
    try:
        cls = PROVIDER_TYPES[config.type]
    except KeyError:
        raise ValueError(f"provider {config.name!r}: type {config.type!r} is not supported yet") from None
    if issubclass(cls, OpenAIProvider):
        return cls(config, client, [m for m in models if any(d.provider == config.name for d in m.targets)])
    return cls(config, client)


__all__ = ["PROVIDER_TYPES", "HttpClient", "Provider", "build_provider"]
