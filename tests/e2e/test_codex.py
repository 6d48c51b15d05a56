"""End to end with the real Codex CLI: Codex → modelgate (Responses API) → fake upstream.

What runs: the pinned Codex release (``codex_cli.CODEX_VERSION``), installed from npm
into ``.cache/npm/codex/`` on first use and reused afterwards. Every scenario runs in
its own loopback-only network namespace (``unshare -n``), so the CLI can reach nothing
but the gateway and the fake upstream started inside it (see ``netns_codex.py`` and
``harness.py``). Codex runs headless (``codex exec --json``), configured only through
``$CODEX_HOME/config.toml`` (a custom provider: the gateway's ``/v1``,
``wire_api = "responses"``, the master key in the variable ``env_key`` names, WebSocket
first), with no approvals and no sandbox, and empty ``HOME`` and ``CODEX_HOME``. A
recording proxy between Codex and the gateway shows what Codex itself sent, and when.

What is asserted, through an Anthropic upstream (the Responses API translated to
Anthropic Messages) and through an OpenAI upstream (Responses passed through):

* **WebSocket fallback**: Codex's one ``GET /v1/responses`` WebSocket handshake is
  refused with 426, and its first ``POST /v1/responses`` follows within a second, with
  no second handshake; the baseline (Codex against the fake itself, which answers
  the handshake with a 500) shows that any other answer costs several retries and
  seconds;
* **plain prompt**: Codex prints the fake's fixed answer (JSON events and ``-o``
  file), one upstream request, made with the provider key, never the master key;
  translated: ``POST /v1/messages`` with Codex's developer prompt as the system, its
  function and namespace tools as Anthropic tools (``web_search`` left out) and its
  reasoning effort as a thinking budget; passthrough: ``POST /v1/responses`` with
  Codex's exact bytes and its identity headers;
* **tool round trip**: the fake asks for ``exec_command {"cmd": "echo
  modelgate-e2e-marker"}``, Codex runs it and sends a ``function_call_output``
  holding the marker; the fake answers "Tool result received: …" and the marker
  reaches Codex's final message; upstream, the second request carries the call and
  its output (translated: ``tool_use`` / ``tool_result`` with the thinking block and
  its signature intact, which the fake verifies; passthrough: the same items, bytes
  unchanged, the fake's reasoning item verified);
* **request log**: both requests of each tool round trip are recorded (read back through
  the admin API) under the session id Codex sent (its ``session-id`` header) with its user
  agent, and the session summary groups them; the refused handshake is not recorded;
* **per-application endpoint**: ``base_url`` set to an endpoint's ``/v1/<id>/openai``
  (docs/clients.md's ``codex-config@endpoint``), unchanged: the WebSocket fallback and a
  translated plain turn work as through the base URL, and the record carries the endpoint's id.

Run alone with ``.venv/bin/python -m pytest tests/e2e/test_codex.py -q`` (needs npm on
first run, ``unshare`` and ``ip``, and root or CAP_SYS_ADMIN for the network namespace;
a missing tool fails the tests with a message saying what to install, never skips).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelgate.testing.reply import TOOL_RESULT_PREFIX
from tests.e2e.codex_cli import CODEX_VERSION, ensure_codex, native_binary
from tests.e2e.harness import (
    MARKER,
    MASTER_KEY,
    PLAIN_REPLY,
    UPSTREAM_KEY,
    Report,
    assert_cli_exited,
    assert_gateway_log_clean,
    assert_no_master_key,
    cli_fixtures,
    explain,
    logged_session,
    model_requests,
)
from tests.e2e.netns_codex import ANTHROPIC_MODEL, OPENAI_MODEL, PLAIN_PROMPT, SHELL_TOOL, TOOL_PROMPT

pytestmark = pytest.mark.e2e

#: Seconds one scenario may take, Codex included (about 2 s in practice, 8 s for the baseline).
SCENARIO_TIMEOUT = 120
CLI_TIMEOUT = 60
#: A Codex run through the gateway takes under a second; a stall (retries, a DNS wait) shows here.
QUICK_RUN = 15.0
#: Codex must be on HTTP this soon after the WebSocket refusal (its retries take seconds).
FALLBACK_LIMIT = 1.0
#: Codex's request headers that identify the client and the session (the passthrough forwards them).
IDENTITY_HEADERS = ("originator", "user-agent", "x-client-request-id")
#: The thinking budget the gateway gives ``reasoning.effort: medium`` (docs/openai-responses.md).
MEDIUM_BUDGET = 4096

Item = dict[str, Any]


# --------------------------------------------------------------------------- setup


#: ``codex_binary`` and ``scenario`` (a scenario of ``netns_codex.py``, run once per session).
codex_binary, scenario = cli_fixtures(
    "codex_binary", ensure_codex, "tests.e2e.netns_codex", cli_timeout=CLI_TIMEOUT, scenario_timeout=SCENARIO_TIMEOUT
)


# --------------------------------------------------------------------------- helpers


def completed_items(report: Report) -> list[Item]:
    """The items of Codex's ``item.completed`` events, after checking the run went well.

    The run exits 0 in time, prints only JSON events: one thread, one turn that
    completes, no ``error`` event (Codex reports its retries that way) and no error
    item except the warning about a model missing from its catalog; the gateway logged
    no exception."""
    events = assert_cli_exited(report)["events"]
    assert events and all(isinstance(e, dict) for e in events), explain(report)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "thread.started", explain(report)
    assert kinds.count("turn.started") == kinds.count("turn.completed") == 1, explain(report)
    assert not {"turn.failed", "error"} & set(kinds), explain(report)
    assert_gateway_log_clean(report)
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    for item in items:
        if item["type"] == "error":
            assert item["message"].startswith(f"Model metadata for `{report['model']}` not found"), explain(report)
    return items


def final_message(report: Report) -> str:
    """Codex's last agent message, which the ``-o`` file holds too."""
    items = completed_items(report)
    messages = [i["text"] for i in items if i["type"] == "agent_message"]
    assert messages, explain(report)
    assert report["cli"]["last_message"] == messages[-1], explain(report)
    assert report["cli"]["elapsed"] < QUICK_RUN, explain(report)
    return messages[-1]


def responses_path(report: Report) -> str:
    """Where Codex sends its requests: the gateway's ``/v1/responses``, or under the endpoint's base URL."""
    endpoint = report.get("endpoint")
    return "/v1/responses" if endpoint is None else f"/v1/{endpoint['id']}/openai/responses"


def client_posts(report: Report) -> list[dict[str, Any]]:
    """Codex's ``POST /v1/responses`` requests (as the proxy saw them), with ``json``, the parsed body."""
    posts = [dict(r) for r in report["client_requests"] if r["method"] == "POST"]
    for post in posts:
        assert (post["target"], post["status"]) == (responses_path(report), 200), explain(report)
        post["json"] = json.loads(post["body"])
    return posts


def assert_quick_fallback(report: Report) -> None:
    """One WebSocket handshake, refused with 426, then HTTP at once and for the whole session."""
    requests = report["client_requests"]
    assert requests, explain(report)
    handshake, rest = requests[0], requests[1:]
    first = (handshake["method"], handshake["target"], handshake["status"])
    assert first == ("GET", responses_path(report), 426), explain(report)
    h = handshake["headers"]
    assert h.get("upgrade", "").lower() == "websocket", h
    assert "upgrade" in h.get("connection", "").lower(), h
    assert "responses_websockets=" in h.get("openai-beta", ""), h
    assert h.get("authorization") == f"Bearer {MASTER_KEY}", h
    assert handshake["response_headers"].get("upgrade", "").lower() == "websocket", handshake["response_headers"]
    assert [r["method"] for r in rest] == ["POST"] * len(rest), explain(report)
    assert rest, explain(report)
    waited = rest[0]["sent_at"] - handshake["response_at"]
    assert 0 <= waited < FALLBACK_LIMIT, f"Codex fell back to HTTP {waited:.2f} s after the 426\n{explain(report)}"


def sent_session(report: Report) -> tuple[str, str]:
    """The session id and user agent Codex sent with every request, the WebSocket handshake
    included (as the proxy saw them): its ``session-id`` header (this release's spelling; the
    gateway also reads ``session_id``), one user agent of the pinned release."""
    sent = report["client_requests"]
    assert sent, explain(report)
    ids = {r["headers"].get("session-id") for r in sent}
    agents = {r["headers"].get("user-agent") for r in sent}
    assert len(ids) == len(agents) == 1, (ids, agents)
    (session_id,), (agent,) = ids, agents
    assert isinstance(session_id, str) and session_id, ids
    assert isinstance(agent, str) and agent.startswith(f"codex_exec/{CODEX_VERSION} "), agent
    return session_id, agent


def input_items(body: dict[str, Any], kind: str) -> list[Item]:
    return [i for i in body["input"] if i.get("type") == kind]


def text_of(item: Item) -> str:
    """The text of a Responses message item or an Anthropic message or tool result (string or parts)."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def anthropic_tools_for(codex_tools: list[Item]) -> dict[str, Any]:
    """The Anthropic tools (name → input schema) the gateway should make of Codex's tools."""
    expected: dict[str, Any] = {}
    for tool in codex_tools:
        if tool["type"] == "function":
            expected[tool["name"]] = tool["parameters"]
        elif tool["type"] == "namespace":
            for inner in tool["tools"]:
                expected[f"{tool['name']}__{inner['name']}"] = inner["parameters"]
        else:
            assert tool["type"] == "web_search", f"Codex declared a {tool['type']!r} tool: extend this test"
    return expected


def assert_anthropic_request(request: dict[str, Any], post: dict[str, Any]) -> None:
    """What the translated path must send for one of Codex's requests."""
    h, body, sent = request["headers"], request["body"], post["json"]
    assert h.get("x-api-key") == UPSTREAM_KEY, h
    assert "authorization" not in h, h
    assert h.get("anthropic-version"), h
    assert body["model"] == ANTHROPIC_MODEL == sent["model"]
    assert body["stream"] is True is sent["stream"]
    assert sent["reasoning"]["effort"] == "medium", sent["reasoning"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": MEDIUM_BUDGET}, body.get("thinking")
    system = "\n".join(b["text"] for b in body["system"]) if isinstance(body["system"], list) else body["system"]
    developer = [text_of(i) for i in sent["input"] if i.get("role") == "developer"]
    assert developer and all(text in system for text in developer), "Codex's developer prompt is not the system"
    tools = {t["name"]: t["input_schema"] for t in body["tools"]}
    assert tools == anthropic_tools_for(sent["tools"])
    assert SHELL_TOOL in tools


def assert_passthrough(report: Report, request: dict[str, Any], post: dict[str, Any]) -> None:
    """The passthrough sent Codex's bytes, its identity headers and the provider key."""
    h, sent = request["headers"], post["headers"]
    assert request["raw_body"] == post["body"], "the passthrough changed Codex's request body"
    assert h.get("authorization") == f"Bearer {UPSTREAM_KEY}", h
    assert "x-api-key" not in h, h
    names = [*IDENTITY_HEADERS, *(n for n in sent if n.startswith("x-codex-"))]
    assert {n: h.get(n) for n in names} == {n: sent[n] for n in names}
    assert_no_master_key(report)


def shell_call(report: Report) -> Item:
    """Codex's completed ``command_execution`` item for the marker command."""
    runs = [i for i in completed_items(report) if i["type"] == "command_execution"]
    assert len(runs) == 1, explain(report)
    (run,) = runs
    assert f"echo {MARKER}" in run["command"], run
    assert (run["status"], run["exit_code"]) == ("completed", 0), run
    assert run["aggregated_output"].strip() == MARKER, run
    return run


def assert_tool_result_message(report: Report) -> None:
    message = final_message(report)
    assert message.startswith(TOOL_RESULT_PREFIX), explain(report)
    assert MARKER in message.removeprefix(TOOL_RESULT_PREFIX), explain(report)


def assert_codex_sent_the_output(post: dict[str, Any]) -> tuple[Item, Item]:
    """Codex's second request holds the function call and its output, with the marker."""
    (call,) = input_items(post["json"], "function_call")
    assert call["name"] == SHELL_TOOL, call
    assert json.loads(call["arguments"]) == {"cmd": f"echo {MARKER}"}, call
    (output,) = input_items(post["json"], "function_call_output")
    assert output["call_id"] == call["call_id"], (call, output)
    assert MARKER in output["output"], output
    return call, output


# --------------------------------------------------------------------------- baseline


def test_baseline_codex_against_the_fake_directly(scenario: Callable[[str], Report]) -> None:
    """Without the gateway: the harness works, and a WebSocket answer other than 426 costs retries."""
    report = scenario("direct-plain")
    cli = report["cli"]
    assert (cli["timed_out"], cli["exit_code"]) == (False, 0), explain(report)
    assert cli["last_message"] == PLAIN_REPLY, explain(report)
    requests = report["client_requests"]
    handshakes = [r for r in requests if r["method"] == "GET"]
    # The fake ignores WebSocket handshakes (uvicorn answers 500): Codex retries them with backoff.
    assert [r["status"] for r in handshakes][:2] == [500, 500], (
        f"the baseline needs a non-426 refusal\n{explain(report)}"
    )
    posts = client_posts(report)
    assert len(posts) == 1, explain(report)
    assert posts[0]["sent_at"] - handshakes[0]["sent_at"] > FALLBACK_LIMIT, explain(report)
    (request,) = model_requests(report, "/v1/responses")
    assert request["raw_body"] == posts[0]["body"]


# --------------------------------------------------------------------------- Anthropic upstream (translated)


def test_codex_anthropic_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-plain")
    assert final_message(report) == PLAIN_REPLY, explain(report)
    assert_quick_fallback(report)
    (post,) = client_posts(report)
    (request,) = model_requests(report, "/v1/messages")
    assert_anthropic_request(request, post)
    assert_no_master_key(report)
    last = request["body"]["messages"][-1]
    assert last["role"] == "user", last
    assert PLAIN_PROMPT in text_of(last).split("\n"), last


def test_codex_anthropic_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-tool")
    assert_tool_result_message(report)
    shell_call(report)
    assert_quick_fallback(report)
    first_post, second_post = client_posts(report)
    assert text_of(first_post["json"]["input"][-1]) == TOOL_PROMPT
    call, output = assert_codex_sent_the_output(second_post)
    # The thinking went to Codex as a reasoning item carrying the gateway's envelope, and came back.
    (reasoning,) = input_items(second_post["json"], "reasoning")
    assert reasoning["encrypted_content"].startswith("mg1:"), reasoning
    first, second = model_requests(report, "/v1/messages")
    assert_anthropic_request(first, first_post)
    assert_anthropic_request(second, second_post)
    assert_no_master_key(report)
    assistant, user = second["body"]["messages"][-2:]
    assert assistant["role"] == "assistant" and user["role"] == "user", (assistant, user)
    # The fake gave the first answer a signed thinking block: a 200 on the second request
    # means it came back with text and signature intact (the fake verifies them).
    assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use"], assistant
    thinking, use = assistant["content"]
    assert thinking["signature"], thinking
    assert (use["id"], use["name"], use["input"]) == (call["call_id"], SHELL_TOOL, {"cmd": f"echo {MARKER}"}), use
    (result,) = user["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == use["id"], result
    assert text_of(result) == output["output"], (result, output)


# --------------------------------------------------------------------------- OpenAI upstream (passthrough)


def test_codex_openai_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-plain")
    assert final_message(report) == PLAIN_REPLY, explain(report)
    assert_quick_fallback(report)
    (post,) = client_posts(report)
    (request,) = model_requests(report, "/v1/responses")
    assert_passthrough(report, request, post)
    body = request["body"]
    assert (body["model"], body["stream"], body["store"]) == (OPENAI_MODEL, True, False), body
    assert "reasoning.encrypted_content" in body["include"], body["include"]


def test_codex_openai_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-tool")
    assert_tool_result_message(report)
    shell_call(report)
    assert_quick_fallback(report)
    posts = client_posts(report)
    requests = model_requests(report, "/v1/responses")
    assert len(posts) == len(requests) == 2, explain(report)
    for request, post in zip(requests, posts, strict=True):
        assert_passthrough(report, request, post)
    # What reached the upstream: the call and its output, and the fake's own reasoning
    # item (the fake refuses one whose encrypted content it did not write: the 200 says it did).
    assert_codex_sent_the_output({"json": requests[1]["body"]})
    (reasoning,) = input_items(requests[1]["body"], "reasoning")
    assert reasoning["encrypted_content"].startswith("gAAAAB"), reasoning
    assert requests[1]["status"] == 200


def test_codex_openai_session_headers_reach_upstream(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-plain")
    (post,) = client_posts(report)
    (request,) = model_requests(report, "/v1/responses")
    sent = {n: v for n, v in post["headers"].items() if n in ("session-id", "thread-id", "session_id")}
    assert sent, post["headers"]
    assert {n: request["headers"].get(n) for n in sent} == sent


# --------------------------------------------------------------------------- request log and endpoints


@pytest.mark.parametrize("name", ["anthropic-tool", "openai-tool"])
def test_the_request_log_groups_a_codex_session(scenario: Callable[[str], Report], name: str) -> None:
    """Both requests of a tool round trip (translated or passed through) are recorded under the
    session id Codex sent, with its user agent; the refused WebSocket handshake is not a request."""
    report = scenario(name)
    assert_tool_result_message(report)
    session = logged_session(report, *sent_session(report))
    records = report["request_log"]["requests"]
    assert session["requests"] == len(records) == len(client_posts(report)) == 2, explain(report)
    door = [(r["door"], r["model"], r["stream"]) for r in records]
    assert door == [("openai_responses", report["model"], True)] * 2, door
    assert [r["tool_calls"] for r in records] == [1, 0], records
    assert [[a["passthrough"] for a in r["attempts"]] for r in records] == [[name == "openai-tool"]] * 2


def test_codex_through_a_per_application_endpoint(scenario: Callable[[str], Report]) -> None:
    """``base_url`` in ``config.toml`` is the endpoint's ``/v1/<id>/openai`` (docs/clients.md's
    ``codex-config@endpoint``), unchanged: the WebSocket is refused there too, the turn is answered,
    and the request log's record carries the endpoint's id and the session Codex sent."""
    report = scenario("anthropic-endpoint")
    assert final_message(report) == PLAIN_REPLY, explain(report)
    endpoint = report["endpoint"]
    assert endpoint["urls"]["openai"] == f"{report['gateway_url']}/v1/{endpoint['id']}/openai"
    assert f'/v1/{endpoint["id"]}/openai"' in report["config_toml"], report["config_toml"]
    assert_quick_fallback(report)
    (post,) = client_posts(report)
    (request,) = model_requests(report, "/v1/messages")  # the upstream's own path, as for the base URL
    assert_anthropic_request(request, post)
    assert_no_master_key(report)
    session = logged_session(report, *sent_session(report), endpoint_id=endpoint["id"])
    assert session["requests"] == 1, session


# --------------------------------------------------------------------------- the CLI itself


def test_pinned_version_is_what_runs(codex_binary: Path) -> None:
    for binary in (codex_binary, native_binary()):
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == f"codex-cli {CODEX_VERSION}", (binary, done.stdout, done.stderr)
