from __future__ import annotations

from modelgate.accounting.pricing import Price, builtin_facts, model_facts
from modelgate.config import ModelConfig


def test_longest_prefix_wins_for_dated_ids() -> None:
    assert builtin_facts("claude-sonnet-4-5-20250929").price == Price(3, 15, 0.3, 3.75)
    assert builtin_facts("gpt-4o-mini-2024-07-18").price.input == 0.15
    assert builtin_facts("gpt-4o-2024-11-20").price.input == 2.5
    assert builtin_facts("my-local-model").price is None


def test_config_overrides_builtin_facts() -> None:
    model = ModelConfig.model_validate(
        {"name": "x", "provider": "p", "upstream_model": "gpt-4o", "context_window": 1000, "pricing": {"input": 1.5}}
    )
    facts = model_facts(model)
    assert facts.price == Price(1.5, 0, 0, 0)
    assert facts.context_window == 1000 and facts.max_output_tokens == 16_384


def test_the_5x_generation_and_ids_newer_than_the_table_are_priced_by_family() -> None:
    assert builtin_facts("claude-opus-5-5").price == Price(4, 20, 0.2, 5)
    assert builtin_facts("claude-opus-5-20260724").price == Price(5, 25, 0.5, 6.25)
    assert builtin_facts("claude-sonnet-5-5").price == Price(2, 10, 0.2, 2.5)
    assert builtin_facts("claude-opus-6").price == builtin_facts("claude-opus-5-5").price  # the newest opus known
    assert builtin_facts("gemini-3.5-flash").price == builtin_facts("gemini-3-flash").price
    assert builtin_facts("gemini-3.5-flash-lite").price == builtin_facts("gemini-2.5-flash-lite").price
    assert builtin_facts("gemini-3.1-pro-preview").price == Price(2, 12, 0.2, 0)
    assert builtin_facts("llama-3").price is None  # no family: unpriced
