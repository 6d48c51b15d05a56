"""End to end with a Claude Code release that sends warm-ups: they never reach the upstream.

What runs: Claude Code ``claude_code.WARMUP_VERSION`` (2.1.5, the last release seen sending
``Warmup`` calls; the current one sends none), installed from npm into
``.cache/npm/claude-code-2.1.5/`` on first use, in a loopback-only network namespace like
every e2e scenario (``netns_run.py``), with the plain prompt. Asserted: without the gateway
the release does send a ``Warmup`` call (so the test can fail), and through the gateway with
the default config (``router.warmup: local``) the session still works while the fake upstream
sees the user's turn only, the gateway having answered the warm-ups itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.claude_code import WARMUP_PREFIX, WARMUP_VERSION, SetupError, ensure_claude_code
from tests.e2e.harness import (
    PLAIN_REPLY,
    Report,
    assert_cli_exited,
    assert_gateway_log_clean,
    check_namespace_tools,
    explain,
    fail,
    model_requests,
    scenario_runner,
)

pytestmark = pytest.mark.e2e

SCENARIO_TIMEOUT = 150
CLI_TIMEOUT = 90


@pytest.fixture(scope="session")
def warmup_claude() -> Path:
    check_namespace_tools()
    try:
        return ensure_claude_code(WARMUP_PREFIX, WARMUP_VERSION)
    except SetupError as exc:
        fail(str(exc))


@pytest.fixture(scope="session")
def warmup_scenario(warmup_claude: Path) -> Callable[[str], Report]:
    args = ["--claude", str(warmup_claude), "--timeout", str(CLI_TIMEOUT)]
    return scenario_runner("tests.e2e.netns_run", args, timeout=SCENARIO_TIMEOUT)


def is_warmup(request: dict[str, Any]) -> bool:
    body = request["body"] if isinstance(request["body"], dict) else {}
    messages = body.get("messages") or []
    if len(messages) != 1:
        return False
    content = messages[0].get("content")
    texts = [content] if isinstance(content, str) else [b.get("text") for b in content if isinstance(b, dict)]
    return texts == ["Warmup"]


def test_the_release_sends_warmups_without_the_gateway(warmup_scenario: Callable[[str], Report]) -> None:
    report = warmup_scenario("direct-plain")
    assert_cli_exited(report)
    assert any(is_warmup(r) for r in model_requests(report, "/v1/messages")), explain(report)


def test_warmups_never_reach_the_upstream_through_the_gateway(warmup_scenario: Callable[[str], Report]) -> None:
    report = warmup_scenario("anthropic-plain")
    result = assert_cli_exited(report)["json"]
    assert isinstance(result, dict) and result.get("is_error") is False, explain(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    requests = model_requests(report, "/v1/messages")
    assert requests and not any(is_warmup(r) for r in requests), explain(report)
    assert "warm-up answered locally" in report["gateway_log"], explain(report)
    assert_gateway_log_clean(report)
