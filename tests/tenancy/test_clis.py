"""End to end with the real Claude Code, Codex CLI and Gemini CLI, each with a virtual key.

Each scenario is one of the end-to-end suite's (``tests/e2e``: the same pinned CLI, the same
fake upstream, gateway config and CLI configuration, in a loopback-only network namespace),
run by ``tests.tenancy.netns_keys`` with one difference: the gateway's SQLite store holds a
virtual key before it starts, and the CLI gets that key instead of the master key.

What is asserted:

* **a plain prompt per CLI** (a key with the operator guide's $5 weekly budget and 60 RPM):
  the CLI prints the fake's answer; upstream requests carry the provider key, never the
  virtual key; ``GET /v1/usage`` counts the CLI's model requests against the key's RPM; the
  ledger holds one row per model request with the tokens the CLI itself reports, and the
  weekly window shows what the ledger charged;
* the CLIs' default models have a price, so their calls move the budget;
* **Claude Code over a key's RPM limit** (the minute's one request spent before it starts):
  with its default retries it waits out ``retry-after`` and then answers; with retries off
  (``CLAUDE_CODE_MAX_RETRIES=0``) it stops at once and prints the gateway's refusal as
  ``API Error: Request rejected (429) · <message>``;
* **Claude Code with a spent lifetime budget**: with its default retries, it prints the
  refusal at once (``x-should-retry: false``: nothing will free it).

Run alone with ``.venv/bin/python -m pytest tests/tenancy/test_clis.py -q`` (the needs of
``tests/e2e``: npm on first run, ``unshare``, ``ip``, root or CAP_SYS_ADMIN; a missing tool
fails, never skips).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.claude_code import ensure_claude_code
from tests.e2e.codex_cli import ensure_codex
from tests.e2e.gemini_cli import ensure_gemini_cli
from tests.e2e.harness import (
    PLAIN_REPLY,
    UPSTREAM_KEY,
    Report,
    assert_cli_exited,
    assert_gateway_log_clean,
    assert_no_master_key,
    check_namespace_tools,
    explain,
    fail,
    scenario_runner,
)
from tests.e2e.npm_tools import SetupError
from tests.tenancy.netns_keys import KEY_NAME

pytestmark = pytest.mark.e2e

RUNNER = "tests.tenancy.netns_keys"
#: Seconds the CLI may take (Claude Code waiting out a minute's RPM limit included) and the whole scenario.
CLI_TIMEOUT = 120
SCENARIO_TIMEOUT = 200
#: What Claude Code prints for an API error it gives up on.
REJECTED = "API Error: Request rejected (429) · "
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def install(ensure: Callable[[], Path]) -> Path:
    check_namespace_tools()
    try:
        return ensure()
    except SetupError as exc:
        fail(str(exc))


@pytest.fixture(scope="session")
def keyed() -> Callable[[str], Report]:
    """``run(name)``: the report of a ``netns_keys`` scenario (run once per session); the CLI is
    installed on first use."""
    ensures = {"claude": ensure_claude_code, "codex": ensure_codex, "gemini": ensure_gemini_cli}
    runners: dict[str, Callable[[str], Report]] = {}

    def run(name: str) -> Report:
        cli = name.split("-")[0]
        if cli not in runners:
            args = [f"--{cli}", str(install(ensures[cli])), "--timeout", str(CLI_TIMEOUT)]
            runners[cli] = scenario_runner(RUNNER, args, timeout=SCENARIO_TIMEOUT)
        return runners[cli](name)

    return run


def gateway_lines(report: Report) -> list[dict[str, str]]:
    """The gateway's request log lines (``modelgate.request``), as fields."""
    lines = [line for line in report["gateway_log"].splitlines() if "modelgate.request:" in line]
    return [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line.split("modelgate.request:", 1)[1])) for line in lines]


def assert_key_stays_here(report: Report) -> None:
    """Upstream requests carry the provider key; the virtual key (and the master key) never leave."""
    secret = report["virtual_key"]
    assert secret.startswith("sk-mg-")
    assert_no_master_key(report)
    for r in report["requests"]:
        assert secret not in json.dumps(r["headers"]) and secret not in r["raw_body"], r["headers"]
        assert UPSTREAM_KEY in json.dumps(r["headers"])


def ledger(report: Report) -> dict[str, dict[str, Any]]:
    return {line["door"]: line for line in report["ledger"]}


def weekly_window(report: Report) -> dict[str, Any]:
    [window] = report["usage"]["windows"]
    assert (window["window"], window["limit_usd"]) == ("7d", 5.0), report["usage"]
    return dict(window)


def assert_usage(report: Report, door: str, requests: int) -> dict[str, Any]:
    """``/v1/usage`` names the key and counts ``requests`` against its 60 RPM; the ledger has as
    many rows at ``door`` and nothing else; the weekly window holds what the ledger charged."""
    usage = report["usage"]
    assert usage["key"] == {"name": KEY_NAME, "team": None}, usage
    assert (usage["limits"]["rpm"]["limit"], usage["limits"]["rpm"]["used"]) == (60, requests), explain(report)
    lines = ledger(report)
    assert list(lines) == [door] and lines[door]["requests"] == requests, report["ledger"]
    assert weekly_window(report)["used_usd"] == pytest.approx(lines[door]["cost_usd"], abs=2e-6)
    return lines[door]


# --------------------------------------------------------------------------- a plain prompt per CLI


def test_claude_code_with_a_virtual_key(keyed: Callable[[str], Report]) -> None:
    report = keyed("claude-plain")
    result = assert_cli_exited(report)["json"]
    assert isinstance(result, dict) and result["is_error"] is False, explain(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    [request] = report["requests"]
    assert (request["method"], request["path"], request["status"]) == ("POST", "/v1/messages", 200)
    assert request["headers"]["x-api-key"] == UPSTREAM_KEY
    assert_key_stays_here(report)
    assert_gateway_log_clean(report)
    [line] = gateway_lines(report)
    assert line["caller"].startswith("key_") and line["status"] == "200", line
    row = assert_usage(report, "anthropic", 1)
    assert (row["input_tokens"], row["output_tokens"]) == (
        result["usage"]["input_tokens"],
        result["usage"]["output_tokens"],
    )


def test_codex_with_a_virtual_key(keyed: Callable[[str], Report]) -> None:
    report = keyed("codex-plain")
    cli = assert_cli_exited(report)
    assert cli["last_message"].strip() == PLAIN_REPLY, explain(report)
    [request] = report["requests"]
    assert (request["path"], request["status"], request["headers"]["authorization"]) == (
        "/v1/responses",
        200,
        f"Bearer {UPSTREAM_KEY}",
    )
    sent = [(r["method"], r["target"], r["headers"].get("authorization")) for r in report["client_requests"]]
    bearer = f"Bearer {report['virtual_key']}"
    assert sent == [("GET", "/v1/responses", bearer), ("POST", "/v1/responses", bearer)], sent  # WebSocket, then HTTP
    assert_key_stays_here(report)
    assert_gateway_log_clean(report)
    row = assert_usage(report, "openai_responses", 1)  # the refused WebSocket upgrade is no model request
    [done] = [e for e in cli["events"] if isinstance(e, dict) and e.get("type") == "turn.completed"]
    assert (row["input_tokens"], row["output_tokens"]) == (
        done["usage"]["input_tokens"],
        done["usage"]["output_tokens"],
    )
    assert row["cost_usd"] > 0 and weekly_window(report)["used_usd"] > 0


def test_gemini_cli_with_a_virtual_key(keyed: Callable[[str], Report]) -> None:
    report = keyed("gemini-plain")
    output = assert_cli_exited(report)["json"]
    assert isinstance(output, dict) and output["response"].strip() == PLAIN_REPLY, explain(report)
    paths = [r["path"] for r in report["requests"]]
    assert paths == [
        "/v1beta/models/gemini-3.5-flash-lite:generateContent",  # the router's call
        f"/v1beta/models/{output_model(output)}:streamGenerateContent",
    ], paths
    for sent in report["client_requests"]:
        assert sent["headers"]["x-goog-api-key"] == report["virtual_key"], sent["headers"]
    assert_key_stays_here(report)
    assert_gateway_log_clean(report)
    row = assert_usage(report, "gemini", 2)
    tokens = output["stats"]["models"]
    assert row["input_tokens"] == sum(m["tokens"]["prompt"] for m in tokens.values()), tokens


def output_model(output: dict[str, Any]) -> str:
    """The main model of the Gemini CLI's stats (not the router's)."""
    [main] = [name for name, m in output["stats"]["models"].items() if "main" in m.get("roles", {})]
    return str(main)


@pytest.mark.parametrize("name", ["claude-plain", "codex-plain", "gemini-plain"])
def test_the_default_models_of_the_clis_are_charged_to_the_budget(keyed: Callable[[str], Report], name: str) -> None:
    """The models the CLIs ask for by default (``claude-opus-5-5``, ``gpt-5.5``, ``gemini-3.x``) have
    a price: their calls move the budget."""
    report = keyed(name)
    assert_cli_exited(report)
    assert all(line["cost_usd"] > 0 for line in report["ledger"]), report["ledger"]
    assert weekly_window(report)["used_usd"] > 0, report["usage"]


# --------------------------------------------------------------------------- Claude Code over its limits


def test_claude_code_over_the_rpm_limit_waits_for_retry_after_then_answers(keyed: Callable[[str], Report]) -> None:
    report = keyed("claude-rpm-waits")
    assert report["spent"] == [200]
    result = assert_cli_exited(report)["json"]
    assert isinstance(result, dict) and result["is_error"] is False, explain(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    spent, refused, answered = gateway_lines(report)
    assert (spent["status"], refused["status"], answered["status"]) == ("200", "429", "200"), explain(report)
    assert refused["code"] == "rate_limit_rpm" and refused["model"] == answered["model"]
    told = re.search(r"\(in (?:(\d+)m)?(?:(\d+)s)?\)", refused["message"])  # "(in 59s)", "(in 1m)"
    assert told is not None, refused
    wait = 60 * int(told.group(1) or 0) + int(told.group(2) or 0)
    assert 1 <= wait <= 60 and report["cli"]["elapsed"] >= wait - 1, explain(report)  # it waited, as told
    assert report["usage"]["limits"]["rpm"]["used"] == 1  # the minute after: one request in it
    assert_gateway_log_clean(report)


def test_claude_code_over_the_rpm_limit_without_retries_prints_the_refusal(keyed: Callable[[str], Report]) -> None:
    report = keyed("claude-rpm")
    cli = report["cli"]
    assert not cli["timed_out"] and cli["exit_code"] == 1, explain(report)
    assert cli["elapsed"] < 30, explain(report)
    result = cli["json"]
    assert isinstance(result, dict), explain(report)
    assert (result["type"], result["is_error"], result["api_error_status"], result["api_error_type"]) == (
        "result",
        True,
        429,
        "rate_limit_error",
    ), explain(report)
    assert re.fullmatch(
        re.escape(REJECTED + f"modelgate: key '{KEY_NAME}' reached its requests per minute of 1; capacity frees at ")
        + STAMP
        + r" \(in (?:1m|\d+s)\)",
        result["result"],
    ), result["result"]
    assert len(report["requests"]) == 1  # the request spent before; Claude Code's never went upstream
    assert {line["status"] for line in gateway_lines(report)} == {"200", "429"}
    assert_gateway_log_clean(report)


def test_claude_code_with_a_spent_budget_prints_the_refusal_at_once(keyed: Callable[[str], Report]) -> None:
    """Nothing will free a spent lifetime budget: the gateway says ``x-should-retry: false`` and
    Claude Code, with its default retries, gives up on the first refusal."""
    report = keyed("claude-budget")
    cli = report["cli"]
    assert not cli["timed_out"] and cli["exit_code"] == 1, explain(report)
    assert cli["elapsed"] < 30, explain(report)
    result = cli["json"]
    assert isinstance(result, dict) and result["is_error"] is True, explain(report)
    assert (result["api_error_status"], result["api_error_type"]) == (429, "rate_limit_error"), explain(report)
    assert result["result"] == (
        REJECTED + f"modelgate: key '{KEY_NAME}' reached its lifetime budget of $0.00 ($0.00 used); "
        "nothing will free it: an administrator must raise it"
    )
    assert [line["status"] for line in gateway_lines(report)] == ["200", "429"], explain(report)  # no retry
    [window] = report["usage"]["windows"]
    assert window["window"] == "total" and window["used_percent"] == 100.0 and window["next_free_at"] is None
    assert ledger(report)["anthropic"]["requests"] == 2  # the spent request and the refusal
