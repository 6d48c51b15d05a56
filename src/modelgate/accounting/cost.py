"""What an answer costs: the price of the model that served it, times its usage.

Prices are USD per million tokens (``accounting.pricing``: the built-in families, overridden
per model in the config). The IR counts input without cached tokens and output with
reasoning, as Anthropic does, so a cost is four products; a configured reasoning price
replaces the output price for the reasoning part. Credits are USD times the configured rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelgate import ir
from modelgate.accounting.pricing import builtin_facts
from modelgate.config import ModelConfig

PER_TOKEN = 1e-6


@dataclass(slots=True, frozen=True)
class Rates:
    """USD per token (not per million: the multiplication on every answer is then one)."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    reasoning: float | None = None

    def cost(self, usage: ir.Usage) -> float:
        usd = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        )
        if self.reasoning is not None and usage.reasoning_tokens:
            usd += usage.reasoning_tokens * (self.reasoning - self.output)
        return usd

    def worst_case(self, input_tokens: int, max_tokens: int) -> float:
        """The most a call can cost: every input token uncached, every output token used."""
        return input_tokens * self.input + max_tokens * self.output


class PriceBook:
    """The rates of every model that serves, looked up once per (model entry, upstream id)."""

    #: Entries kept at most: a pattern (``claude-*``) serves any id a client names.
    LIMIT = 4096

    def __init__(self, credit_rate: float | None = None) -> None:
        self.credit_rate = credit_rate
        self._rates: dict[tuple[str, str, str], Rates] = {}

    def rates(self, model: ModelConfig, upstream_model: str) -> Rates:
        key = (model.name, model.provider, upstream_model)
        rates = self._rates.get(key)
        if rates is None:
            rates = self._lookup(model, upstream_model)
            if len(self._rates) < self.LIMIT:
                self._rates[key] = rates
        return rates

    def credits(self, usd: float) -> float:
        return usd * self.credit_rate if self.credit_rate else 0.0

    @staticmethod
    def _lookup(model: ModelConfig, upstream_model: str) -> Rates:
        if model.pricing is not None:
            p = model.pricing
            reasoning = p.reasoning * PER_TOKEN if p.reasoning is not None else None
            return Rates(
                p.input * PER_TOKEN,
                p.output * PER_TOKEN,
                p.cache_read * PER_TOKEN,
                p.cache_write * PER_TOKEN,
                reasoning,
            )
        price = builtin_facts(upstream_model).price
        if price is None:
            return Rates()
        return Rates(
            price.input * PER_TOKEN,
            price.output * PER_TOKEN,
            price.cache_read * PER_TOKEN,
            price.cache_write * PER_TOKEN,
        )
