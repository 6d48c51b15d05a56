"""The catalog: exact names win over prefix patterns; unknown models are a clear 404."""

from __future__ import annotations

import pytest

from modelgate.config import parse_config
from modelgate.errors import NotFound
from modelgate.providers import HttpClient, build_provider
from modelgate.routing.catalog import ModelCatalog


def catalog() -> ModelCatalog:
    config = parse_config(
        {
            "providers": [
                {"name": "a", "type": "anthropic", "api_keys": ["k"]},
                {"name": "l", "type": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"},
            ],
            "models": [
                {"name": "claude-*", "provider": "a"},
                {"name": "claude-special", "provider": "l", "upstream_model": "qwen"},
            ],
        },
        "test",
        env={},
    )
    client = HttpClient()
    providers = {p.name: build_provider(p, client) for p in config.providers}
    return ModelCatalog(list(config.models), providers)


def test_exact_name_wins_and_maps_upstream_model() -> None:
    route = catalog().resolve("claude-special")
    assert (route.provider.name, route.upstream_model) == ("l", "qwen")


def test_pattern_keeps_requested_name() -> None:
    route = catalog().resolve("claude-haiku-4-5-20251001")
    assert (route.provider.name, route.upstream_model) == ("a", "claude-haiku-4-5-20251001")


def test_unknown_model_is_not_found() -> None:
    with pytest.raises(NotFound, match="no provider serves model 'gpt-4o'"):
        catalog().resolve("gpt-4o")


def test_patterns_are_not_listed() -> None:
    assert [m.name for m in catalog().listed()] == ["claude-special"]
