"""Run one Claude Code scenario against a gateway and a fake upstream, all on loopback.

Meant to run inside a fresh network namespace, where only ``lo`` exists (it
refuses to run anywhere else, so that a real CLI can never reach an outside host)::

    unshare -n -- .venv/bin/python -m tests.e2e.netns_run SCENARIO --claude PATH [--env NAME=VALUE ...]

It brings ``lo`` up, starts the fake upstream with a required provider key, and
(except for the ``direct-*`` scenarios, where Claude Code talks to the fake
itself, as a baseline of what the client sends) a gateway in front of it whose
provider kind depends on the scenario. Then it runs
``claude -p PROMPT --output-format json`` once, in an empty project directory
with an empty ``HOME``, and prints one JSON report on stdout (see ``harness``),
whose ``cli`` also holds ``json``, the parsed output.

A failing or hanging Claude Code is reported in that document (the pytest side
shows it); only a failure to start the servers makes this script exit non-zero.
``--env NAME=VALUE`` changes Claude Code's environment (``--env NAME=`` removes a
variable), e.g. ``--env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=`` to see the
start-up probes it otherwise leaves out.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelgate.testing.gateway_runner import run_gateway
from modelgate.testing.runner import run_fake_upstream
from tests.e2e.harness import (
    MARKER,
    MASTER_KEY,
    PLAIN_REPLY,
    UPSTREAM_KEY,
    bring_loopback_up,
    check_isolated,
    cli_env,
    emit,
    make_dirs,
    run_cli,
    runner_parser,
)

__all__ = ["MARKER", "MASTER_KEY", "OPENAI_UPSTREAM_MODEL", "PLAIN_REPLY", "SCENARIOS", "UPSTREAM_KEY", "main"]

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


def gateway_config(provider: str, fake_anthropic_url: str, fake_openai_url: str) -> dict[str, Any]:
    if provider == "openai-compatible":
        prov = {"name": "local", "type": provider, "base_url": fake_openai_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "local", "upstream_model": OPENAI_UPSTREAM_MODEL}]
    else:
        prov = {"name": "anth", "type": "anthropic", "base_url": fake_anthropic_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "anth"}]
    return {"providers": [prov], "models": models}


def claude_env(home: Path, base_url: str, api_key: str, overrides: list[str]) -> dict[str, str]:
    return cli_env(
        home,
        overrides,
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=api_key,
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_BUG_COMMAND="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_DISABLE_TERMINAL_TITLE="1",
    )


def run_claude(claude: str, prompt: str, workdir: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    # Root may not use --dangerously-skip-permissions; allowing Bash is all the tool scenarios need.
    argv = [claude, "-p", prompt, "--output-format", "json", "--allowedTools", "Bash", "--max-turns", "4"]
    result = run_cli(argv, workdir, env, timeout)
    try:
        result["json"] = json.loads(result["stdout"])
    except ValueError:
        result["json"] = None
    return result


def main(argv: list[str] | None = None) -> int:
    args = runner_parser(__doc__, SCENARIOS, "claude").parse_args(argv)
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
        make_dirs(home / "tmp", workdir)
        env = claude_env(home, base_url, api_key, args.env)
        report["cli"] = run_claude(args.claude, prompt, workdir, env, args.timeout)
        report["requests"] = fake.requests()
        if gateway is not None:
            report["gateway_log"] = gateway.output()
    emit(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
