"""Run one real CLI with a virtual key against a gateway and a fake upstream, all on loopback.

The scenarios of the end-to-end runners (``tests.e2e.netns_run`` for Claude Code,
``netns_codex``, ``netns_gemini``: their gateway config, CLI configuration and launch), with
one change: before the gateway starts, its SQLite store (in a data directory of this run)
is migrated and given a virtual key, and the CLI gets that key where it would get the
master key — Claude Code in ``~/.claude/settings.json`` (docs/clients.md's
``claude-code-settings`` recipe), where the e2e runs set its environment. Meant to run, like
them, in a fresh loopback-only network namespace::

    unshare -n -- .venv/bin/python -m tests.tenancy.netns_keys SCENARIO --<cli> PATH [--timeout S]

where ``SCENARIO`` starts with the CLI's name (``claude-plain``, ``codex-plain`` …) and
``--<cli>`` is that CLI's option (``--claude``, ``--codex``, ``--gemini``). A scenario may
first spend requests with the key (``rpm=1, spent=1`` leaves the CLI none this minute) and
add to the CLI's environment (``CLAUDE_CODE_MAX_RETRIES=0``). The report (see
``tests.e2e.harness``) also holds ``virtual_key``, ``spent`` (the statuses of the requests
made before the CLI), ``usage`` (``GET /v1/usage`` with the key after the CLI ran) and
``ledger`` (the key's ledger lines by front door, refusals included).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from modelgate.policy.keys import digest, hint, new_secret
from modelgate.store import Budget, Database, LedgerStore, TenantStore, default_url, upgrade
from modelgate.testing.runner import FakeUpstream
from tests.e2e import netns_codex, netns_gemini, netns_run
from tests.e2e.harness import Report, Stage, run_scenario

KEY_NAME = "cli-user"
#: The gateway's ledger flush period (seconds).
LEDGER_FLUSH = 0.2
#: Generation paths of the fake upstream (what the ledger bills; token counts are not billed).
MODEL_PATHS = ("/v1/messages", "/v1/chat/completions", "/v1/responses", ":generateContent", ":streamGenerateContent")


@dataclass(frozen=True)
class Scenario:
    runner: ModuleType  # the e2e runner whose gateway config and launch are reused
    base: str  # its scenario
    key: dict[str, Any] = field(default_factory=dict)  # the virtual key's attributes
    spent: int = 0  # requests made with the key before the CLI runs
    env: tuple[str, ...] = ()  # NAME=VALUE for the CLI's environment


#: The key of the operator's guide: a $5 weekly budget and 60 requests per minute.
WEEKLY: dict[str, Any] = {"budgets": [Budget("7d", usd=5.0)], "rpm": 60}
NO_RETRIES = ("CLAUDE_CODE_MAX_RETRIES=0",)

SCENARIOS: dict[str, Scenario] = {
    "claude-plain": Scenario(netns_run, "anthropic-plain", WEEKLY),
    "claude-rpm-waits": Scenario(netns_run, "anthropic-plain", {"rpm": 1}, spent=1),
    "claude-rpm": Scenario(netns_run, "anthropic-plain", {"rpm": 1}, spent=1, env=NO_RETRIES),
    "claude-budget": Scenario(netns_run, "anthropic-plain", {"budgets": [Budget("total", usd=0.000001)]}, spent=1),
    "codex-plain": Scenario(netns_codex, "openai-plain", WEEKLY),
    "gemini-plain": Scenario(netns_gemini, "gemini-plain", WEEKLY),
}
#: The CLI option of each runner.
OPTIONS = {"netns_run": "claude", "netns_codex": "codex", "netns_gemini": "gemini"}


async def _write_key(url: str, attrs: dict[str, Any]) -> str:
    await upgrade(url)
    async with Database(url) as db:
        secret = new_secret()
        await TenantStore(db).create_key(KEY_NAME, key_hash=digest(secret), hint=hint(secret), **attrs)
        return secret


async def _ledger(url: str, billed: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The key's ledger lines by door, once they count the ``billed`` answers, and a few flushes
    later (refusals are rows too, and may be queued behind them)."""
    async with Database(url) as db:
        key = await TenantStore(db).get_key(KEY_NAME)
        ledger = LedgerStore(db)
        deadline = time.monotonic() + timeout
        while sum(line.requests for line in await ledger.summary(key_id=key.id)) < billed:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3 * LEDGER_FLUSH)
        return [
            {"door": line.group, "requests": line.requests, "input_tokens": line.input_tokens,
             "output_tokens": line.output_tokens, "cost_usd": line.cost_usd}
            for line in await ledger.summary(key_id=key.id, group_by="door")
        ]  # fmt: skip


class KeyedRun:
    """One scenario's store and key, and the wrappers ``run_scenario`` calls."""

    def __init__(self, scenario: Scenario, data_dir: Path) -> None:
        self.scenario = scenario
        self.data_dir = data_dir
        self.url = default_url(data_dir)
        self.secret = ""

    def gateway_config(self, provider: str, fake: FakeUpstream) -> dict[str, Any]:
        """The runner's config, on a store that holds the key already."""
        self.secret = asyncio.run(_write_key(self.url, self.scenario.key))
        config: dict[str, Any] = self.scenario.runner.gateway_config(provider, fake)
        config["server"] = {**config.get("server", {}), "data_dir": str(self.data_dir), "database_url": self.url}
        config["tenancy"] = {"ledger_flush_seconds": LEDGER_FLUSH}
        return config

    def launch(self, stage: Stage) -> dict[str, Any]:
        """Spend what the scenario says, run the CLI with the key, then read its usage and ledger."""
        report = stage.report
        report["virtual_key"] = self.secret
        gateway = report["gateway_url"]
        with httpx.Client(base_url=gateway, timeout=30) as http:
            body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            headers = {"x-api-key": self.secret, "anthropic-version": "2023-06-01"}
            report["spent"] = [
                http.post("/v1/messages", json=body, headers=headers).status_code for _ in range(self.scenario.spent)
            ]
            stage.api_key = self.secret
            stage.args.env = [*stage.args.env, *self.scenario.env]
            runner = self.scenario.runner
            # Claude Code gets the key in its settings file here (docs/clients.md's other recipe;
            # the e2e runs give it in the environment).
            cli: dict[str, Any] = netns_run.launch_with_settings(stage) if runner is netns_run else runner.launch(stage)
            report["usage"] = http.get("/v1/usage", headers={"x-api-key": self.secret}).json()
        billed = sum(1 for r in stage.fake.requests() if r["path"].endswith(MODEL_PATHS) and r["status"] == 200)
        report["ledger"] = asyncio.run(_ledger(self.url, billed))
        return cli


def extra_of(runner: ModuleType) -> Callable[[str], Report] | None:
    """What the runner adds to its reports (Codex: the model; Gemini CLI: its settings)."""
    if runner is netns_codex:
        return lambda name: {"model": netns_codex.SCENARIOS[SCENARIOS[name].base][1]}
    if runner is netns_gemini:
        return lambda name: {"settings": netns_gemini.settings()}
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SCENARIOS:
        sys.exit(f"usage: netns_keys SCENARIO --<cli> PATH …; scenarios: {', '.join(SCENARIOS)}")
    for variable in ("MODELGATE_DATABASE_URL", "MODELGATE_REDIS_URL"):  # this run's own store, counters in process
        os.environ.pop(variable, None)
    scenario = SCENARIOS[argv[0]]
    runner = scenario.runner
    name = runner.__name__.rsplit(".", 1)[1]
    data_dir = Path(tempfile.mkdtemp(prefix="modelgate-e2e-keys-"))
    try:
        run = KeyedRun(scenario, data_dir)
        specs = {key: runner.SCENARIOS[s.base] for key, s in SCENARIOS.items() if s.runner is runner}
        return run_scenario(
            __doc__,
            specs,
            OPTIONS[name],
            argv,
            gateway_config=run.gateway_config,
            launch=run.launch,
            proxied=runner is not netns_run,
            extra=extra_of(runner),
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
