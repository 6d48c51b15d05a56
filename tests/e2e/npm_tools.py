"""Install a pinned CLI from npm into the repo's cache, once, and find its executable.

Each tool lives in its own prefix under ``.cache/npm/`` (``.cache/`` is gitignored) and
is reused while the installed package is the pinned version and one of its candidate
executables answers ``--version`` with that version. Installs take a file lock, so two
test runs never install into one prefix at once. CLIs that ship a native executable in
a per-platform optional package (Claude Code, Codex) need npm's optional dependencies:
the install asks for them explicitly (``--include=optional``), whatever the user's npm
config says.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NPM_CACHE = REPO / ".cache" / "npm"
INSTALL_TIMEOUT = 900


class SetupError(RuntimeError):
    """A tool the end-to-end tests need is missing or broken (the message says which and how to fix it)."""


def version_output(binary: Path) -> str:
    """What ``binary --version`` prints (stdout, else stderr), or ``<error>`` when it cannot run."""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<{exc}>"
    return (done.stdout or done.stderr).strip()


@dataclass(frozen=True, slots=True)
class NpmTool:
    """A CLI published on npm, pinned to one version, installed into ``prefix``."""

    #: The npm package, e.g. ``@openai/codex``.
    package: str
    version: str
    prefix: Path
    #: The executables worth trying, in order of preference (given ``prefix/node_modules``).
    candidates: Callable[[Path], list[Path]]
    #: Whether a ``--version`` output (and the pinned version) says it is the right release.
    reports: Callable[[str, str], bool]

    @property
    def modules(self) -> Path:
        return self.prefix / "node_modules"

    def installed_version(self) -> str | None:
        try:
            manifest = json.loads((self.modules / self.package / "package.json").read_text())
        except (OSError, ValueError):
            return None
        return manifest.get("version")

    def existing(self) -> list[Path]:
        return [p for p in self.candidates(self.modules) if p.is_file()]

    def find_binary(self) -> Path | None:
        """The first installed executable that reports the pinned version, or ``None``."""
        for binary in self.existing():
            if self.reports(version_output(binary), self.version):
                return binary
        return None

    def ensure(self) -> Path:
        """The path of a working executable of the pinned version, installing it first if needed."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        with (self.prefix.parent / f"{self.prefix.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.installed_version() == self.version and (binary := self.find_binary()):
                return binary
            self._install()
            binary = self.find_binary()
            if binary is None:
                tried = {str(p): version_output(p) for p in self.existing()}
                raise SetupError(
                    f"installed {self.package}@{self.version} into {self.prefix} "
                    f"but no executable reports that version: {tried or 'none found'}"
                )
            return binary

    def _install(self) -> None:
        npm = shutil.which("npm")
        if npm is None:
            raise SetupError(
                f"npm is not installed: the end-to-end tests install {self.package} with it "
                "(install Node.js and npm, e.g. `apt-get install nodejs npm`)"
            )
        cmd = [npm, "install", "--prefix", str(self.prefix), "--no-audit", "--no-fund", "--loglevel=error"]
        cmd += ["--include=optional", f"{self.package}@{self.version}"]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SetupError(f"`{' '.join(cmd)}` did not finish in {INSTALL_TIMEOUT} s") from None
        if done.returncode != 0:
            raise SetupError(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
