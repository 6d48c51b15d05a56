"""Run one Claude Code scenario against a gateway and a fake upstream, all on loopback.

Meant to run inside a fresh network namespace, where only ``lo`` exists (it
refuses to run anywhere else, so that a real CLI can never reach an outside host)::

    unshare -n -- .venv/bin/python tests/e2e/netns_run.py SCENARIO --claude PATH [--env NAME=VALUE ...]

It brings ``lo`` up, starts the fake upstream with a required provider key, and
(except for the ``direct-*`` scenarios, where Claude Code talks to the fake
itself, as a baseline of what the client sends) a gateway in front of it whose
provider kind depends on the scenario. Then it runs
``claude -p PROMPT --output-format json`` once, in an empty project directory
with an empty ``HOME``, and prints one JSON document on stdout::

    {"scenario", "provider", "prompt", "gateway_url", "master_key", "upstream_key",
     "cli": {"argv", "exit_code", "timed_out", "elapsed", "stdout", "stderr", "json"},
     "requests": [the fake upstream's recorded requests, oldest first],
     "gateway_log": str}

A failing or hanging Claude Code is reported in that document (the pytest side
shows it); only a failure to start the servers makes this script exit non-zero.
``--env NAME=VALUE`` changes Claude Code's environment (``--env NAME=`` removes a
variable), e.g. ``--env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=`` to see the
start-up probes it otherwise leaves out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modelgate.testing.gateway_runner import run_gateway
from modelgate.testing.runner import run_fake_upstream

MASTER_KEY = "mg-e2e-master-key-5b1f0c"
UPSTREAM_KEY = "sk-e2e-upstream-key-9d27a4"
#: What the tool scenarios make Claude Code run in Bash, and find again in the result.
MARKER = "modelgate-e2e-marker"
#: The fixed answer of the plain scenarios.
PLAIN_REPLY = "modelgate-e2e-plain-reply: the gateway works"
#: The model id the OpenAI-compatible route sends upstream for every ``claude-*`` name.
OPENAI_UPSTREAM_MODEL = "qwen2.5-coder:7b"

PLAIN_PROMPT = f"Say hello. [[fake:text {PLAIN_REPLY}]]"
TOOL_PROMPT = 'Run the marker command. [[fake:tool Bash {"command":"echo ' + MARKER + '"}]]'

#: scenario → (how Claude Code reaches the fake, prompt)
SCENARIOS: dict[str, tuple[str, str]] = {
    "direct-plain": ("direct", PLAIN_PROMPT),
    "direct-tool": ("direct", TOOL_PROMPT),
    "anthropic-plain": ("anthropic", PLAIN_PROMPT),
    "anthropic-tool": ("anthropic", TOOL_PROMPT),
    "openai-plain": ("openai-compatible", PLAIN_PROMPT),
    "openai-tool": ("openai-compatible", TOOL_PROMPT),
}

#: Our own environment that must not reach Claude Code (keys, endpoints, proxies).
_DROP_PREFIXES = ("ANTHROPIC_", "CLAUDE", "OPENAI_", "MODELGATE_", "AWS_", "GOOGLE_", "VERTEX_", "NPM_", "npm_")
_DROP_NAMES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"})


def check_isolated() -> None:
    """Refuse to run a real CLI unless loopback is the only network interface."""
    interfaces = sorted(name for _, name in socket.if_nameindex())  # this namespace's (unlike /sys/class/net)
    if interfaces != ["lo"]:
        sys.exit(f"netns_run.py: not in an isolated network namespace (interfaces: {interfaces}); use `unshare -n --`")


def bring_loopback_up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def gateway_config(provider: str, fake_anthropic_url: str, fake_openai_url: str) -> dict[str, Any]:
    if provider == "openai-compatible":
        prov = {"name": "local", "type": provider, "base_url": fake_openai_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "local", "upstream_model": OPENAI_UPSTREAM_MODEL}]
    else:
        prov = {"name": "anth", "type": "anthropic", "base_url": fake_anthropic_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "anth"}]
    return {"providers": [prov], "models": models}


def claude_env(home: Path, base_url: str, api_key: str, overrides: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        TMPDIR=str(home / "tmp"),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=api_key,
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_BUG_COMMAND="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_DISABLE_TERMINAL_TITLE="1",
        NO_PROXY="127.0.0.1,localhost",
        TERM="dumb",
        CI="1",
    )
    for item in overrides:
        name, _, value = item.partition("=")
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def run_claude(claude: str, prompt: str, workdir: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    # Root may not use --dangerously-skip-permissions; allowing Bash is all the tool scenarios need.
    argv = [claude, "-p", prompt, "--output-format", "json", "--allowedTools", "Bash", "--max-turns", "4"]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout kills the tools it started too
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    elapsed = time.monotonic() - started
    stdout = out.decode(errors="replace")
    try:
        parsed = json.loads(stdout)
    except ValueError:
        parsed = None
    return {
        "argv": argv,
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "elapsed": round(elapsed, 2),
        "stdout": stdout,
        "stderr": err.decode(errors="replace"),
        "json": parsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--claude", required=True, help="path of the claude executable")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds Claude Code may take")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="set (with no value: unset) a variable"
    )
    args = parser.parse_args(argv)
    check_isolated()
    bring_loopback_up()

    provider, prompt = SCENARIOS[args.scenario]
    report: dict[str, Any] = {
        "scenario": args.scenario,
        "provider": provider,
        "prompt": prompt,
        "master_key": MASTER_KEY,
        "upstream_key": UPSTREAM_KEY,
        "gateway_url": None,
        "gateway_log": "",
    }
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modelgate-e2e-")))
        fake = stack.enter_context(run_fake_upstream(require_key=UPSTREAM_KEY))
        gateway = None
        if provider == "direct":
            base_url, api_key = fake.anthropic_base_url, UPSTREAM_KEY
        else:
            config = gateway_config(provider, fake.anthropic_base_url, fake.openai_base_url)
            gateway = stack.enter_context(run_gateway(config, master_key=MASTER_KEY))
            base_url, api_key = gateway.base_url, MASTER_KEY
            report["gateway_url"] = base_url
        home, workdir = tmp / "home", tmp / "project"
        for d in (home / "tmp", workdir):
            d.mkdir(parents=True)
        env = claude_env(home, base_url, api_key, args.env)
        report["cli"] = run_claude(args.claude, prompt, workdir, env, args.timeout)
        report["requests"] = fake.requests()
        if gateway is not None:
            report["gateway_log"] = gateway.output()
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
