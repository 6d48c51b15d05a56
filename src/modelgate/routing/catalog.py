"""The model catalog: which upstreams serve a requested model name, in which order, and
where to go when they all fail (:class:`Plan`; routes are :class:`ModelRoute`, named
apart from Starlette's URL ``Route``).

Built once from the config. A model is served by one deployment (``provider`` +
``upstream_model``) or several (``deployments``, each with a ``weight`` and a
``priority``). The plan of an exact name with one deployment is built once and handed out
as it is: a lookup is a dict hit. Patterns (``claude-*``) build their routes per request,
since the upstream model is the requested name; several deployments of equal priority are
ordered per request, at random in proportion to their weights.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelgate.config import DeploymentConfig, ModelConfig
from modelgate.errors import NotFound

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
    """One configured model: its deployments (sorted by priority) and, for an exact name,
    its plan built once."""

    __slots__ = ("deployments", "drawn", "model", "plan")

    def __init__(self, model: ModelConfig, providers: dict[str, Provider]) -> None:
        self.model = model
        targets = sorted(model.targets, key=lambda d: d.priority)
        self.deployments: tuple[tuple[DeploymentConfig, Provider], ...] = tuple(
            (d, providers[d.provider]) for d in targets
        )
        priorities = [d.priority for d in targets]
        #: Whether the order is drawn per request (deployments of equal priority share traffic).
        self.drawn = len(set(priorities)) < len(priorities)
        self.plan: Plan | None = None
        if not model.name.endswith("*"):
            self.plan = Plan(self.routes(model.name), tuple(model.fallbacks))

    def routes(self, name: str) -> tuple[ModelRoute, ...]:
        return tuple(
            ModelRoute(self.model, provider, d.upstream_model or name, name, d.weight, d.priority)
            for d, provider in self.deployments
        )


def weighted_order(routes: tuple[ModelRoute, ...], draw: Callable[[], float] = random.random) -> tuple[ModelRoute, ...]:
    """``routes`` (sorted by priority) with each group of equal priority shuffled at random in
    proportion to the weights: the first place goes to a route with probability
    weight / total of its group (Efraimidis–Spirakis: sort by ``u ** (1 / weight)``)."""
    keyed = sorted(routes, key=lambda r: (r.priority, -(draw() ** (1.0 / r.weight))))
    return tuple(keyed)


class ModelCatalog:
    def __init__(self, models: list[ModelConfig], providers: dict[str, Provider]) -> None:
        self._exact: dict[str, _Entry] = {}
        self._patterns: list[tuple[str, _Entry]] = []
        self._providers = providers
        for m in models:
            if m.name.endswith("*"):
                self._patterns.append((m.name[:-1], _Entry(m, providers)))
            else:
                self._exact.setdefault(m.name, _Entry(m, providers))

    def _entry(self, name: str) -> _Entry:
        entry = self._exact.get(name)
        if entry is None:
            for prefix, candidate in self._patterns:
                if name.startswith(prefix):
                    return candidate
            raise NotFound(f"model: no provider serves model {name!r}", param="model")
        return entry

    def plan(self, name: str) -> Plan:
        """The plan for ``name``; :class:`NotFound` when no provider serves it."""
        entry = self._entry(name)
        plan = entry.plan
        if plan is None:
            plan = Plan(entry.routes(name), tuple(entry.model.fallbacks))
        if entry.drawn:
            plan = Plan(weighted_order(plan.candidates), plan.fallbacks)
        return plan

    def resolve(self, name: str) -> ModelRoute:
        """The first route for ``name``; :class:`NotFound` when no provider serves it."""
        return self.plan(name).candidates[0]

    def provider(self, name: str) -> Provider:
        return self._providers[name]

    def listed(self) -> list[ModelConfig]:
        """Models to show in catalogs (patterns are not models)."""
        return [entry.model for entry in self._exact.values()]
