"""Run one Codex CLI scenario against a gateway and a fake upstream, all on loopback.

Meant to run inside a fresh network namespace, where only ``lo`` exists (it refuses
to run anywhere else, so that a real CLI can never reach an outside host)::

    unshare -n -- .venv/bin/python -m tests.e2e.netns_codex SCENARIO --codex PATH [--env NAME=VALUE ...]

It brings ``lo`` up, starts the fake upstream with a required provider key, a gateway
in front of it whose provider kind depends on the scenario (``anthropic``: the
Responses API translated to Anthropic Messages; ``openai``: passed through to the
fake's ``/v1/responses``) — or none for ``direct-*``, where Codex talks to the fake
itself, as a baseline — and a recording proxy (``recording_proxy``) between Codex and
whatever it talks to, which records every request Codex makes, with timings.

Codex is configured only through ``$CODEX_HOME/config.toml`` (see :func:`config_toml`):
a custom ``model_provider`` whose ``base_url`` is the gateway's ``/v1``, ``wire_api =
"responses"``, the key in the environment variable named by ``env_key``, and
``supports_websockets = true`` so that Codex first tries the Responses WebSocket (the
gateway refuses it with 426 and Codex falls back to HTTP); ``*-endpoint`` scenarios first
make a per-application endpoint in the admin API (the report's ``endpoint``) and use
``codex-config@endpoint``, whose ``base_url`` is the endpoint's ``/v1/<id>/openai``. Then it runs, once, in an
empty project directory with empty ``HOME`` and ``CODEX_HOME``::

    codex exec --json --color never --skip-git-repo-check --strict-config -C DIR -o FILE PROMPT

and prints one JSON report on stdout (see ``harness``), with also ``model``,
``config_toml``, ``client_requests`` (the proxy's records) and in ``cli``: ``events``
(the JSONL events Codex printed), ``started_at`` (on the proxy's clock) and
``last_message`` (the ``-o`` file). A failing or hanging Codex is reported in that
document; only a failure to start the servers makes this script exit non-zero.
"""

from __future__ import annotations

import json
import sys
import tomllib
from typing import Any

from modelgate.testing.runner import FakeUpstream
from tests.e2e.harness import (
    MARKER,
    PLAIN_REPLY,
    UPSTREAM_KEY,
    Stage,
    cli_env,
    make_dirs,
    make_endpoint,
    run_cli,
    run_scenario,
)
from tests.recipes import exports, recipe, with_model

#: Model names Codex asks for. ``gpt-5.5`` is in Codex's bundled model catalog (so Codex
#: sends what it sends OpenAI: reasoning effort, text verbosity); the Claude name is not
#: (Codex warns once and uses its fallback model metadata).
ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-5.5"
#: Codex 0.169's shell tool (unified exec): ``{"cmd": "..."}``, run with ``bash -lc``.
SHELL_TOOL = "exec_command"
#: The environment variable ``env_key`` names (docs/clients.md's recipe); it holds the gateway's key.
KEY_VARIABLE: str = tomllib.loads(recipe("codex-config").text)["model_providers"]["modelgate"]["env_key"]

PLAIN_PROMPT = f"Say hello. [[fake:text {PLAIN_REPLY}]]"
TOOL_PROMPT = "Run the marker command. [[fake:tool " + SHELL_TOOL + ' {"cmd":"echo ' + MARKER + '"}]]'

#: scenario → (what Codex reaches the fake through, model, prompt)
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "direct-plain": ("direct", OPENAI_MODEL, PLAIN_PROMPT),
    "anthropic-plain": ("anthropic", ANTHROPIC_MODEL, PLAIN_PROMPT),
    "anthropic-tool": ("anthropic", ANTHROPIC_MODEL, TOOL_PROMPT),
    "openai-plain": ("openai", OPENAI_MODEL, PLAIN_PROMPT),
    "openai-tool": ("openai", OPENAI_MODEL, TOOL_PROMPT),
    "anthropic-endpoint": ("anthropic", ANTHROPIC_MODEL, PLAIN_PROMPT),
}


def gateway_config(provider: str, fake: FakeUpstream) -> dict[str, Any]:
    """``gpt-5.5`` passed through to OpenAI, or every ``claude-*`` name to Anthropic."""
    if provider == "openai":
        prov = {"name": "oai", "type": "openai", "base_url": fake.openai_base_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": OPENAI_MODEL, "provider": "oai"}]
    else:
        prov = {"name": "anth", "type": "anthropic", "base_url": fake.anthropic_base_url, "api_keys": [UPSTREAM_KEY]}
        models = [{"name": "claude-*", "provider": "anth"}]
    return {"providers": [prov], "models": models}


def config_toml(base_url: str, model: str, endpoint_id: str | None = None) -> str:
    """Codex's whole configuration: docs/clients.md's recipe (``codex-config``, for the gateway
    at ``base_url`` with no ``/v1``; ``codex-config@endpoint`` through the endpoint ``endpoint_id``)
    and what the tests add around it; ``--strict-config`` makes a key this release does not know an error."""
    name = "codex-config" if endpoint_id is None else "codex-config@endpoint"
    configured = with_model(recipe(name).fill(base_url, "-", endpoint_id=endpoint_id), model)
    return f"""\
model_reasoning_effort = "medium"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
{configured}\
# Try the Responses WebSocket first, as Codex does with OpenAI: the gateway answers 426.
supports_websockets = true
# A failed request fails the run at once instead of being retried with backoff.
request_max_retries = 0

# No metrics export: in the namespace it would wait 5 s for DNS at exit.
[analytics]
enabled = false

[otel]
metrics_exporter = "none"
"""


def parse_events(stdout: str) -> list[Any]:
    """The JSONL events of ``codex exec --json``; a line that is not JSON is kept as a string."""
    events: list[Any] = []
    for line in stdout.splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append(line)
    return events


def launch(stage: Stage) -> dict[str, Any]:
    """Write ``config.toml`` into an empty ``CODEX_HOME`` and run ``codex exec`` once; ``*-endpoint``
    scenarios first make an endpoint (the report's ``endpoint``) and configure Codex through it."""
    args, report, tmp = stage.args, stage.report, stage.tmp
    codex_home, workdir, last = tmp / "codex-home", stage.workdir, tmp / "last-message.txt"
    make_dirs(codex_home)
    endpoint_id = None
    if args.scenario.endswith("-endpoint"):
        report["endpoint"] = make_endpoint(report, "codex", [report["model"]])
        endpoint_id = report["endpoint"]["id"]
    report["config_toml"] = config_toml(stage.base_url, report["model"], endpoint_id)
    (codex_home / "config.toml").write_text(report["config_toml"])
    key_env = exports(recipe("codex-env").fill(stage.base_url, stage.api_key))
    env = cli_env(stage.home, args.env, CODEX_HOME=str(codex_home), **key_env)
    argv = [args.codex, "exec", "--json", "--color", "never", "--skip-git-repo-check", "--strict-config"]
    argv += ["-C", str(workdir), "-o", str(last), report["prompt"]]
    cli = run_cli(argv, workdir, env, args.timeout)
    cli["events"] = parse_events(cli["stdout"])
    cli["last_message"] = last.read_text() if last.exists() else None
    return cli


def main(argv: list[str] | None = None) -> int:
    return run_scenario(
        __doc__,
        SCENARIOS,
        "codex",
        argv,
        gateway_config=gateway_config,
        launch=launch,
        proxied=True,
        tmp_prefix="modelgate-e2e-codex-",
        extra=lambda name: {"model": SCENARIOS[name][1]},
    )


if __name__ == "__main__":
    sys.exit(main())
