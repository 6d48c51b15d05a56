"""Install the pinned Claude Code CLI from npm into the repo's cache and find its executable.

The install lives in ``.cache/npm/claude-code/`` (``.cache/`` is gitignored) and
is reused while its version is the pinned one. Since 2.x the npm package ships a
native executable per platform (``@anthropic-ai/claude-code-<platform>``); its
postinstall copies it over ``bin/claude.exe``. npm releases that do not run
install scripts leave a stub there, so the platform package's binary is the
fallback. Whatever is found must answer ``--version`` with the pinned version.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

#: The Claude Code release these tests were verified with (``npm view @anthropic-ai/claude-code version``).
CLAUDE_CODE_VERSION = "2.1.330"
PACKAGE = "@anthropic-ai/claude-code"

REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / ".cache" / "npm" / "claude-code"
INSTALL_TIMEOUT = 900


class SetupError(RuntimeError):
    """A tool the end-to-end tests need is missing or broken (the message says which and how to fix it)."""


def installed_version(prefix: Path = PREFIX) -> str | None:
    try:
        manifest = json.loads((prefix / "node_modules" / PACKAGE / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("version")


def _candidates(prefix: Path) -> list[Path]:
    modules = prefix / "node_modules"
    found = [modules / ".bin" / "claude", modules / PACKAGE / "bin" / "claude.exe"]
    found += sorted((modules / "@anthropic-ai").glob("claude-code-*/claude"))
    return [p for p in found if p.is_file()]


def _version_of(binary: Path) -> str:
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<{exc}>"
    return (done.stdout or done.stderr).strip()


def find_binary(prefix: Path = PREFIX, version: str = CLAUDE_CODE_VERSION) -> Path | None:
    """The first installed executable that reports ``version``, or ``None``."""
    for binary in _candidates(prefix):
        if _version_of(binary).startswith(version + " "):
            return binary
    return None


def ensure_claude_code(prefix: Path = PREFIX, version: str = CLAUDE_CODE_VERSION) -> Path:
    """The path of a working ``claude`` of the pinned version, installing it first if needed."""
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix.parent / "claude-code.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs must not install into one prefix at once
        if installed_version(prefix) == version and (binary := find_binary(prefix, version)):
            return binary
        npm = shutil.which("npm")
        if npm is None:
            raise SetupError(
                "npm is not installed: the end-to-end tests install Claude Code with it "
                "(install Node.js and npm, e.g. `apt-get install nodejs npm`)"
            )
        cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error"]
        cmd.append(f"{PACKAGE}@{version}")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SetupError(f"`{' '.join(cmd)}` did not finish in {INSTALL_TIMEOUT} s") from None
        if done.returncode != 0:
            raise SetupError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        binary = find_binary(prefix, version)
        if binary is None:
            tried = {str(p): _version_of(p) for p in _candidates(prefix)}
            raise SetupError(f"installed {PACKAGE}@{version} but no executable reports that version: {tried}")
        return binary
