"""Run one Gemini CLI scenario against a gateway and a fake upstream, all on loopback.

Meant to run inside a fresh network namespace, where only ``lo`` exists (it refuses
to run anywhere else, so that a real CLI can never reach an outside host)::

    unshare -n -- .venv/bin/python -m tests.e2e.netns_gemini SCENARIO --gemini PATH [--env NAME=VALUE ...]

It brings ``lo`` up, starts the fake upstream with a required provider key and a gateway
in front of it whose provider kind depends on the scenario (``gemini``: passed through
to the fake's Gemini API; ``anthropic``: translated to Anthropic Messages; ``openai``:
translated to OpenAI Chat Completions) — or none for ``direct-*``, where the CLI talks
to the fake itself, as a baseline of what it sends — and a recording proxy
(``recording_proxy``) between the CLI and whatever it talks to.

Gemini CLI is configured as a user pointing it at a gateway would: the environment
holds ``GOOGLE_GEMINI_BASE_URL`` (the proxy's base URL, no API version) and
``GEMINI_API_KEY`` (the master key), and ``$HOME/.gemini/settings.json`` (see
:func:`settings`) selects API-key auth and turns off usage statistics, telemetry, update
checks and IDE integration; ``*-endpoint`` scenarios first make a per-application endpoint
in the admin API (the report's ``endpoint``) and set ``GOOGLE_GEMINI_BASE_URL`` to its
``/v1/<id>/gemini`` (docs/clients.md's ``gemini-cli-env@endpoint``), and name a session with
``GEMINI_CLI_CUSTOM_HEADERS="X-Modelgate-Session-Id: …"`` (``SESSION_ID``). The fake gets one
queued script, the JSON answer of the CLI's routing call (see ``ROUTER_REPLY``). Then the
CLI runs, once, in an empty project directory with an empty ``HOME``::

    gemini -p PROMPT --output-format json --approval-mode yolo --skip-trust

and prints one JSON report on stdout (see ``harness``), with also ``settings`` and
``client_requests`` (the proxy's records), ``router_answers_left`` (how many of the
queued router answers were not taken), and in ``cli``: ``json`` (the parsed output)
and ``started_at`` (on the proxy's clock). A failing or hanging CLI is reported in that
document; only a failure to start the servers makes this script exit non-zero.
"""

from __future__ import annotations

import json
import sys
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
from tests.recipes import exports, recipe

#: The pinned release's shell tool (``SHELL_TOOL_NAME``); its one required argument is ``command``.
SHELL_TOOL = "run_shell_command"

PLAIN_PROMPT = f"Say hello. [[fake:text {PLAIN_REPLY}]]"
TOOL_PROMPT = "Run the marker command. [[fake:tool " + SHELL_TOOL + ' {"command":"echo ' + MARKER + '"}]]'

#: The model of the CLI's routing call (a classifier asked for JSON, once per prompt).
ROUTER_MODEL = "gemini-3.5-flash-lite"
#: What the Anthropic and OpenAI routes send upstream: (the router's model, every other ``gemini-*``).
ANTHROPIC_UPSTREAM_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6")
OPENAI_UPSTREAM_MODELS = ("gpt-4.1-mini", "gpt-4.1")
#: The router's answer (fits its ``responseJsonSchema``): a simple task, so the CLI picks its
#: flash model. Queued on the fake for the router's upstream model, up to ROUTER_ANSWERS
#: times: the prompt's directives are in the router's input too, and would answer it otherwise.
ROUTER_REPLY = '{"complexity_reasoning": "One explicit shell command.", "complexity_score": 5}'
ROUTER_ANSWERS = 10

#: The pinned release's variable of extra request headers (``Name: value``, comma-separated),
#: and the session id the endpoint scenario names in it with modelgate's generic header.
SESSION_VARIABLE = "GEMINI_CLI_CUSTOM_HEADERS"
SESSION_ID = "gemini-e2e-session-7c1d"

#: scenario → (how the CLI reaches the fake, prompt)
SCENARIOS: dict[str, tuple[str, str]] = {
    "direct-tool": ("direct", TOOL_PROMPT),
    "gemini-plain": ("gemini", PLAIN_PROMPT),
    "gemini-tool": ("gemini", TOOL_PROMPT),
    "anthropic-plain": ("anthropic", PLAIN_PROMPT),
    "anthropic-tool": ("anthropic", TOOL_PROMPT),
    "openai-plain": ("openai", PLAIN_PROMPT),
    "openai-tool": ("openai", TOOL_PROMPT),
    "gemini-endpoint": ("gemini", PLAIN_PROMPT),
}


def gateway_config(provider: str, fake: FakeUpstream) -> dict[str, Any]:
    """Every model name the CLI asks for (``gemini-*``) goes to the one provider of the scenario."""
    if provider == "gemini":
        prov = {"name": "google", "type": "gemini", "base_url": fake.base_url, "api_keys": [UPSTREAM_KEY]}
        models: list[dict[str, Any]] = [{"name": "gemini-*", "provider": "google"}]
    elif provider == "anthropic":
        prov = {"name": "anth", "type": "anthropic", "base_url": fake.base_url, "api_keys": [UPSTREAM_KEY]}
        models = translated_models("anth", ANTHROPIC_UPSTREAM_MODELS)
    else:
        prov = {"name": "oai", "type": "openai", "base_url": fake.openai_base_url, "api_keys": [UPSTREAM_KEY]}
        models = translated_models("oai", OPENAI_UPSTREAM_MODELS)
    return {"providers": [prov], "models": models}


def translated_models(provider: str, upstream: tuple[str, str]) -> list[dict[str, Any]]:
    """The router's model and every other ``gemini-*`` name, mapped to ``upstream``."""
    router, main = upstream
    return [
        {"name": ROUTER_MODEL, "provider": provider, "upstream_model": router},
        {"name": "gemini-*", "provider": provider, "upstream_model": main},
    ]


def router_upstream_model(provider: str) -> str:
    """The model name the router's requests reach the fake with."""
    if provider == "anthropic":
        return ANTHROPIC_UPSTREAM_MODELS[0]
    if provider == "openai":
        return OPENAI_UPSTREAM_MODELS[0]
    return ROUTER_MODEL


def settings() -> dict[str, Any]:
    """``~/.gemini/settings.json`` (the pinned release's schema, ``settingsSchema``): docs/clients.md's
    recipe (``gemini-cli-settings``) and no stats, telemetry, updates or IDE integration."""
    return {
        **json.loads(recipe("gemini-cli-settings").text),
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
        "ide": {"enabled": False},
    }


def parse_output(stdout: str) -> Any:
    """The JSON document ``--output-format json`` prints (``None`` when there is none)."""
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        return json.loads(stdout[start:])
    except ValueError:
        return None


def launch(stage: Stage) -> dict[str, Any]:
    """Queue the router's answers, write ``settings.json`` and run ``gemini -p`` once."""
    args, report, fake, home = stage.args, stage.report, stage.fake, stage.home
    fake.script(text=ROUTER_REPLY, match={"model": router_upstream_model(report["provider"])}, times=ROUTER_ANSWERS)
    make_dirs(home / ".gemini")
    (home / ".gemini" / "settings.json").write_text(json.dumps(report["settings"], indent=2))
    variables = {}
    if args.scenario.endswith("-endpoint"):  # through a per-application endpoint (the report's ``endpoint``)
        report["endpoint"] = make_endpoint(report, "gemini-cli", ["gemini-*"])
        configured = recipe("gemini-cli-env@endpoint").fill(
            stage.base_url, stage.api_key, endpoint_id=report["endpoint"]["id"]
        )
        # The CLI names no session on the wire; a user can name one with the generic header.
        variables[SESSION_VARIABLE] = f"X-Modelgate-Session-Id: {SESSION_ID}"
    else:
        configured = recipe("gemini-cli-env").fill(stage.base_url, stage.api_key)
    env = cli_env(home, args.env, **exports(configured), **variables)
    argv = [args.gemini, "-p", report["prompt"], "--output-format", "json", "--approval-mode", "yolo", "--skip-trust"]
    cli = run_cli(argv, stage.workdir, env, args.timeout)
    cli["json"] = parse_output(cli["stdout"])
    report["router_answers_left"] = sum(item["remaining"] for item in fake.pending())
    return cli


def main(argv: list[str] | None = None) -> int:
    return run_scenario(
        __doc__,
        SCENARIOS,
        "gemini",
        argv,
        gateway_config=gateway_config,
        launch=launch,
        proxied=True,
        tmp_prefix="modelgate-e2e-gemini-",
        extra=lambda name: {"settings": settings()},
    )


if __name__ == "__main__":
    sys.exit(main())
