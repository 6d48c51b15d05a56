"""The model catalog: which provider serves a requested model name, and as what
(:class:`ModelRoute`, named apart from Starlette's URL ``Route``).

Built once from the config; a lookup is a dict hit, or a scan of the (few)
prefix patterns such as ``claude-*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelgate.config import ModelConfig
from modelgate.errors import NotFound

if TYPE_CHECKING:
    from modelgate.providers.base import Provider


@dataclass(slots=True, frozen=True)
class ModelRoute:
    """Where one request goes: the provider and the model id it knows."""

    model: ModelConfig
    provider: Provider
    upstream_model: str

    def max_tokens(self, requested: int) -> int:
        """``requested``, capped at the model's configured output limit (clients such as Claude
        Code ask for 32k–64k tokens, which small local models reject)."""
        cap = self.model.max_output_tokens
        return min(requested, cap) if cap else requested


class ModelCatalog:
    def __init__(self, models: list[ModelConfig], providers: dict[str, Provider]) -> None:
        self._exact: dict[str, ModelConfig] = {}
        self._patterns: list[tuple[str, ModelConfig]] = []
        self._providers = providers
        for m in models:
            if m.name.endswith("*"):
                self._patterns.append((m.name[:-1], m))
            else:
                self._exact.setdefault(m.name, m)

    def resolve(self, name: str) -> ModelRoute:
        """The route for ``name``; :class:`NotFound` when no provider serves it."""
        model = self._exact.get(name)
        if model is None:
            for prefix, candidate in self._patterns:
                if name.startswith(prefix):
                    model = candidate
                    break
            else:
                raise NotFound(f"model: no provider serves model {name!r}", param="model")
        return ModelRoute(model, self._providers[model.provider], model.upstream_model or name)

    def provider(self, name: str) -> Provider:
        return self._providers[name]

    def listed(self) -> list[ModelConfig]:
        """Models to show in catalogs (patterns are not models)."""
        return list(self._exact.values())
