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

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from modelgate.testing.runner import FakeUpstream
from tests.e2e.harness import MARKER, MASTER_KEY, PLAIN_REPLY, UPSTREAM_KEY, Stage, cli_env, run_cli, run_scenario
from tests.recipes import exports, recipe

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
    "anthropic-fallback": ("anthropic-fallback", TOOL_PROMPT),
    "anthropic-endpoint": ("anthropic", PLAIN_PROMPT),
}


def gateway_config(provider: str, fake: FakeUpstream) -> dict[str, Any]:
    """Every ``claude-*`` name goes to the one provider of the scenario. ``anthropic-fallback``:
    to the Anthropic upstream, which answers the first turn (a tool call) and then only 529s,
    with the OpenAI-compatible one as the fallback (the fake is scripted here, before the CLI
    starts: the queued scripts win over the prompt's directives)."""
    if provider == "anthropic-fallback":
        fake.script(
            {
                "tool_calls": [{"name": "Bash", "input": {"command": f"echo {MARKER}"}}],
                "match": {"protocol": "anthropic"},
            },
            {"error": {"status": 529, "message": "Overloaded"}, "match": {"protocol": "anthropic"}, "times": 10},
        )
        return {
            "providers": [
                {"name": "anth", "type": "anthropic", "base_url": fake.anthropic_base_url, "api_keys": [UPSTREAM_KEY]},
                {
                    "name": "local",
                    "type": "openai-compatible",
                    "base_url": fake.openai_base_url,
                    "api_keys": [UPSTREAM_KEY],
                },
            ],
            "models": [
                {"name": "claude-*", "provider": "anth", "fallbacks": ["local-fallback"]},
                {"name": "local-fallback", "provider": "local", "upstream_model": OPENAI_UPSTREAM_MODEL},
            ],
            "router": {"attempts": 2, "backoff": 0.05},
        }
    if provider == "openai-compatible":
        prov = {"name": "local", "type": provider, "base_url": fake.openai_base_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "local", "upstream_model": OPENAI_UPSTREAM_MODEL}]
    else:
        prov = {"name": "anth", "type": "anthropic", "base_url": fake.anthropic_base_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "anth"}]
    return {"providers": [prov], "models": models}


def claude_env(
    home: Path, base_url: str, api_key: str, overrides: list[str], *, settings: bool = False
) -> dict[str, str]:
    """Claude Code's environment: the endpoint and key as docs/clients.md's recipe sets them
    (``claude-code-env``; with ``settings``, none: ``write_settings`` puts them in the settings
    file), and no telemetry, updates or extra traffic."""
    recipe_env = {} if settings else exports(recipe("claude-code-env").fill(base_url, api_key))
    return cli_env(
        home,
        overrides,
        **recipe_env,
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        DISABLE_BUG_COMMAND="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CODE_DISABLE_TERMINAL_TITLE="1",
    )


def write_settings(home: Path, base_url: str, api_key: str) -> None:
    """``~/.claude/settings.json`` as docs/clients.md's recipe writes it (``claude-code-settings``)."""
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (home / ".claude" / "settings.json").write_text(recipe("claude-code-settings").fill(base_url, api_key))


def launch_with_settings(stage: Stage) -> dict[str, Any]:
    """Run Claude Code once with the stage's endpoint and key in its settings file, not its environment."""
    args = stage.args
    write_settings(stage.home, stage.base_url, stage.api_key)
    env = claude_env(stage.home, stage.base_url, stage.api_key, args.env, settings=True)
    return run_claude(args.claude, stage.report["prompt"], stage.workdir, env, args.timeout)


def run_claude(claude: str, prompt: str, workdir: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``claude -p PROMPT --output-format json`` once; ``json`` is its parsed output."""
    # Root may not use --dangerously-skip-permissions; allowing Bash is all the tool scenarios need.
    argv = [claude, "-p", prompt, "--output-format", "json", "--allowedTools", "Bash", "--max-turns", "4"]
    result = run_cli(argv, workdir, env, timeout)
    try:
        result["json"] = json.loads(result["stdout"])
    except ValueError:
        result["json"] = None
    return result


def launch(stage: Stage) -> dict[str, Any]:
    """Run Claude Code once against the stage's endpoint."""
    args = stage.args
    if args.scenario == "anthropic-endpoint":
        return through_endpoint(stage)
    env = claude_env(stage.home, stage.base_url, stage.api_key, args.env)
    return run_claude(args.claude, stage.report["prompt"], stage.workdir, env, args.timeout)


def through_endpoint(stage: Stage) -> dict[str, Any]:
    """``anthropic-endpoint``: a per-application endpoint made in the admin API, and Claude Code
    given its Anthropic base URL as the admin API shows it; the report gets the endpoint
    (``endpoint``) and the ledger grouped by endpoint afterwards (``endpoint_usage``)."""
    args = stage.args
    admin = {"authorization": f"Bearer {stage.api_key}"}
    with httpx.Client(base_url=stage.base_url, headers=admin, timeout=10) as http:
        made = http.post("/admin/endpoints", json={"name": "claude-code", "models": ["claude-*"]}).json()
        stage.report["endpoint"] = made
        env = claude_env(stage.home, made["urls"]["anthropic"], stage.api_key, args.env)
        result = run_claude(args.claude, stage.report["prompt"], stage.workdir, env, args.timeout)
        usage: dict[str, Any] = {}
        for _ in range(50):  # the ledger is written in batches, every second
            usage = http.get("/admin/usage", params={"group_by": "endpoint_id"}).json()
            if usage.get("data"):
                break
            time.sleep(0.1)
        stage.report["endpoint_usage"] = usage
    return result


def main(argv: list[str] | None = None) -> int:
    return run_scenario(__doc__, SCENARIOS, "claude", argv, gateway_config=gateway_config, launch=launch, proxied=False)


if __name__ == "__main__":
    sys.exit(main())
