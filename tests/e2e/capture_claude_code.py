"""Capture what a Claude Code release sends: the tool that made ``tests/fixtures/claude_code``.

Runs one release against the fake upstream behind the recording proxy, in a loopback-only
network namespace (it refuses to run anywhere else), and writes every request it recorded
(target, headers, body as sent) to ``--out`` as JSON::

    npm install --prefix /tmp/cc-2.1.5 @anthropic-ai/claude-code@2.1.5
    unshare -n -- .venv/bin/python -m tests.e2e.capture_claude_code \\
        --claude /tmp/cc-2.1.5/node_modules/.bin/claude --mode print --out /tmp/2.1.5-print.json

``--mode print`` runs ``claude -p hi``; ``interactive`` starts the CLI on a pseudo-terminal
and kills it after ``--seconds``; ``chat`` also types a prompt after 8 s (the session-title
request follows it); ``model`` types ``/model claude-custom-probe-1`` (the validation
probe). ``HOME`` is empty but for onboarding marked done and the test key approved.
Not a test: run by hand when a release's traffic needs looking at.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from modelgate.testing.runner import run_fake_upstream
from tests.e2e.harness import UPSTREAM_KEY, bring_loopback_up, check_isolated
from tests.e2e.netns_run import claude_env
from tests.e2e.recording_proxy import recording_proxy

#: Left out of the e2e environment (``claude_env``) so that every background request is sent:
#: the second one also stops the session-title request.
NO_SUPPRESSION = ["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=", "CLAUDE_CODE_DISABLE_TERMINAL_TITLE="]
TYPED = {"chat": b"hello there, write a haiku", "model": b"/model claude-custom-probe-1"}


def prepare_home(home: Path, project: Path) -> None:
    """An empty home where the CLI starts at its prompt: onboarding done, key approved, folder trusted."""
    (home / "tmp").mkdir(parents=True)
    project.mkdir()
    settings = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [UPSTREAM_KEY[-20:]], "rejected": []},
        "projects": {str(project): {"hasTrustDialogAccepted": True, "allowedTools": []}},
    }
    (home / ".claude.json").write_text(json.dumps(settings))


def run_on_terminal(argv: list[str], cwd: Path, env: dict[str, str], seconds: float, typed: bytes | None) -> bytes:
    """Run ``argv`` on a pseudo-terminal for ``seconds``, typing ``typed`` (then Enter) after 8 s."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execve(argv[0], argv, env)
    output = b""
    started = time.monotonic()
    while (now := time.monotonic()) < started + seconds:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                output += os.read(fd, 65536)
            except OSError:
                break
        if typed and now > started + 8:
            for char in typed:  # one key at a time, as a user types
                os.write(fd, bytes([char]))
                time.sleep(0.03)
            time.sleep(1.0)
            os.write(fd, b"\r")
            typed = None
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--claude", required=True, help="the release's claude executable (or cli.js)")
    parser.add_argument("--mode", choices=["print", "interactive", "chat", "model"], default="print")
    parser.add_argument("--seconds", type=float, default=25.0, help="how long an interactive run lasts")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    check_isolated()
    bring_loopback_up()
    with tempfile.TemporaryDirectory() as tmp, run_fake_upstream(require_key=UPSTREAM_KEY) as fake:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        prepare_home(home, project)
        with recording_proxy(fake.host, fake.port) as proxy:
            env = claude_env(home, proxy.base_url, UPSTREAM_KEY, NO_SUPPRESSION)
            if args.mode == "print":
                argv = [args.claude, "-p", "hi", "--output-format", "json"]
                done = subprocess.run(argv, cwd=project, env=env, stdin=subprocess.DEVNULL, capture_output=True)
                output = done.stdout + done.stderr
            else:
                env["TERM"] = "xterm-256color"
                output = run_on_terminal([args.claude], project, env, args.seconds, TYPED.get(args.mode))
            records: list[dict[str, Any]] = proxy.records()
    capture = {"records": records, "output": output.decode(errors="replace")[-6000:]}
    args.out.write_text(json.dumps(capture, indent=1))
    print(f"{len(records)} requests recorded in {args.out}")


if __name__ == "__main__":
    main()
