"""End to end with the real Gemini CLI: Gemini CLI → modelgate (Gemini API) → fake upstream.

What runs: the pinned Gemini CLI release (``gemini_cli.GEMINI_CLI_VERSION``), installed
from npm into ``.cache/npm/gemini-cli/`` on first use and reused afterwards. Every
scenario runs in its own loopback-only network namespace (``unshare -n``), so the CLI
can reach nothing but the gateway and the fake upstream started inside it (see
``netns_gemini.py`` and ``harness.py``). The CLI runs headless
(``gemini -p PROMPT --output-format json --approval-mode yolo --skip-trust``) with
``GOOGLE_GEMINI_BASE_URL`` (the gateway), ``GEMINI_API_KEY`` (the master key) and a
``~/.gemini/settings.json`` selecting API-key auth, with no usage statistics, telemetry,
update checks or IDE integration, in an empty ``HOME``. A recording proxy between the
CLI and the gateway shows what the CLI itself sent.

Each prompt starts with the CLI's routing call: a non-streamed ``generateContent`` on
``gemini-3.5-flash-lite`` with a JSON schema (``responseMimeType: application/json``),
which the fake answers with a low complexity score (queued for that model, since the
prompt's ``[[fake:…]]`` directives are in the router's input too); then the turn itself
streams (``streamGenerateContent?alt=sse``) on the flash model the router picked.

What is asserted, through a Gemini upstream (passed through), an Anthropic upstream
(translated to Messages) and an OpenAI upstream (translated to Chat Completions):

* **baseline** (the CLI against the fake itself, no gateway): the harness works and the
  CLI sends what these tests expect;
* **plain prompt**: the CLI prints the fake's fixed answer; one routing call and one
  streamed call, both answered 200, the CLI's stats show no API error; upstream: the
  provider key (never the master key); passthrough: the same paths, ``alt=sse`` and the
  CLI's exact bytes; translated: the router's schema as Anthropic's
  ``output_config.format`` / OpenAI's ``response_format`` (type names lower-cased), the
  router's and the turn's models mapped as configured, every function declaration as a
  tool with its ``parametersJsonSchema``, the system instruction as the system prompt;
  passthrough: the request log (read back through the admin API) holds both calls with the
  CLI's user agent and no agent session (the CLI names none on the API-key path);
* **per-application endpoint**: ``GOOGLE_GEMINI_BASE_URL`` set to an endpoint's
  ``/v1/<id>/gemini`` (docs/clients.md's ``gemini-cli-env@endpoint``), unchanged: the
  plain prompt passes through as above, and the records carry the endpoint's id; with
  ``GEMINI_CLI_CUSTOM_HEADERS="X-Modelgate-Session-Id: …"`` both calls are one session;
* **tool round trip**: the fake asks for ``run_shell_command {"command": "echo
  modelgate-e2e-marker"}``, the CLI runs it and sends the ``functionCall`` back with a
  ``functionResponse`` holding the marker; the fake answers "Tool result received: …" and
  the marker reaches the CLI's output. The thought signature the CLI sends back with the
  call: passthrough, the fake's own (which it verifies); Anthropic, the gateway's packed
  Claude thinking, unpacked upstream into the thinking block and its signature (which
  the fake verifies); OpenAI, none came, so the CLI sends Google's
  ``skip_thought_signature_validator``, which must not reach the upstream. Upstream, the
  call and its result arrive as ``tool_use``/``tool_result`` or ``tool_calls``/``role:
  tool`` with matching ids.

Run alone with ``.venv/bin/python -m pytest tests/e2e/test_gemini_cli.py -q`` (needs npm
and Node 20+ on first run, ``unshare`` and ``ip``, and root or CAP_SYS_ADMIN for the
network namespace; a missing tool fails the tests with a message saying what to
install, never skips).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from modelgate.testing.reply import TOOL_RESULT_PREFIX
from tests.e2e.gemini_cli import GEMINI_CLI_VERSION, ensure_gemini_cli
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
    logged_requests,
    model_requests,
)
from tests.e2e.netns_gemini import (
    ANTHROPIC_UPSTREAM_MODELS,
    OPENAI_UPSTREAM_MODELS,
    ROUTER_ANSWERS,
    ROUTER_MODEL,
    SESSION_ID,
    SHELL_TOOL,
)

pytestmark = pytest.mark.e2e

#: Seconds one scenario may take, the CLI included (3 to 8 s in practice).
SCENARIO_TIMEOUT = 120
CLI_TIMEOUT = 60
#: A run takes a few seconds; a stall (the CLI retrying a call with backoff) shows here.
QUICK_RUN = 30.0
#: The value Google documents for a function call without a signature of its own.
SKIP_SIGNATURE = "skip_thought_signature_validator"
SHELL_ARGS = {"command": f"echo {MARKER}"}

Json = dict[str, Any]


# --------------------------------------------------------------------------- setup


#: ``gemini_binary`` and ``scenario`` (a scenario of ``netns_gemini.py``, run once per session).
gemini_binary, scenario = cli_fixtures(
    "gemini_binary",
    ensure_gemini_cli,
    "tests.e2e.netns_gemini",
    cli_timeout=CLI_TIMEOUT,
    scenario_timeout=SCENARIO_TIMEOUT,
)


# --------------------------------------------------------------------------- the CLI's side


def cli_output(report: Report) -> Json:
    """The CLI's JSON output, after checking the run went well: exit 0 in time, no error,
    no API error in its stats, no exception in the gateway's log."""
    cli = assert_cli_exited(report)
    assert cli["elapsed"] < QUICK_RUN, explain(report)
    output = cli["json"]
    assert isinstance(output, dict), explain(report)
    assert "error" not in output, explain(report)
    assert isinstance(output.get("response"), str), explain(report)
    for model, stats in output["stats"]["models"].items():
        assert stats["api"]["totalErrors"] == 0, (model, stats["api"], explain(report))
    assert_gateway_log_clean(report)
    return output


def base_path(report: Report) -> str:
    """The path of the base URL the CLI was given: none (the gateway's root), or the endpoint's ``/v1/<id>/gemini``."""
    endpoint = report.get("endpoint")
    return "" if endpoint is None else f"/v1/{endpoint['id']}/gemini"


def client_calls(report: Report) -> tuple[Json, list[Json]]:
    """The CLI's routing call and its streamed calls, as the proxy saw them, each with
    ``model``, ``method``, ``json`` (the parsed body) and ``record`` (the proxy's record).

    Every request is a ``POST /v1beta/models/{model}:{method}`` answered 200 and carrying
    the key it was given; first the one routing call, then the turn's streamed calls, all
    on one model, which the CLI's stats show in the ``main`` role."""
    key = UPSTREAM_KEY if report["provider"] == "direct" else MASTER_KEY
    prefix = f"{base_path(report)}/v1beta/models/"
    calls = []
    for record in report["client_requests"]:
        url = urlsplit(record["target"])
        assert (record["method"], record["status"]) == ("POST", 200), explain(report)
        assert url.path.startswith(prefix), explain(report)
        model, _, method = url.path[len(prefix) :].rpartition(":")
        assert record["headers"].get("x-goog-api-key") == key, record["headers"]
        assert record["headers"]["user-agent"].startswith(f"GeminiCLI-tui/{GEMINI_CLI_VERSION}/"), record["headers"]
        query = parse_qs(url.query)
        assert query == ({"alt": ["sse"]} if method == "streamGenerateContent" else {}), record["target"]
        calls.append({"model": model, "method": method, "json": json.loads(record["body"]), "record": record})
    assert calls, explain(report)
    router, main = calls[0], calls[1:]
    assert (router["model"], router["method"]) == (ROUTER_MODEL, "generateContent"), explain(report)
    assert main and {(c["model"], c["method"]) for c in main} == {(main[0]["model"], "streamGenerateContent")}
    assert main[0]["model"].startswith("gemini-") and main[0]["model"] != ROUTER_MODEL, explain(report)
    roles = {m: set(s["roles"]) for m, s in cli_output(report)["stats"]["models"].items()}
    assert roles == {ROUTER_MODEL: {"utility_router"}, main[0]["model"]: {"main"}}, roles
    return router, main


def assert_router_call(router: Json) -> None:
    """The routing call asks for JSON that fits a schema, with no tools."""
    body = router["json"]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json", config
    assert set(config["responseJsonSchema"]["properties"]) == {"complexity_reasoning", "complexity_score"}
    assert "tools" not in body
    assert "Routing" in json.dumps(body["systemInstruction"])


def declarations(call: Json) -> dict[str, Json]:
    """The function declarations of a CLI call: name → ``parametersJsonSchema``."""
    found = {}
    for tool in call["json"]["tools"]:
        for declaration in tool["functionDeclarations"]:
            found[declaration["name"]] = declaration["parametersJsonSchema"]
    assert SHELL_TOOL in found, sorted(found)
    return found


def system_text(call: Json) -> str:
    return "".join(part["text"] for part in call["json"]["systemInstruction"]["parts"])


def tool_exchange(call: Json) -> tuple[Json, Json]:
    """The CLI's shell ``functionCall`` part and the ``functionResponse`` answering it,
    the last two contents of its second streamed call."""
    model_turn, answer = call["json"]["contents"][-2:]
    assert model_turn["role"] == "model", model_turn
    (call_part,) = [p for p in model_turn["parts"] if "functionCall" in p]
    assert call_part["functionCall"]["name"] == SHELL_TOOL, call_part
    assert call_part["functionCall"]["args"] == SHELL_ARGS, call_part
    assert answer["role"] == "user", answer
    (response_part,) = answer["parts"]
    response = response_part["functionResponse"]
    assert response["name"] == SHELL_TOOL, response
    assert response["id"] == call_part["functionCall"]["id"], (response, call_part)
    assert MARKER in response["response"]["output"], response
    return call_part, response_part


def assert_tool_result_output(report: Report) -> Json:
    output = cli_output(report)
    assert output["response"].startswith(TOOL_RESULT_PREFIX), explain(report)
    assert MARKER in output["response"], explain(report)
    shell = output["stats"]["tools"]["byName"][SHELL_TOOL]
    assert (shell["count"], shell["success"]) == (1, 1), shell
    return output


def router_answers_used(report: Report) -> int:
    """How many of the router answers queued on the fake were taken."""
    return ROUTER_ANSWERS - report["router_answers_left"]


def plain_calls(report: Report) -> tuple[Json, list[Json]]:
    """A plain prompt's routing call and its one streamed call, after checking the CLI
    printed the fake's fixed answer."""
    assert cli_output(report)["response"].strip() == PLAIN_REPLY, explain(report)
    router, main = client_calls(report)
    assert_router_call(router)
    assert len(main) == 1, explain(report)
    return router, main


def tool_calls(report: Report, *, check_router: bool = False) -> tuple[list[Json], Json]:
    """A tool round trip's two streamed calls and the CLI's shell ``functionCall`` part,
    after checking the tool result reached the output (and, if asked, the routing call)."""
    assert_tool_result_output(report)
    router, main = client_calls(report)
    if check_router:
        assert_router_call(router)
    assert len(main) == 2, explain(report)
    call_part, _ = tool_exchange(main[1])
    return main, call_part


def assert_own_signature(call_part: Json) -> None:
    """The call came back with a thought signature of its own, not the skip value."""
    assert call_part["thoughtSignature"] not in (SKIP_SIGNATURE, ""), call_part


# --------------------------------------------------------------------------- baseline


def test_baseline_gemini_cli_against_the_fake_directly(scenario: Callable[[str], Report]) -> None:
    """Without the gateway: proves the harness works and shows what the CLI sends."""
    report = scenario("direct-tool")
    _, call_part = tool_calls(report, check_router=True)
    assert_own_signature(call_part)
    assert router_answers_used(report) == 1, explain(report)
    assert len(report["requests"]) == 3, explain(report)


# --------------------------------------------------------------------------- Gemini passthrough


def assert_passthrough(report: Report) -> None:
    """Every CLI request reached the fake on the same path and query, with the CLI's exact
    bytes and headers, the provider key instead of the master key."""
    sent, got = report["client_requests"], report["requests"]
    assert len(got) == len(sent), explain(report)
    for record, upstream in zip(sent, got, strict=True):
        url = urlsplit(record["target"])
        path = url.path.removeprefix(base_path(report))  # the upstream's own path, as for the base URL
        assert (upstream["method"], upstream["path"], upstream["query"]) == ("POST", path, url.query)
        assert upstream["status"] == 200, explain(report)
        assert upstream["raw_body"] == record["body"], f"the passthrough changed the body of {record['target']}"
        h = upstream["headers"]
        assert h.get("x-goog-api-key") == UPSTREAM_KEY, h
        assert "authorization" not in h and "x-api-key" not in h, h
        for name in ("user-agent", "x-goog-api-client"):
            assert h.get(name) == record["headers"][name], name
    assert_no_master_key(report)


def assert_logged(
    report: Report, calls: list[Json], *, endpoint_id: str | None = None, session_id: str | None = None
) -> None:
    """The request log holds each of the CLI's calls, in order, with its user agent, the endpoint's
    id and the session id given."""
    (agent,) = {c["record"]["headers"]["user-agent"] for c in calls}
    records = logged_requests(report, agent, endpoint_id=endpoint_id)
    got = [(r["door"], r["model"], r["stream"], r["session_id"]) for r in records]
    assert got == [("gemini", c["model"], c["method"] == "streamGenerateContent", session_id) for c in calls], got


def test_gemini_passthrough_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("gemini-plain")
    router, main = plain_calls(report)
    assert router_answers_used(report) == 1, explain(report)
    assert_passthrough(report)
    # No session: the CLI names none on the API-key path (its prompt id stays in its own
    # telemetry, no header or body field carries it), and the gateway makes none up.
    for call in (router, *main):
        assert not {n for n in call["record"]["headers"] if "session" in n or "prompt" in n}, call["record"]
    assert_logged(report, [router, *main])
    assert report["request_log"]["sessions"] == [], report["request_log"]["sessions"]


def test_gemini_cli_through_a_per_application_endpoint(scenario: Callable[[str], Report]) -> None:
    """``GOOGLE_GEMINI_BASE_URL`` set to an endpoint's ``/v1/<id>/gemini`` (docs/clients.md's
    ``gemini-cli-env@endpoint``), unchanged: the routing call and the turn pass through to the
    upstream's own paths, and the records carry the endpoint's id. With the session named in
    ``GEMINI_CLI_CUSTOM_HEADERS`` (``X-Modelgate-Session-Id``), the session groups both calls."""
    report = scenario("gemini-endpoint")
    router, main = plain_calls(report)
    endpoint = report["endpoint"]
    assert endpoint["urls"]["gemini"] == f"{report['gateway_url']}/v1/{endpoint['id']}/gemini"
    assert router_answers_used(report) == 1, explain(report)
    assert_passthrough(report)
    assert {c["record"]["headers"].get("x-modelgate-session-id") for c in (router, *main)} == {SESSION_ID}
    assert_logged(report, [router, *main], endpoint_id=endpoint["id"], session_id=SESSION_ID)
    (session,) = report["request_log"]["sessions"]
    assert (session["session_id"], session["requests"], session["errors"]) == (SESSION_ID, 2, 0), session
    assert session["models"] == sorted({router["model"], main[0]["model"]}), session


def test_gemini_passthrough_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("gemini-tool")
    _, call_part = tool_calls(report)
    # The fake's own signature came back untouched; it verified it (the 200 in assert_passthrough).
    assert_own_signature(call_part)
    assert_passthrough(report)


# --------------------------------------------------------------------------- translated: common


def lowered(schema: Any) -> Any:
    """A schema with Gemini's upper-case type names (``"OBJECT"``) in JSON Schema's case."""
    if isinstance(schema, dict):
        return {k: v.lower() if k == "type" and isinstance(v, str) else lowered(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [lowered(v) for v in schema]
    return schema


def assert_translated_router(
    report: Report, request: Json, router: Json, router_model: str, *, forced: bool = False
) -> Json:
    """The routing call went upstream unstreamed (as a stream collected into its answer where
    the provider forces streaming: ``forced``), without tools, on the configured model, and
    the fake's scripted answer was taken; returns the schema the upstream must get."""
    assert request["body"]["model"] == router_model, request["body"]["model"]
    assert bool(request["body"].get("stream")) is forced, "the routing call is streamed only when forced"
    assert "tools" not in request["body"]
    assert router_answers_used(report) == 1, explain(report)
    schema = lowered(router["json"]["generationConfig"]["responseJsonSchema"])
    assert schema["type"] == "object" and schema != router["json"]["generationConfig"]["responseJsonSchema"]
    return schema


# --------------------------------------------------------------------------- Anthropic translation


def assert_anthropic_turn(request: Json, main: Json) -> None:
    """A streamed CLI call as Messages: model mapped, tools and system prompt kept."""
    h, body = request["headers"], request["body"]
    assert h.get("x-api-key") == UPSTREAM_KEY, h
    assert "authorization" not in h and "x-goog-api-key" not in h, h
    assert h.get("anthropic-version"), h
    assert body["model"] == ANTHROPIC_UPSTREAM_MODELS[1]
    assert body["stream"] is True
    assert {t["name"]: t["input_schema"] for t in body["tools"]} == declarations(main)
    assert "".join(b["text"] for b in body["system"]) == system_text(main)


def test_anthropic_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-plain")
    router, main = plain_calls(report)
    first, second = model_requests(report, "/v1/messages")
    # an Anthropic provider forces streaming: the CLI still gets one JSON answer
    schema = assert_translated_router(report, first, router, ANTHROPIC_UPSTREAM_MODELS[0], forced=True)
    assert first["body"]["output_config"]["format"] == {"type": "json_schema", "schema": schema}
    assert "".join(b["text"] for b in first["body"]["system"]) == system_text(router)
    assert first["headers"].get("x-api-key") == UPSTREAM_KEY
    assert_anthropic_turn(second, main[0])
    assert_no_master_key(report)


def test_anthropic_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("anthropic-tool")
    main, call_part = tool_calls(report)
    # Claude's thinking and its signature, packed by the gateway into the call's signature.
    assert_own_signature(call_part)
    _, first, second = model_requests(report, "/v1/messages")
    for request, call in zip((first, second), main, strict=True):
        assert_anthropic_turn(request, call)
    assistant, user = second["body"]["messages"][-2:]
    # A 200 on the second request means the thinking block came back with its text and
    # signature intact (the fake checks).
    assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use"], assistant
    assert second["status"] == 200
    use = assistant["content"][1]
    assert (use["id"], use["name"], use["input"]) == (call_part["functionCall"]["id"], SHELL_TOOL, SHELL_ARGS)
    (result,) = user["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == use["id"], result
    assert not result.get("is_error"), result
    assert MARKER in json.dumps(result["content"]), result
    assert_no_master_key(report)


# --------------------------------------------------------------------------- OpenAI translation


def assert_openai_turn(request: Json, main: Json) -> None:
    """A streamed CLI call as Chat Completions: model mapped, tools and system prompt kept."""
    h, body = request["headers"], request["body"]
    assert h.get("authorization") == f"Bearer {UPSTREAM_KEY}", h
    assert "x-api-key" not in h and "x-goog-api-key" not in h, h
    assert body["model"] == OPENAI_UPSTREAM_MODELS[1]
    assert body["stream"] is True
    assert body.get("stream_options", {}).get("include_usage") is True, body.get("stream_options")
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"] if t["type"] == "function"}
    assert tools == declarations(main)
    assert body["messages"][0] == {"role": "system", "content": system_text(main)}


def test_openai_plain_prompt(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-plain")
    router, main = plain_calls(report)
    first, second = model_requests(report, "/v1/chat/completions")
    schema = assert_translated_router(report, first, router, OPENAI_UPSTREAM_MODELS[0])
    response_format = first["body"]["response_format"]
    assert response_format["type"] == "json_schema", response_format
    assert response_format["json_schema"]["schema"] == schema, response_format
    assert first["body"]["messages"][0] == {"role": "system", "content": system_text(router)}
    assert first["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert_openai_turn(second, main[0])
    assert_no_master_key(report)


def test_openai_tool_round_trip(scenario: Callable[[str], Report]) -> None:
    report = scenario("openai-tool")
    main, call_part = tool_calls(report)
    # The gateway had no signature to give; the CLI fills in Google's documented skip value.
    assert call_part["thoughtSignature"] == SKIP_SIGNATURE, call_part
    _, first, second = model_requests(report, "/v1/chat/completions")
    for request, call in zip((first, second), main, strict=True):
        assert_openai_turn(request, call)
    assistant, tool = second["body"]["messages"][-2:]
    assert assistant["role"] == "assistant", assistant
    (call,) = assistant["tool_calls"]
    assert call["id"] == call_part["functionCall"]["id"], (call, call_part)
    assert call["type"] == "function" and call["function"]["name"] == SHELL_TOOL, call
    assert json.loads(call["function"]["arguments"]) == SHELL_ARGS
    assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"], tool
    assert MARKER in json.dumps(tool["content"]), tool
    assert SKIP_SIGNATURE not in second["raw_body"], "a Gemini signature reached the OpenAI upstream"
    assert_no_master_key(report)
