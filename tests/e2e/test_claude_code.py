"""End to end with the real Claude Code CLI: Claude Code → modelgate → fake upstream.

What runs: the pinned Claude Code release (``claude_code.CLAUDE_CODE_VERSION``),
installed from npm into ``.cache/npm/claude-code/`` on first use and reused
afterwards. Every scenario runs in its own loopback-only network namespace
(``unshare -n``), so the CLI can reach nothing but the gateway and the fake
upstream started inside it (see ``netns_run.py`` and ``harness.py``). Claude Code runs
non-interactively (``claude -p PROMPT --output-format json --allowedTools Bash``)
with an empty ``HOME``; the prompt carries ``[[fake:…]]`` directives that tell the
fake upstream how to answer.

What is asserted:

* **baseline** (Claude Code → fake, no gateway): the harness works, and it
  records what Claude Code itself sends, to compare the gateway's forwarding with;
* **Anthropic passthrough, plain prompt**: the CLI prints the fake's fixed answer,
  ``is_error`` false, one ``POST /v1/messages`` upstream; the same through a
  per-application endpoint's base URL (``/v1/<id>/anthropic``), its id in the ledger and
  on the request log's record;
* **Anthropic passthrough, tool round trip**: the fake asks for
  ``Bash echo modelgate-e2e-marker``, Claude Code runs it and sends a
  ``tool_result`` holding the marker (with the thinking block and its signature
  unchanged, which the fake verifies), the fake answers "Tool result received: …";
  upstream requests carry the provider key and never the master key, and the
  ``anthropic-version``/``anthropic-beta`` headers and the body fields Claude Code
  sends (``thinking``, ``output_config``, ``context_management``, ``metadata``,
  ``cache_control``, the ``system`` blocks) arrive as in the baseline;
  the ``?beta=true`` query Claude Code adds reaches the upstream too; the request log (read
  through the admin API) holds both requests under the session id Claude Code sent
  (``X-Claude-Code-Session-Id``, the same in ``metadata.user_id``) with its user agent, and
  the session summary groups them (two turns, one tool call);
* **OpenAI-compatible translation**, the same two prompts: Claude Code still works
  end to end through ``POST /v1/chat/completions`` (Bearer provider key, the
  configured upstream model, tool call and ``role: tool`` result translated, the
  system turn Claude Code sends inside ``messages`` not lost);
* **a fallback mid-session**: the Anthropic upstream answers the first turn and then only
  529s; the second turn is retried and then served by the OpenAI-compatible fallback
  through translation, with no error visible to Claude Code; the request log shows the
  second turn's three attempts, in the same session as the first.

Run alone with ``.venv/bin/python -m pytest tests/e2e/test_claude_code.py -q`` (needs npm on first run,
``unshare`` and ``ip``, and root or CAP_SYS_ADMIN for the network namespace; a
missing tool fails the tests with a message saying what to install, never skips).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.claude_code import CLAUDE_CODE_VERSION, ensure_claude_code
from tests.e2e.harness import (
    MARKER,
    PLAIN_REPLY,
    UPSTREAM_KEY,
    Report,
    assert_cli_exited,
    assert_no_master_key,
    cli_fixtures,
    explain,
    logged_session,
    model_requests,
)
from tests.e2e.netns_run import OPENAI_UPSTREAM_MODEL

pytestmark = pytest.mark.e2e

#: Seconds one scenario may take, Claude Code included (each takes a few seconds in practice).
SCENARIO_TIMEOUT = 150
CLI_TIMEOUT = 90


# --------------------------------------------------------------------------- setup


#: ``claude_binary`` and ``scenario`` (a scenario of ``netns_run.py``, run once per session).
claude_binary, scenario = cli_fixtures(
    "claude_binary",
    ensure_claude_code,
    "tests.e2e.netns_run",
    cli_timeout=CLI_TIMEOUT,
    scenario_timeout=SCENARIO_TIMEOUT,
)


# --------------------------------------------------------------------------- helpers


def cli_result(report: Report) -> dict[str, Any]:
    """Claude Code's JSON result, after checking the run went well."""
    result = assert_cli_exited(report)["json"]
    assert isinstance(result, dict), explain(report)
    assert result.get("type") == "result", explain(report)
    assert result.get("is_error") is False, explain(report)
    assert result.get("subtype") == "success", explain(report)
    return result


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def tool_round_trip_ids(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The id of the Bash ``tool_use`` in the last assistant turn and the ``tool_result`` answering it."""
    assistant = next(m for m in reversed(messages) if m["role"] == "assistant")
    uses = [b for b in blocks(assistant) if b.get("type") == "tool_use"]
    assert [(u["name"], u["input"]) for u in uses] == [("Bash", {"command": f"echo {MARKER}"})], assistant
    results = [b for b in blocks(messages[-1]) if b.get("type") == "tool_result"]
    assert messages[-1]["role"] == "user" and len(results) == 1, messages[-1]
    return uses[0]["id"], results[0]


def sent_session(report: Report) -> tuple[str, str]:
    """The session id and user agent Claude Code sent with every Messages request, as they reached
    the upstream (passed through): the ``X-Claude-Code-Session-Id`` header, the same id in the
    body's ``metadata.user_id`` (a JSON string since 2.1), one user agent of the pinned release."""
    sent = [r for r in report["requests"] if r["path"] == "/v1/messages"]
    assert sent, explain(report)
    ids = {r["headers"].get("x-claude-code-session-id") for r in sent}
    ids |= {json.loads(r["body"]["metadata"]["user_id"])["session_id"] for r in sent}
    agents = {r["headers"].get("user-agent") for r in sent}
    assert len(ids) == len(agents) == 1, (ids, agents)
    (session_id,), (agent,) = ids, agents
    assert isinstance(session_id, str) and session_id, ids
    assert isinstance(agent, str) and agent.startswith(f"claude-cli/{CLAUDE_CODE_VERSION} "), agent
    return session_id, agent


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict))


# --------------------------------------------------------------------------- baseline


def test_baseline_claude_code_against_the_fake_directly(scenario: Callable[[str], Report]) -> None:
    """Without the gateway: proves the harness works and records what Claude Code sends."""
    report = scenario("direct-tool")
    assert MARKER in cli_result(report)["result"], explain(report)
    requests = model_requests(report, "/v1/messages")
    assert len(requests) == 2, explain(report)
    for r in requests:
        assert r["query"] == "beta=true", r["query"]
        assert "claude-code-20250219" in r["headers"]["anthropic-beta"].split(","), r["headers"]


# --------------------------------------------------------------------------- Anthropic passthrough


def test_claude_code_through_a_per_application_endpoint(scenario: Callable[[str], Report]) -> None:
    """``ANTHROPIC_BASE_URL`` set to an endpoint's URL as the admin API shows it, unchanged."""
    report = scenario("anthropic-endpoint")
    result = cli_result(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    endpoint = report["endpoint"]
    assert endpoint["urls"]["anthropic"] == f"{report['gateway_url']}/v1/{endpoint['id']}/anthropic"
    (request,) = model_requests(report, "/v1/messages")  # the upstream's own path, as for the base URL
    assert request["headers"]["x-api-key"] == UPSTREAM_KEY
    lines = [(line["group"], line["name"]) for line in report["endpoint_usage"]["data"]]
    assert lines == [(endpoint["id"], "claude-code")], explain(report)
    assert report["endpoint_usage"]["data"][0]["requests"] >= 1
    assert_no_master_key(report)
    # The request log: the endpoint's id on the record, the session Claude Code named.
    session = logged_session(report, *sent_session(report), endpoint_id=endpoint["id"])
    assert session["requests"] == result["num_turns"] == 1, session


def test_anthropic_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-plain")
    result = cli_result(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    assert result["num_turns"] == 1, explain(report)
    (request,) = model_requests(report, "/v1/messages")
    assert request["body"]["model"].startswith("claude-"), request["body"]["model"]
    assert request["body"]["stream"] is True
    assert request["headers"]["x-api-key"] == UPSTREAM_KEY
    assert_no_master_key(report)


def test_anthropic_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-tool")
    result = cli_result(report)
    assert result["result"].strip() == f"Tool result received: {MARKER}", explain(report)
    assert result["num_turns"] == 2, explain(report)
    first, second = model_requests(report, "/v1/messages")
    assert first["body"]["messages"][0]["role"] == "user"
    use_id, tool_result = tool_round_trip_ids(second["body"]["messages"])
    assert tool_result["tool_use_id"] == use_id
    assert result_text(tool_result).strip() == MARKER
    assert tool_result.get("is_error") in (None, False)
    # The fake gave the first answer a signed thinking block; a 200 on the second
    # request means it came back with text and signature intact (the fake checks).
    assistant = second["body"]["messages"][-2]
    assert [b["type"] for b in blocks(assistant)] == ["thinking", "tool_use"], assistant
    assert second["status"] == 200


def test_anthropic_upstream_gets_provider_key_and_client_headers(scenario: Callable[[str], Report]) -> None:
    report, baseline = scenario("anthropic-tool"), scenario("direct-tool")
    cli_result(report)
    sent = model_requests(baseline, "/v1/messages")
    got = model_requests(report, "/v1/messages")
    assert len(got) == len(sent) == 2, explain(report)
    assert_no_master_key(report)
    for upstream, direct in zip(got, sent, strict=True):
        h = upstream["headers"]
        assert h["x-api-key"] == UPSTREAM_KEY
        assert "authorization" not in h, h
        for name in ("anthropic-version", "anthropic-beta"):
            assert h.get(name) == direct["headers"][name], (name, h.get(name), direct["headers"][name])


def test_anthropic_body_fields_survive(scenario: Callable[[str], Report]) -> None:
    """Passthrough keeps every body field Claude Code sends, in order, as the baseline shows them."""
    report, baseline = scenario("anthropic-tool"), scenario("direct-tool")
    cli_result(report)
    for upstream, direct in zip(
        model_requests(report, "/v1/messages"), model_requests(baseline, "/v1/messages"), strict=True
    ):
        got, sent = upstream["body"], direct["body"]
        assert list(got) == list(sent), (list(got), list(sent))
        for field in ("model", "max_tokens", "thinking", "output_config", "context_management", "stream"):
            assert got.get(field) == sent.get(field), field
        assert set(json.loads(got["metadata"]["user_id"])) == set(json.loads(sent["metadata"]["user_id"]))
        assert [t["name"] for t in got["tools"]] == [t["name"] for t in sent["tools"]]
        assert [(b["type"], "cache_control" in b) for b in got["system"]] == [
            (b["type"], "cache_control" in b) for b in sent["system"]
        ]
        assert [m["role"] for m in got["messages"]] == [m["role"] for m in sent["messages"]]
        assert upstream["raw_body"].count('"cache_control"') == direct["raw_body"].count('"cache_control"')


def test_the_request_log_groups_a_claude_code_session(scenario: Callable[[str], Report]) -> None:
    """Both requests of the tool round trip carry the session id Claude Code sent (as the baseline
    shows it sends one: header and ``metadata.user_id``) and its user agent; the session groups
    them, one turn per request, with the tool call of the first answer."""
    report, baseline = scenario("anthropic-tool"), scenario("direct-tool")
    result = cli_result(report)
    assert sent_session(baseline)[0] != sent_session(report)[0]  # each run is a session of its own
    session = logged_session(report, *sent_session(report))
    assert session["requests"] >= result["num_turns"] == 2, session
    records = report["request_log"]["requests"]
    assert [(r["door"], r["stream"], r["tool_calls"]) for r in records] == [
        ("anthropic", True, 1),
        ("anthropic", True, 0),
    ]
    assert session["models"] == [records[0]["model"]], session


def test_anthropic_beta_query_reaches_upstream(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-tool")
    cli_result(report)
    assert [r["query"] for r in model_requests(report, "/v1/messages")] == ["beta=true", "beta=true"]


# --------------------------------------------------------------------------- OpenAI-compatible translation


def assert_openai_request(request: dict[str, Any]) -> None:
    h, body = request["headers"], request["body"]
    assert h.get("authorization") == f"Bearer {UPSTREAM_KEY}", h
    assert "x-api-key" not in h, h
    assert body["model"] == OPENAI_UPSTREAM_MODEL
    assert body["stream"] is True
    assert body.get("stream_options", {}).get("include_usage") is True, body.get("stream_options")
    assert "Bash" in [t["function"]["name"] for t in body["tools"] if t.get("type") == "function"]
    assert body["messages"][0]["role"] == "system", body["messages"][0]
    # Claude Code sends part of its context as a {"role":"system"} turn inside messages.
    assert "# Environment" in request["raw_body"], "the in-conversation system turn was lost in translation"


def test_openai_compatible_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-plain")
    result = cli_result(report)
    assert result["result"].strip() == PLAIN_REPLY, explain(report)
    assert result["num_turns"] == 1, explain(report)
    (request,) = model_requests(report, "/v1/chat/completions")
    assert_openai_request(request)
    assert_no_master_key(report)


def test_openai_compatible_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-tool")
    result = cli_result(report)
    assert result["result"].strip() == f"Tool result received: {MARKER}", explain(report)
    assert result["num_turns"] == 2, explain(report)
    first, second = model_requests(report, "/v1/chat/completions")
    for request in (first, second):
        assert_openai_request(request)
    assert_no_master_key(report)
    messages = second["body"]["messages"]
    assistant, tool = messages[-2], messages[-1]
    assert assistant["role"] == "assistant", assistant
    (call,) = assistant["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "Bash", call
    assert json.loads(call["function"]["arguments"]) == {"command": f"echo {MARKER}"}
    assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"], tool
    content = tool["content"] if isinstance(tool["content"], str) else json.dumps(tool["content"])
    assert MARKER in content, tool


# --------------------------------------------------------------------------- a fallback mid-session


def test_a_failing_upstream_falls_back_to_another_kind_mid_session(scenario: Callable[[str], Report]) -> None:
    """The Anthropic upstream answers the first turn, then only 529s: the second turn (the tool
    result, with the first turn's signed thinking block) is retried, then served by the
    OpenAI-compatible fallback through translation. Claude Code sees no error."""
    report = scenario("anthropic-fallback")
    result = cli_result(report)
    assert result["result"].strip() == f"Tool result received: {MARKER}", explain(report)
    assert result["num_turns"] == 2, explain(report)
    paths = [r["path"] for r in report["requests"]]
    assert paths == ["/v1/messages"] * 3 + ["/v1/chat/completions"], explain(report)
    anthropic, (fallback,) = report["requests"][:3], report["requests"][3:]
    assert [r["status"] for r in anthropic] == [200, 529, 529], explain(report)  # two attempts, then the fallback
    assert_openai_request(fallback)
    use_id, tool_result = tool_round_trip_ids(anthropic[1]["body"]["messages"])
    assert tool_result["tool_use_id"] == use_id
    assert_no_master_key(report)
    # The request log shows why: the second turn's attempts, in one session with the first.
    logged_session(report, *sent_session(report))
    first, second = report["request_log"]["requests"]
    tried = [[(a["provider"], a["status"], a["passthrough"]) for a in r["attempts"]] for r in (first, second)]
    assert tried == [[("anth", 200, True)], [("anth", 529, True), ("anth", 529, True), ("local", 200, False)]], tried
    assert (second["provider"], second["served_model"]) == ("local", OPENAI_UPSTREAM_MODEL), second


def test_pinned_version_is_what_runs(claude_binary: Path) -> None:
    done = subprocess.run([str(claude_binary), "--version"], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(f"{CLAUDE_CODE_VERSION} "), done.stdout
