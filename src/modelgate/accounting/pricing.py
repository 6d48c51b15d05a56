"""Model facts: prices, context windows and capabilities of well-known models.

A built-in table (USD per million tokens, as the providers publish them) that
the config can override per model. Lookups match the longest known prefix, so
dated ids (``claude-sonnet-4-5-20250929``) and aliases (``gpt-4o-2024-11-20``)
find their family.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelgate.config import ModelConfig


@dataclass(slots=True, frozen=True)
class Price:
    """USD per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0


@dataclass(slots=True, frozen=True)
class ModelFacts:
    price: Price | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    vision: bool = False
    tools: bool = True
    reasoning: bool = False
    prompt_caching: bool = False


def _claude(i: float, o: float, out: int, reasoning: bool = True) -> ModelFacts:
    # Anthropic: cache reads cost 0.1x input, 5-minute cache writes 1.25x input.
    return ModelFacts(Price(i, o, round(i * 0.1, 6), round(i * 1.25, 6)), 200_000, out, True, True, reasoning, True)


def _gpt(i: float, o: float, cached: float, ctx: int, out: int, reasoning: bool = False) -> ModelFacts:
    return ModelFacts(Price(i, o, cached, 0.0), ctx, out, True, True, reasoning, True)


def _gemini(i: float, o: float, cached: float, out: int = 65_536) -> ModelFacts:
    return ModelFacts(Price(i, o, cached, 0.0), 1_048_576, out, True, True, True, True)


BUILTIN: dict[str, ModelFacts] = {
    "claude-opus-4-5": _claude(5, 25, 64_000),
    "claude-opus-4-1": _claude(15, 75, 32_000),
    "claude-opus-4": _claude(15, 75, 32_000),
    "claude-sonnet-4": _claude(3, 15, 64_000),
    "claude-haiku-4-5": _claude(1, 5, 64_000),
    "claude-3-7-sonnet": _claude(3, 15, 64_000),
    "claude-3-5-haiku": _claude(0.8, 4, 8_192, reasoning=False),
    "gpt-5-nano": _gpt(0.05, 0.4, 0.005, 400_000, 128_000, True),
    "gpt-5-mini": _gpt(0.25, 2, 0.025, 400_000, 128_000, True),
    "gpt-5": _gpt(1.25, 10, 0.125, 400_000, 128_000, True),
    "gpt-4.1-nano": _gpt(0.1, 0.4, 0.025, 1_047_576, 32_768),
    "gpt-4.1-mini": _gpt(0.4, 1.6, 0.1, 1_047_576, 32_768),
    "gpt-4.1": _gpt(2, 8, 0.5, 1_047_576, 32_768),
    "gpt-4o-mini": _gpt(0.15, 0.6, 0.075, 128_000, 16_384),
    "gpt-4o": _gpt(2.5, 10, 1.25, 128_000, 16_384),
    "o4-mini": _gpt(1.1, 4.4, 0.275, 200_000, 100_000, True),
    "o3-mini": _gpt(1.1, 4.4, 0.55, 200_000, 100_000, True),
    "o3": _gpt(2, 8, 0.5, 200_000, 100_000, True),
    "gemini-2.5-pro": _gemini(1.25, 10, 0.31),
    "gemini-2.5-flash-lite": _gemini(0.1, 0.4, 0.025),
    "gemini-2.5-flash": _gemini(0.3, 2.5, 0.075),
    "gemini-2.0-flash": _gemini(0.1, 0.4, 0.025, 8_192),
}
_PREFIXES = sorted(BUILTIN, key=len, reverse=True)


def builtin_facts(model_id: str) -> ModelFacts:
    for prefix in _PREFIXES:
        if model_id.startswith(prefix):
            return BUILTIN[prefix]
    return ModelFacts()


def model_facts(model: ModelConfig) -> ModelFacts:
    """Facts for a configured model: the built-in family's, overridden by the config."""
    facts = builtin_facts(model.primary.upstream_model or model.name)
    if model.pricing is not None:
        p = model.pricing
        facts = replace(facts, price=Price(p.input, p.output, p.cache_read, p.cache_write))
    if model.context_window:
        facts = replace(facts, context_window=model.context_window)
    if model.max_output_tokens:
        facts = replace(facts, max_output_tokens=model.max_output_tokens)
    return facts
