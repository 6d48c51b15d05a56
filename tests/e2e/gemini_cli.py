"""Install the pinned Gemini CLI (``@google/gemini-cli``) from npm into the repo's cache.

The install lives in ``.cache/npm/gemini-cli/`` and is reused while its version is the
pinned one (see ``npm_tools``). The package is one bundled Node program
(``bundle/gemini.js``, ``"engines": {"node": ">=20"}``) with a few optional native
helpers (``node-pty``, ``keytar``) it works without; ``node_modules/.bin/gemini`` runs it
with the ``node`` on ``PATH``. It must answer ``--version`` with the bare pinned version.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.e2e.npm_tools import NPM_CACHE, NpmTool, SetupError

__all__ = ["GEMINI_CLI_VERSION", "PACKAGE", "PREFIX", "SetupError", "check_node", "ensure_gemini_cli", "tool"]

#: The Gemini CLI release these tests were verified with (``npm view @google/gemini-cli version``).
GEMINI_CLI_VERSION = "0.61.0"
PACKAGE = "@google/gemini-cli"
PREFIX = NPM_CACHE / "gemini-cli"
#: The oldest Node major the pinned release runs on (its ``engines.node``).
NODE_MAJOR = 20


def _candidates(modules: Path) -> list[Path]:
    return [modules / ".bin" / "gemini", modules / PACKAGE / "bundle" / "gemini.js"]


def _reports(output: str, version: str) -> bool:
    return output.splitlines()[-1:] == [version]  # "0.61.0"


def tool(prefix: Path = PREFIX, version: str = GEMINI_CLI_VERSION) -> NpmTool:
    return NpmTool(PACKAGE, version, prefix, _candidates, _reports)


def check_node() -> None:
    """Raise :class:`SetupError` unless a ``node`` new enough for the pinned release is on ``PATH``."""
    node = shutil.which("node")
    if node is None:
        raise SetupError(
            f"node is not installed: the end-to-end tests run {PACKAGE} with it "
            f"(install Node.js {NODE_MAJOR} or newer, e.g. `apt-get install nodejs npm`)"
        )
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"`{node} --version` failed: {exc}") from None
    try:
        major = int(out.lstrip("v").split(".")[0])
    except ValueError:
        raise SetupError(f"`{node} --version` printed {out!r}, not a Node version") from None
    if major < NODE_MAJOR:
        raise SetupError(f"{PACKAGE}@{GEMINI_CLI_VERSION} needs Node {NODE_MAJOR} or newer; {node} is {out}")


def ensure_gemini_cli(prefix: Path = PREFIX, version: str = GEMINI_CLI_VERSION) -> Path:
    """The path of a working ``gemini`` of the pinned version, installing it first if needed."""
    check_node()
    return tool(prefix, version).ensure()
