"""The client recipes of ``docs/clients.md``, as the tests use them.

Each fenced block of that file whose info string holds ``recipe=NAME`` (```` ```sh
recipe=claude-code-env ````) is a recipe: the configuration a user copies. The end-to-end
runners build each CLI's configuration from these blocks (``tests/e2e/netns_*.py``), and
``tests/test_docs_clients.py`` runs the SDK and curl blocks against a real gateway, so the
document is what is tested: change a recipe there, and the tests change with it.

A recipe is written for the gateway's default address and a placeholder key (and, in its
``NAME@endpoint`` form, an endpoint id); :meth:`Recipe.fill` puts a test's own in their place.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "clients.md"

#: What the recipes are written with, and the tests replace.
BASE_URL = "http://127.0.0.1:8080"
KEY = "sk-mg-your-virtual-key"
ENDPOINT_ID = "ep_abc123def456"
MODEL = "claude-sonnet-4-6"

_BLOCK = re.compile(r"^```(\w+)[ \t]+recipe=(\S+)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Recipe:
    name: str
    #: The block's language (``sh``, ``json``, ``toml``, ``python``).
    language: str
    text: str

    def fill(self, base_url: str, key: str, *, endpoint_id: str | None = None) -> str:
        """The recipe with a gateway's base URL (no trailing slash), a key and an endpoint id."""
        text = self.text.replace(BASE_URL, base_url).replace(KEY, key)
        return text.replace(ENDPOINT_ID, endpoint_id) if endpoint_id is not None else text


@cache
def recipes() -> dict[str, Recipe]:
    """Every recipe of the document, by name (a name used twice is an error)."""
    found: dict[str, Recipe] = {}
    for language, name, text in _BLOCK.findall(DOC.read_text(encoding="utf-8")):
        if name in found:
            raise ValueError(f"{DOC.name}: recipe {name!r} is written twice")
        found[name] = Recipe(name, language, text)
    return found


def recipe(name: str) -> Recipe:
    try:
        return recipes()[name]
    except KeyError:
        raise LookupError(f"{DOC.name} has no recipe {name!r} (it has: {', '.join(recipes())})") from None


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
