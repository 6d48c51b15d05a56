"""The catalog: exact names win over prefix patterns; unknown models are a clear 404."""

from __future__ import annotations

import random
import time

import pytest

from modelgate.config import parse_config
from modelgate.errors import NotFound
from modelgate.providers import HttpClient, build_provider
from modelgate.routing.catalog import ModelCatalog, weighted_order


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


# --------------------------------------------------------------------------- deployments and fallbacks


def routed_catalog(models: list[dict]) -> ModelCatalog:
    config = parse_config(
        {
            "providers": [
                {"name": "a", "type": "anthropic", "api_keys": ["k"]},
                {"name": "b", "type": "anthropic", "base_url": "http://127.0.0.1:2", "api_keys": ["k"]},
                {"name": "l", "type": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"},
            ],
            "models": models,
        },
        "test",
        env={},
    )
    client = HttpClient()
    return ModelCatalog(list(config.models), {p.name: build_provider(p, client) for p in config.providers})


def test_an_exact_name_with_one_deployment_has_one_plan_built_once() -> None:
    cat = routed_catalog([{"name": "m", "provider": "a", "upstream_model": "claude-x"}])
    plan = cat.plan("m")
    assert plan is cat.plan("m")  # nothing allocated per request
    [route] = plan.candidates
    assert (route.name, route.provider.name, route.upstream_model) == ("m", "a", "claude-x")
    assert route.served == {"x-modelgate-model": "m", "x-modelgate-provider": "a", "x-mapped-model": "claude-x"}
    assert plan.fallbacks == ()


def test_a_pattern_route_names_the_requested_model() -> None:
    cat = routed_catalog([{"name": "claude-*", "provider": "a"}])
    [route] = cat.plan("claude-opus-9").candidates
    assert (route.name, route.upstream_model) == ("claude-opus-9", "claude-opus-9")
    assert route.served["x-modelgate-model"] == "claude-opus-9"


def test_deployments_are_tried_by_priority() -> None:
    cat = routed_catalog(
        [
            {
                "name": "m",
                "deployments": [
                    {"provider": "l", "upstream_model": "qwen", "priority": 2},
                    {"provider": "b", "upstream_model": "claude-b", "priority": 0},
                    {"provider": "a", "upstream_model": "claude-a", "priority": 1},
                ],
                "fallbacks": ["other"],
            },
            {"name": "other", "provider": "a"},
        ]
    )
    plan = cat.plan("m")
    assert [(r.provider.name, r.upstream_model) for r in plan.candidates] == [
        ("b", "claude-b"),
        ("a", "claude-a"),
        ("l", "qwen"),
    ]
    assert {r.name for r in plan.candidates} == {"m"}
    assert plan.fallbacks == ("other",)
    assert cat.resolve("m").provider.name == "b"


def test_weighted_order_puts_a_route_first_in_proportion_to_its_weight() -> None:
    cat = routed_catalog(
        [
            {
                "name": "m",
                "deployments": [
                    {"provider": "a", "weight": 3},
                    {"provider": "b", "weight": 1},
                    {"provider": "l", "priority": 1, "weight": 100},  # never before the others
                ],
            }
        ]
    )
    random.seed(8)
    firsts = [cat.plan("m").candidates for _ in range(4000)]
    share = sum(c[0].provider.name == "a" for c in firsts) / len(firsts)
    assert 0.72 < share < 0.78
    assert all(c[2].provider.name == "l" for c in firsts)


def test_weighted_order_is_a_pure_function_of_its_draws() -> None:
    cat = routed_catalog([{"name": "m", "deployments": [{"provider": "a", "weight": 1}, {"provider": "b"}]}])
    routes = tuple(sorted(cat.plan("m").candidates, key=lambda r: r.provider.name))  # a, b
    draws = iter([0.9, 0.1])
    assert [r.provider.name for r in weighted_order(routes, lambda: next(draws))] == ["a", "b"]
    draws = iter([0.1, 0.9])
    assert [r.provider.name for r in weighted_order(routes, lambda: next(draws))] == ["b", "a"]


def test_catalogs_describe_a_model_by_its_first_deployment() -> None:
    cat = routed_catalog(
        [{"name": "m", "deployments": [{"provider": "l", "priority": 1}, {"provider": "a", "upstream_model": "x"}]}]
    )
    [model] = cat.listed()
    assert (model.primary.provider, model.primary.upstream_model) == ("a", "x")


# --------------------------------------------------------------------------- breakers


def guarded_catalog() -> ModelCatalog:
    return routed_catalog(
        [
            {
                "name": "m",
                "deployments": [{"provider": "a", "priority": 0}, {"provider": "b", "priority": 1}],
                "fallbacks": ["f1", "f2"],
            },
            {
                "name": "f1",
                "deployments": [{"provider": "l", "upstream_model": "q1"}, {"provider": "b", "priority": 1}],
            },
            {"name": "f2", "provider": "l", "upstream_model": "q2"},
        ]
    )


def set_aside(route_health, seconds: float = 60) -> None:
    route_health.open_until = time.monotonic() + seconds


def test_an_open_deployment_is_tried_last() -> None:
    cat = guarded_catalog()
    first, _ = cat.plan("m").candidates
    set_aside(first.health)
    assert [r.provider.name for r in cat.plan("m").candidates] == ["b", "a"]
    first.health.open_until = time.monotonic() - 1  # cooled off: in its place again
    assert [r.provider.name for r in cat.plan("m").candidates] == ["a", "b"]


def test_a_model_whose_deployments_are_all_open_starts_at_its_fallback() -> None:
    cat = guarded_catalog()
    for route in cat.plan("m").candidates:
        set_aside(route.health)
    plan = cat.plan("m")
    assert [(r.name, r.upstream_model) for r in plan.candidates] == [("f1", "q1"), ("f1", "f1")]
    assert plan.fallbacks == ("f2",)


def test_a_fallbacks_routes_put_open_ones_last_and_never_follow_its_own_fallbacks() -> None:
    cat = guarded_catalog()
    q1 = cat.routes("f1")[0]
    set_aside(q1.health)
    assert [r.upstream_model for r in cat.routes("f1")] == ["f1", "q1"]


def test_breakers_are_per_deployment_and_shared_by_requests() -> None:
    cat = guarded_catalog()
    assert cat.plan("m").candidates[0].health is cat.plan("m").candidates[0].health
    assert len({id(h) for h in cat.health()}) == 5
    assert [(h.model, h.provider, h.upstream) for h in cat.health()][:2] == [("m", "a", "m"), ("m", "b", "m")]


# --------------------------------------------------------------------------- -thinking variants


def test_variants_with_thinking_on_are_listed_beside_models_that_think() -> None:
    config = parse_config(
        {
            "providers": [{"name": "a", "type": "anthropic", "api_keys": ["k"]}],
            "models": [
                {"name": "claude-sonnet-4-6", "provider": "a", "display_name": "Sonnet"},
                {"name": "old", "provider": "a", "upstream_model": "claude-3-5-haiku-latest"},  # does not think
                {"name": "mine", "provider": "a", "upstream_model": "claude-opus-4-1"},
                {"name": "mine-thinking", "provider": "a"},  # a configured model wins over a variant
                {"name": "claude-*", "provider": "a"},
            ],
        },
        "test",
        env={},
    )
    providers = {p.name: build_provider(p, HttpClient()) for p in config.providers}
    cat = ModelCatalog(list(config.models), providers, thinking_variants=True)
    assert [m.name for m in cat.listed()] == [
        "claude-sonnet-4-6",
        "claude-sonnet-4-6-thinking",
        "old",
        "mine",
        "mine-thinking",
    ]
    assert cat.model("claude-sonnet-4-6-thinking").display_name == "Sonnet (thinking)"
    assert cat.thinking_base("claude-sonnet-4-6-thinking") == "claude-sonnet-4-6"
    assert cat.thinking_base("mine-thinking") is None and cat.thinking_base("old-thinking") is None
    with pytest.raises(NotFound):  # not the claude-* pattern: the plan stage serves it
        cat.plan("claude-sonnet-4-6-thinking")
    assert ModelCatalog(list(config.models), providers).thinking_base("claude-sonnet-4-6-thinking") is None
