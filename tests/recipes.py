"""The client recipes, as the tests use them: the package's (``src/modelgate/recipes.md``).

Each fenced block whose info string holds ``recipe=NAME`` (```` ```sh recipe=claude-code-env ````)
is a recipe: the configuration a user copies. The package holds them (:mod:`modelgate.recipes`,
which the portal's endpoint page fills in), ``docs/clients.md`` shows the same blocks
(``tests/test_docs_clients.py`` compares them, so the document, the portal and the tests cannot
drift), the end-to-end runners build each CLI's configuration from them (``tests/e2e/netns_*.py``),
and ``tests/test_docs_clients.py`` runs the SDK and curl blocks against a real gateway.

A recipe is written for the gateway's default address and a placeholder key (and, in its
``NAME@endpoint`` form, an endpoint id); :meth:`Recipe.fill` puts a test's own in their place.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from modelgate.recipes import BASE_URL, ENDPOINT_ID, KEY, MODEL, Recipe, parse, recipe, recipes

DOC = Path(__file__).resolve().parents[1] / "docs" / "clients.md"

__all__ = [
    "BASE_URL",
    "DOC",
    "ENDPOINT_ID",
    "KEY",
    "MODEL",
    "Recipe",
    "doc_recipes",
    "exports",
    "recipe",
    "recipes",
    "with_model",
]


def doc_recipes() -> dict[str, Recipe]:
    """The recipe blocks of ``docs/clients.md``, by name."""
    return parse(DOC.read_text(encoding="utf-8"), DOC.name)


def exports(text: str) -> dict[str, str]:
    """The variables a shell recipe sets (its ``export NAME=VALUE`` lines), in order."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


def with_model(text: str, model: str) -> str:
    """A recipe with ``model`` in place of the model it names."""
    return text.replace(f'"{MODEL}"', f'"{model}"')
