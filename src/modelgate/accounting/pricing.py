"""Model facts: prices, context windows and capabilities of well-known models.

A built-in table (USD per million tokens, as the providers publish them) that
the config can override per model. Lookups match the longest known prefix, so
dated ids (``claude-sonnet-4-5-20250929``) and aliases (``gpt-4o-2024-11-20``)
find their family.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelgate import ir
from modelgate.config import ModelConfig


@dataclass(slots=True, frozen=True)
class Price:
    """USD per million tokens (``reasoning``: where a provider bills it apart from output)."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    reasoning: float | None = None

    def cost(self, usage: ir.Usage) -> float:
        """USD for ``usage``: the IR counts input without cached tokens and output with reasoning,
        as Anthropic does, so a cost is four products (and the reasoning part at its own price)."""
        per_million = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        )
        if self.reasoning is not None and usage.reasoning_tokens:
            per_million += usage.reasoning_tokens * (self.reasoning - self.output)
        return per_million * 1e-6

    def worst_case(self, input_tokens: int, max_tokens: int) -> float:
        """The most a call can cost: every input token uncached, every output token used."""
        return (input_tokens * self.input + max_tokens * self.output) * 1e-6


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


def _claude5(i: float, o: float, read: float, write: float) -> ModelFacts:
    # The 5.x generation: 1M tokens of context, 128K of output, its own cache rates.
    return ModelFacts(Price(i, o, read, write), 1_000_000, 128_000, True, True, True, True)


BUILTIN: dict[str, ModelFacts] = {
    "claude-fable-5": _claude5(10, 50, 1, 12.5),
    "claude-opus-5-5": _claude5(4, 20, 0.2, 5),
    "claude-opus-5": _claude5(5, 25, 0.5, 6.25),
    "claude-sonnet-5": _claude5(2, 10, 0.2, 2.5),
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
    "gemini-3-pro": _gemini(2, 12, 0.2),
    "gemini-3-flash": _gemini(0.5, 3, 0.05),
    "gemini-2.5-pro": _gemini(1.25, 10, 0.31),
    "gemini-2.5-flash-lite": _gemini(0.1, 0.4, 0.025),
    "gemini-2.5-flash": _gemini(0.3, 2.5, 0.075),
    "gemini-2.0-flash": _gemini(0.1, 0.4, 0.025, 8_192),
}
_PREFIXES = sorted(BUILTIN, key=len, reverse=True)


#: The newest known member of a family, for an id no prefix knows yet (a model released after
#: this table, ``claude-opus-6``, ``gemini-3.5-flash``): billed like its family rather than free.
_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("claude-", "fable", "claude-fable-5"),
    ("claude-", "opus", "claude-opus-5-5"),
    ("claude-", "sonnet", "claude-sonnet-5"),
    ("claude-", "haiku", "claude-haiku-4-5"),
    ("gemini-", "flash-lite", "gemini-2.5-flash-lite"),
    ("gemini-", "flash", "gemini-3-flash"),
    ("gemini-", "pro", "gemini-3-pro"),
)


def builtin_facts(model_id: str) -> ModelFacts:
    for prefix in _PREFIXES:
        if model_id.startswith(prefix):
            return BUILTIN[prefix]
    for vendor, family, known in _FAMILIES:
        if model_id.startswith(vendor) and family in model_id:
            return BUILTIN[known]
    return ModelFacts()


def model_price(model: ModelConfig, upstream_model: str) -> Price | None:
    """The price of ``upstream_model`` serving ``model``: the config's, else its family's."""
    if model.pricing is not None:
        p = model.pricing
        return Price(p.input, p.output, p.cache_read, p.cache_write, p.reasoning)
    return builtin_facts(upstream_model).price


def model_facts(model: ModelConfig) -> ModelFacts:
    """Facts for a configured model: the built-in family's, overridden by the config."""
    upstream_model = model.primary.upstream_model or model.name
    facts = builtin_facts(upstream_model)
    if model.pricing is not None:
        facts = replace(facts, price=model_price(model, upstream_model))
    if model.context_window:
        facts = replace(facts, context_window=model.context_window)
    if model.max_output_tokens:
        facts = replace(facts, max_output_tokens=model.max_output_tokens)
    return facts
