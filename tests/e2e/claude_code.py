"""Install the pinned Claude Code CLI from npm into the repo's cache and find its executable.

The install lives in ``.cache/npm/claude-code/`` and is reused while its version is
the pinned one (see ``npm_tools``). Since 2.x the npm package ships a native
executable per platform (``@anthropic-ai/claude-code-<platform>``); its postinstall
copies it over ``bin/claude.exe``. npm releases that do not run install scripts leave
a stub there, so the platform package's binary is the fallback. Whatever is found
must answer ``--version`` with the pinned version.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.npm_tools import NPM_CACHE, NpmTool, SetupError

__all__ = [
    "CLAUDE_CODE_VERSION",
    "PACKAGE",
    "PREFIX",
    "WARMUP_PREFIX",
    "WARMUP_VERSION",
    "SetupError",
    "ensure_claude_code",
    "tool",
]

#: The Claude Code release these tests were verified with (``npm view @anthropic-ai/claude-code version``).
CLAUDE_CODE_VERSION = "2.1.330"
PACKAGE = "@anthropic-ai/claude-code"
PREFIX = NPM_CACHE / "claude-code"
#: The last release seen sending ``Warmup`` calls at start-up (docs/routing.md), for the
#: warm-up test; a JavaScript package (no native executable), installed beside the pinned one.
WARMUP_VERSION = "2.1.5"
WARMUP_PREFIX = NPM_CACHE / f"claude-code-{WARMUP_VERSION}"


def _candidates(modules: Path) -> list[Path]:
    found = [modules / ".bin" / "claude", modules / PACKAGE / "bin" / "claude.exe"]
    return found + sorted((modules / "@anthropic-ai").glob("claude-code-*/claude"))


def _reports(output: str, version: str) -> bool:
    return output.startswith(version + " ")  # "2.1.330 (Claude Code)"


def tool(prefix: Path = PREFIX, version: str = CLAUDE_CODE_VERSION) -> NpmTool:
    return NpmTool(PACKAGE, version, prefix, _candidates, _reports)


def ensure_claude_code(prefix: Path = PREFIX, version: str = CLAUDE_CODE_VERSION) -> Path:
    """The path of a working ``claude`` of the pinned version, installing it first if needed."""
    return tool(prefix, version).ensure()
