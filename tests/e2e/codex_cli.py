"""Install the pinned Codex CLI (``@openai/codex``) from npm into the repo's cache.

The install lives in ``.cache/npm/codex/`` and is reused while its version is the
pinned one (see ``npm_tools``). ``@openai/codex`` is a small Node launcher
(``bin/codex.js``) whose optional dependency ``@openai/codex-<platform>`` (an npm alias
of ``@openai/codex@<version>-<platform>``) holds the native Rust executable under
``vendor/<target triple>/bin/codex``; the launcher ``execve``\\ s it. The tests run the
launcher, as users do (``node_modules/.bin/codex``); the native executable is the
fallback, e.g. when Node is too old for the launcher. Either must answer ``--version``
with ``codex-cli <pinned version>``.
"""

from __future__ import annotations

import platform
from pathlib import Path

from tests.e2e.npm_tools import NPM_CACHE, NpmTool, SetupError

__all__ = ["CODEX_VERSION", "PACKAGE", "PREFIX", "SetupError", "ensure_codex", "native_binary", "tool"]

#: The Codex release these tests were verified with (``npm view @openai/codex version``).
CODEX_VERSION = "0.169.0"
PACKAGE = "@openai/codex"
PREFIX = NPM_CACHE / "codex"

#: Codex's own names for the platform packages (``bin/codex.js``), Linux and macOS only.
_PLATFORMS = {
    ("Linux", "x86_64"): ("codex-linux-x64", "x86_64-unknown-linux-musl"),
    ("Linux", "aarch64"): ("codex-linux-arm64", "aarch64-unknown-linux-musl"),
    ("Darwin", "x86_64"): ("codex-darwin-x64", "x86_64-apple-darwin"),
    ("Darwin", "arm64"): ("codex-darwin-arm64", "aarch64-apple-darwin"),
}


def native_binary(modules: Path = PREFIX / "node_modules") -> Path:
    """Where the platform package puts the native executable on this machine."""
    key = (platform.system(), platform.machine())
    if key not in _PLATFORMS:
        raise SetupError(f"Codex ships no native executable for {key}; the end-to-end tests cannot run it")
    package, triple = _PLATFORMS[key]
    return modules / "@openai" / package / "vendor" / triple / "bin" / "codex"


def _candidates(modules: Path) -> list[Path]:
    return [modules / ".bin" / "codex", native_binary(modules)]


def _reports(output: str, version: str) -> bool:
    return output == f"codex-cli {version}"


def tool(prefix: Path = PREFIX, version: str = CODEX_VERSION) -> NpmTool:
    return NpmTool(PACKAGE, version, prefix, _candidates, _reports)


def ensure_codex(prefix: Path = PREFIX, version: str = CODEX_VERSION) -> Path:
    """The path of a working ``codex`` of the pinned version, installing it first if needed."""
    return tool(prefix, version).ensure()
