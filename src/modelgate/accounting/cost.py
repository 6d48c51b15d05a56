"""What an answer costs: the price of the model that served it, in USD and in credits.

Prices are USD per million tokens (``accounting.pricing.Price``: the built-in families,
overridden per model in the config); :class:`PriceBook` finds the one of a serving model
once and keeps it. Credits are USD times the configured rate.
"""

from __future__ import annotations

from modelgate.accounting.pricing import Price, model_price
from modelgate.config import ModelConfig


class PriceBook:
    """The price of every model that serves, looked up once per (model entry, upstream id)."""

    #: Entries kept at most: a pattern (``claude-*``) serves any id a client names.
    LIMIT = 4096

    def __init__(self, credit_rate: float | None = None) -> None:
        self.credit_rate = credit_rate
        self._prices: dict[tuple[str, str], Price] = {}

    def price(self, model: ModelConfig, upstream_model: str) -> Price:
        key = (model.name, upstream_model)
        price = self._prices.get(key)
        if price is None:
            price = model_price(model, upstream_model) or Price()
            if len(self._prices) < self.LIMIT:
                self._prices[key] = price
        return price

    def credits(self, usd: float) -> float:
        return usd * self.credit_rate if self.credit_rate else 0.0
