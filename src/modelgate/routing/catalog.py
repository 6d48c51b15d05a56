"""The model catalog: which upstreams serve a requested model name, in which order, and
where to go when they all fail (:class:`Plan`; routes are :class:`ModelRoute`, named
apart from Starlette's URL ``Route``).

Built once from the config. A model is served by one deployment (``provider`` +
``upstream_model``) or several (``deployments``, each with a ``weight`` and a
``priority``). The plan of an exact name with one deployment is built once and handed out
as it is: a lookup is a dict hit. Patterns (``claude-*``) build their routes per request,
since the upstream model is the requested name; several deployments of equal priority are
ordered per request, at random in proportion to their weights. Deployments whose breaker
is open (``routing/health.py``) go after the others; a model whose every deployment is
open starts at its first fallback. ``auto`` (``router.auto``) is a plan over several
models, in the order of its policy, each the next one's fallback.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelgate.accounting.pricing import builtin_facts, model_facts
from modelgate.config import AutoConfig, DeploymentConfig, HealthConfig, ModelConfig
from modelgate.errors import NotFound
from modelgate.routing.health import DeploymentHealth

if TYPE_CHECKING:
    from modelgate.providers.base import Provider

#: Response headers that say what served an answer.
MODEL_HEADER = "x-modelgate-model"
PROVIDER_HEADER = "x-modelgate-provider"
MAPPED_MODEL_HEADER = "x-mapped-model"


@dataclass(slots=True, frozen=True)
class ModelRoute:
    """Where one attempt goes: the provider and the model id it knows."""

    model: ModelConfig
    provider: Provider
    upstream_model: str
    #: The public name of the model served: the config's name, or the requested one for a pattern.
    name: str = ""
    weight: float = field(default=1.0, compare=False)
    priority: int = field(default=0, compare=False)
    #: The breaker of the deployment (shared by every route built for it).
    health: DeploymentHealth = field(default_factory=lambda: DeploymentHealth("", "", ""), compare=False, repr=False)
    #: The headers that name what served (``x-modelgate-model``, ``x-modelgate-provider``,
    #: ``x-mapped-model``), built once with the route, and encoded once for the response.
    served: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    served_raw: list[tuple[bytes, bytes]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.model.name)
        if not self.served:
            self.served.update(
                {MODEL_HEADER: self.name, PROVIDER_HEADER: self.provider.name, MAPPED_MODEL_HEADER: self.upstream_model}
            )
            self.served_raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.served.items())

    def output_cap(self) -> int | None:
        """The serving model's output limit: the config's, else the built-in facts' (read
        only when a request is fitted to another model than it named)."""
        return self.model.max_output_tokens or builtin_facts(self.upstream_model).max_output_tokens

    def max_tokens(self, requested: int) -> int:
        """``requested``, capped at the model's configured output limit (clients such as Claude
        Code ask for 32k–64k tokens, which small local models reject)."""
        cap = self.model.max_output_tokens
        return min(requested, cap) if cap else requested


@dataclass(slots=True, frozen=True)
class Plan:
    """What may serve a call, in the order to try it."""

    #: The routes of the requested model, best first.
    candidates: tuple[ModelRoute, ...]
    #: Model names to try, in order, when every candidate has failed (``models[].fallbacks``).
    fallbacks: tuple[str, ...] = ()


class _Entry:
    """One configured model: its deployments (sorted by priority) with their breakers and, for
    an exact name, its plan built once."""

    __slots__ = ("deployments", "drawn", "guarded", "model", "plan")

    def __init__(self, model: ModelConfig, providers: dict[str, Provider], health: HealthConfig) -> None:
        self.model = model
        targets = sorted(model.targets, key=lambda d: d.priority)
        self.deployments: tuple[tuple[DeploymentConfig, Provider, DeploymentHealth], ...] = tuple(
            (
                d,
                providers[d.provider],
                DeploymentHealth(
                    model.name,
                    d.provider,
                    d.upstream_model or ("*" if model.name.endswith("*") else model.name),
                    health.failures,
                    health.cooloff,
                ),
            )
            for d in targets
        )
        priorities = [d.priority for d in targets]
        #: Whether the order is drawn per request (deployments of equal priority share traffic).
        self.drawn = len(set(priorities)) < len(priorities)
        #: Whether a breaker may change the plan (there is somewhere else to go).
        self.guarded = len(targets) > 1 or bool(model.fallbacks)
        self.plan: Plan | None = None
        if not model.name.endswith("*"):
            self.plan = Plan(self.routes(model.name), tuple(model.fallbacks))

    def routes(self, name: str) -> tuple[ModelRoute, ...]:
        return tuple(
            ModelRoute(self.model, provider, d.upstream_model or name, name, d.weight, d.priority, health)
            for d, provider, health in self.deployments
        )

    def healths(self) -> list[DeploymentHealth]:
        return [health for _, _, health in self.deployments]


def weighted_order(routes: tuple[ModelRoute, ...], draw: Callable[[], float] = random.random) -> tuple[ModelRoute, ...]:
    """``routes`` (sorted by priority) with each group of equal priority shuffled at random in
    proportion to the weights: the first place goes to a route with probability
    weight / total of its group (Efraimidis–Spirakis: sort by ``u ** (1 / weight)``)."""
    keyed = sorted(routes, key=lambda r: (r.priority, -(draw() ** (1.0 / r.weight))))
    return tuple(keyed)


#: The name that asks the router to pick the model (``router.auto``).
AUTO = "auto"
#: The suffix of a model's variant with thinking on (``router.thinking_variants``).
THINKING = "-thinking"


class ModelCatalog:
    def __init__(
        self,
        models: list[ModelConfig],
        providers: dict[str, Provider],
        health: HealthConfig | None = None,
        auto: AutoConfig | None = None,
        thinking_variants: bool = False,
    ) -> None:
        self._exact: dict[str, _Entry] = {}
        self._patterns: list[tuple[str, _Entry]] = []
        self._providers = providers
        health = health or HealthConfig()
        for m in models:
            if m.name.endswith("*"):
                self._patterns.append((m.name[:-1], _Entry(m, providers, health)))
            else:
                self._exact.setdefault(m.name, _Entry(m, providers, health))
        self._auto = auto if auto is not None and AUTO not in self._exact else None
        #: ``{name}-thinking`` → the model config it is listed as (its base's, renamed).
        self._variants: dict[str, ModelConfig] = {}
        if thinking_variants:
            for name, entry in self._exact.items():
                model = entry.model
                variant = name + THINKING
                if variant in self._exact or name.endswith(THINKING):
                    continue
                if builtin_facts(model.primary.upstream_model or name).reasoning:
                    display = f"{model.display_name or name} (thinking)"
                    self._variants[variant] = model.model_copy(update={"name": variant, "display_name": display})
        #: ``auto``'s models by price, cheapest first (prices do not change while running).
        self._cheapest = tuple(sorted(auto.models, key=self._price)) if auto is not None else ()

    def _entry(self, name: str) -> _Entry:
        entry = self._exact.get(name)
        if entry is None:
            if name in self._variants:  # before the patterns (``claude-*``): ``make_plan`` serves it
                raise NotFound(f"model: {name!r} is a variant with thinking on", param="model")
            for prefix, candidate in self._patterns:
                if name.startswith(prefix):
                    return candidate
            raise NotFound(f"model: no provider serves model {name!r}", param="model")
        return entry

    def _ordered(self, name: str) -> tuple[_Entry, Plan]:
        entry = self._entry(name)
        plan = entry.plan
        if plan is None:
            plan = Plan(entry.routes(name), tuple(entry.model.fallbacks))
        if entry.drawn:
            plan = Plan(weighted_order(plan.candidates), plan.fallbacks)
        return entry, plan

    def plan(self, name: str) -> Plan:
        """The plan for ``name``; :class:`NotFound` when no provider serves it."""
        try:
            entry, plan = self._ordered(name)
        except NotFound:
            if name == AUTO and self._auto is not None:
                return self._auto_plan(self._auto)
            raise
        if entry.guarded:
            plan = self._around_open(plan)
        return plan

    def _auto_plan(self, auto: AutoConfig) -> Plan:
        """``auto``: its models in the order of its policy, each the next one's fallback."""
        if auto.policy == "cheapest":
            names = self._cheapest
        elif auto.policy == "weighted":
            names = tuple(random.sample(auto.models, len(auto.models)))
        elif auto.policy == "latency":
            names = tuple(sorted(auto.models, key=self._latency))
        else:
            names = auto.models
        for i, name in enumerate(names):
            try:
                return Plan(self.routes(name), names[i + 1 :])
            except NotFound:  # a pattern that matches no more: checked when loaded
                continue
        raise NotFound("model: no model of router.auto is served", param="model")

    def _price(self, name: str) -> float:
        try:
            model = self._entry(name).model
        except NotFound:
            return float("inf")
        facts = builtin_facts(name) if model.name.endswith("*") else model_facts(model)
        price = facts.price
        return price.input + price.output if price is not None else float("inf")

    def _latency(self, name: str) -> float:
        try:
            measured = [h.latency for h in self._entry(name).healths() if h.latency is not None]
        except NotFound:
            measured = []
        return min(measured) if measured else float("inf")

    def routes(self, name: str) -> tuple[ModelRoute, ...]:
        """The routes of a model tried as a fallback: open deployments last, and its own
        fallbacks not followed."""
        _, plan = self._ordered(name)
        routes = plan.candidates
        return _open_last(routes, time.monotonic()) if len(routes) > 1 else routes

    def _around_open(self, plan: Plan) -> Plan:
        """``plan`` with its open deployments last; the first fallback's when all are open."""
        now = time.monotonic()
        routes = plan.candidates
        if not any(route.health.open_until > now for route in routes):
            return plan
        if any(route.health.open_until <= now for route in routes):
            return Plan(_open_last(routes, now), plan.fallbacks)
        for i, name in enumerate(plan.fallbacks):
            try:
                return Plan(self.routes(name), plan.fallbacks[i + 1 :])
            except NotFound:
                continue
        return plan  # nowhere else to go: the open ones after all

    def thinking_base(self, name: str) -> str | None:
        """The model whose variant with thinking on ``name`` is; None for any other name."""
        return name.removesuffix(THINKING) if name in self._variants else None

    def model(self, name: str) -> ModelConfig:
        """The config a catalog describes ``name`` by (a variant: its base's, renamed)."""
        variant = self._variants.get(name)
        return variant if variant is not None else self._entry(name).model

    def resolve(self, name: str) -> ModelRoute:
        """The first route for ``name``; :class:`NotFound` when no provider serves it."""
        return self.plan(name).candidates[0]

    def provider(self, name: str) -> Provider:
        return self._providers[name]

    def listed(self) -> list[ModelConfig]:
        """Models to show in catalogs (patterns are not models), each variant with thinking on
        beside its base."""
        out: list[ModelConfig] = []
        for name, entry in self._exact.items():
            out.append(entry.model)
            variant = self._variants.get(name + THINKING)
            if variant is not None:
                out.append(variant)
        return out

    def health(self) -> list[DeploymentHealth]:
        """The breakers of every deployment, exact names first."""
        entries = [*self._exact.values(), *(entry for _, entry in self._patterns)]
        return [health for entry in entries for health in entry.healths()]


def _open_last(routes: tuple[ModelRoute, ...], now: float) -> tuple[ModelRoute, ...]:
    if not any(route.health.open_until > now for route in routes):
        return routes
    return tuple(sorted(routes, key=lambda route: route.health.open_until > now))
