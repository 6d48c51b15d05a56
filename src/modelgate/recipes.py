"""The client recipes: how each client is pointed at the gateway, from one source.

``recipes.md`` (package data, next to this module) holds every recipe as a fenced block whose
info string names it (```` ```sh recipe=claude-code-env ````), under a ``## Client`` heading.
The same blocks are in ``docs/clients.md`` (a test compares them), the end-to-end tests
configure the real CLIs from them, and the portal's endpoint page shows each endpoint form
filled in with the endpoint's base URL. A recipe is written for the gateway's default address,
a placeholder key and, in its ``NAME@endpoint`` form, a placeholder endpoint id;
:meth:`Recipe.fill` puts real ones in their place (the portal fills in only the URL: the key
stays a placeholder, the gateway keeps no key to show).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final

#: What the recipes are written with, and :meth:`Recipe.fill` replaces.
BASE_URL: Final = "http://127.0.0.1:8080"
KEY: Final = "sk-mg-your-virtual-key"
ENDPOINT_ID: Final = "ep_abc123def456"
MODEL: Final = "claude-sonnet-4-6"
#: The suffix of a recipe's form through a per-application endpoint.
ENDPOINT_FORM: Final = "@endpoint"

#: Where a recipe goes, for a reader who sees it without the document's prose (the portal).
WHERE: Final = {
    "claude-code-env": "In the shell",
    "claude-code-settings": "Or in ~/.claude/settings.json",
    "codex-config": "~/.codex/config.toml",
    "codex-env": "In the shell",
    "gemini-cli-env": "In the shell (or ~/.gemini/.env)",
    "gemini-cli-settings": "~/.gemini/settings.json",
    "opencode-anthropic": "opencode.json, Claude models (with MODELGATE_API_KEY set)",
    "opencode-openai": "opencode.json, any model over Chat Completions",
}

_BLOCK: Final = re.compile(r"^```(\w+)[ \t]+recipe=(\S+)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PART: Final = re.compile(r"^## ([^\n]+)$|" + _BLOCK.pattern, re.MULTILINE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class Recipe:
    name: str
    #: The block's language (``sh``, ``json``, ``toml``, ``python``).
    language: str
    text: str
    #: The client it is for: the heading it stands under ("" when there is none).
    client: str = ""

    @property
    def base(self) -> str:
        """The name without its ``@endpoint`` suffix."""
        return self.name.removesuffix(ENDPOINT_FORM)

    @property
    def where(self) -> str:
        return WHERE.get(self.base, "")

    def fill(self, base_url: str, key: str = KEY, *, endpoint_id: str | None = None) -> str:
        """The recipe with a gateway's base URL (no trailing slash), a key and an endpoint id."""
        text = self.text.replace(BASE_URL, base_url.rstrip("/")).replace(KEY, key)
        return text.replace(ENDPOINT_ID, endpoint_id) if endpoint_id is not None else text


def parse(markdown: str, source: str = "recipes") -> dict[str, Recipe]:
    """Every recipe block of a Markdown text, by name, with the ``## `` heading above it."""
    found: dict[str, Recipe] = {}
    client = ""
    for match in _PART.finditer(markdown):
        heading, language, name, text = match.groups()
        if heading is not None:
            client = heading.strip()
            continue
        if name in found:
            raise ValueError(f"{source}: recipe {name!r} is written twice")
        found[name] = Recipe(name, language, text, client)
    return found


@cache
def recipes() -> dict[str, Recipe]:
    """The package's recipes, by name, in the order they are written."""
    return parse((files("modelgate") / "recipes.md").read_text(encoding="utf-8"), "recipes.md")


def recipe(name: str) -> Recipe:
    try:
        return recipes()[name]
    except KeyError:
        raise LookupError(f"no recipe {name!r} (there are: {', '.join(recipes())})") from None


@dataclass(frozen=True, slots=True)
class Snippet:
    """A recipe filled in for one endpoint."""

    recipe: Recipe
    text: str


def for_endpoint(base_url: str, endpoint_id: str) -> list[tuple[str, list[Snippet]]]:
    """Each client with what configures it through an endpoint: its ``@endpoint`` recipes, and
    the recipes that have no endpoint form (no URL in them: the key, the auth method), filled in
    with the gateway's ``base_url`` and ``endpoint_id``; the key stays the placeholder."""
    every = recipes()
    clients: dict[str, list[Snippet]] = {}
    for name, found in every.items():
        if name.endswith(ENDPOINT_FORM) or f"{name}{ENDPOINT_FORM}" not in every:
            clients.setdefault(found.client, []).append(Snippet(found, found.fill(base_url, endpoint_id=endpoint_id)))
    # The endpoint's own configuration first, then what goes with it (Codex's key variable).
    return [
        (client, sorted(s, key=lambda s: not s.recipe.name.endswith(ENDPOINT_FORM))) for client, s in clients.items()
    ]
