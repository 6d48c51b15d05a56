"""What every end-to-end test with a real CLI shares, on both sides of the namespace.

Each scenario runs in its own loopback-only network namespace: pytest starts
``unshare -n -- python -m tests.e2e.<runner> SCENARIO …`` (:func:`scenario_runner`,
through the fixtures of :func:`cli_fixtures`); the runner (``netns_run`` for Claude
Code, ``netns_codex`` for Codex, ``netns_gemini`` for Gemini CLI) is
:func:`run_scenario` with the CLI's own configuration and command line: it refuses to
run anywhere but in such a namespace (:func:`check_isolated`), brings ``lo`` up, starts
the fake upstream, the gateway and optionally a recording proxy, runs the CLI once with
a scrubbed environment and an empty ``HOME`` (:func:`cli_env`, :func:`run_cli`) and
prints one JSON report on stdout (:func:`emit`). The pytest side parses it and asserts;
:func:`explain` renders a report for a failing assertion.

A report holds at least::

    {"scenario", "provider", "prompt", "gateway_url", "master_key", "upstream_key",
     "cli": {"argv", "exit_code", "timed_out", "elapsed", "stdout", "stderr", …},
     "requests": [the fake upstream's recorded requests, oldest first],
     "gateway_log": str}

and, when a recording proxy sat between the CLI and the gateway, ``client_requests``
(see ``recording_proxy``); when a gateway ran, ``request_log``: its request log after the
run, as the admin API shows it to the master key (see :func:`read_request_log`)::

    {"requests": [GET /admin/requests's records, oldest first],
     "sessions": [GET /admin/sessions's summaries]}
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx

from modelgate.testing.gateway_runner import run_gateway
from modelgate.testing.runner import FakeUpstream, run_fake_upstream
from tests.e2e.npm_tools import SetupError
from tests.e2e.recording_proxy import recording_proxy

REPO = Path(__file__).resolve().parents[2]

MASTER_KEY = "mg-e2e-master-key-5b1f0c"
UPSTREAM_KEY = "sk-e2e-upstream-key-9d27a4"
#: What the tool scenarios make the CLI run in its shell, and find again in the result.
MARKER = "modelgate-e2e-marker"
#: The fixed answer of the plain scenarios.
PLAIN_REPLY = "modelgate-e2e-plain-reply: the gateway works"

Report = dict[str, Any]

#: How often the scenarios' gateways write the ledger and the request log (1 s by default):
#: :func:`read_request_log` waits for the last batch.
FLUSH_SECONDS = 0.1

#: Our own environment that must not reach a CLI (keys, endpoints, proxies, log levels).
_DROP_PREFIXES = (
    "ANTHROPIC_", "CLAUDE", "OPENAI_", "CODEX_", "MODELGATE_", "AWS_", "AZURE_", "GOOGLE_", "GEMINI_", "VERTEX_",
    "NPM_", "npm_", "RUST_",
)  # fmt: skip
_DROP_NAMES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"})


# --------------------------------------------------------------------------- inside the namespace


def check_isolated() -> None:
    """Refuse to run a real CLI unless loopback is the only network interface."""
    interfaces = sorted(name for _, name in socket.if_nameindex())  # this namespace's (unlike /sys/class/net)
    if interfaces != ["lo"]:
        sys.exit(
            f"{Path(sys.argv[0]).name}: not in an isolated network namespace (interfaces: {interfaces}); "
            "use `unshare -n --`"
        )


def bring_loopback_up() -> None:
    """Bring this namespace's ``lo`` up."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def runner_parser(doc: str | None, scenarios: Iterable[str], cli_option: str) -> argparse.ArgumentParser:
    """The command line every runner takes: ``SCENARIO --<cli> PATH [--timeout S] [--env NAME=VALUE …]``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("scenario", choices=sorted(scenarios))
    parser.add_argument(f"--{cli_option}", required=True, help=f"path of the {cli_option} executable")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds the CLI may take")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="set (with no value: unset) a variable"
    )
    return parser


def cli_env(home: Path, overrides: Iterable[str] = (), **variables: str) -> dict[str, str]:
    """Our environment without keys, endpoints and proxies, an empty ``home``, then ``variables``
    and the ``NAME=VALUE`` ``overrides`` (``NAME=`` removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        TMPDIR=str(home / "tmp"),
        NO_PROXY="127.0.0.1,localhost",
        TERM="dumb",
        CI="1",
    )
    env.update(variables)
    for item in overrides:
        name, _, value = item.partition("=")
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def make_dirs(*dirs: Path) -> None:
    """Create ``dirs`` and their parents."""
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)


def run_cli(argv: list[str], workdir: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run a CLI once with no stdin; on timeout kill it and every process it started.

    ``started`` is the ``time.monotonic()`` of the start, to line it up with other clocks."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout kills the tools it started too
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return {
        "argv": argv,
        "exit_code": proc.returncode,
        "timed_out": timed_out,
        "started": started,
        "elapsed": round(time.monotonic() - started, 2),
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
    }


def make_endpoint(report: Report, name: str, models: list[str]) -> dict[str, Any]:
    """A per-application endpoint made in the admin API of the report's gateway (directly, not
    through a recording proxy), as the API answers it."""
    admin = {"authorization": f"Bearer {MASTER_KEY}"}
    made = httpx.post(f"{report['gateway_url']}/admin/endpoints", headers=admin, json={"name": name, "models": models})
    made.raise_for_status()
    endpoint: dict[str, Any] = made.json()
    return endpoint


def read_request_log(base_url: str, master_key: str = MASTER_KEY, *, timeout: float = 10.0) -> Report:
    """The gateway's request log and agent sessions (``GET /admin/requests`` and ``/admin/sessions``
    with the master key), once the batched writer has written the run: the records are read
    again until their number holds for a few flush intervals. Records come oldest first."""
    admin = {"authorization": f"Bearer {master_key}"}
    with httpx.Client(base_url=base_url, headers=admin, timeout=10) as http:
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while True:
            listed = http.get("/admin/requests", params={"limit": 200})
            listed.raise_for_status()
            records = listed.json()["data"]
            now = time.monotonic()
            if len(records) != seen:
                seen, since = len(records), now
            elif records and now - since >= 4 * FLUSH_SECONDS:
                break
            if now > deadline:
                break
            time.sleep(FLUSH_SECONDS)
        sessions = http.get("/admin/sessions", params={"limit": 200})
        sessions.raise_for_status()
    return {"requests": records[::-1], "sessions": sessions.json()["data"]}


def emit(report: Report) -> None:
    """Print the report as the last line of stdout, where the pytest side looks for it."""
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


@dataclass
class Stage:
    """A scenario ready for its CLI: the runner's arguments, the report so far, the fake, an
    empty ``home`` and ``workdir`` under ``tmp``, and the base URL and key the CLI must use
    (the proxy's or the gateway's and the master key, or the fake's and the provider key)."""

    args: argparse.Namespace
    report: Report
    fake: FakeUpstream
    tmp: Path
    home: Path
    workdir: Path
    base_url: str
    api_key: str


def run_scenario(
    doc: str | None,
    scenarios: Mapping[str, tuple[str, ...]],
    cli_option: str,
    argv: list[str] | None,
    *,
    gateway_config: Callable[[str, FakeUpstream], dict[str, Any]],
    launch: Callable[[Stage], dict[str, Any]],
    proxied: bool,
    tmp_prefix: str = "modelgate-e2e-",
    extra: Callable[[str], Report] | None = None,
) -> int:
    """A runner's ``main``: run one scenario in this namespace and print its report.

    ``scenarios`` maps a name to ``(provider, …, prompt)``; ``provider`` ``direct`` means no
    gateway, any other is given to ``gateway_config``. With ``proxied``, a recording proxy
    stands in front of the gateway (or the fake), its records become ``client_requests``
    and the CLI's ``started`` becomes ``started_at`` on its clock. ``launch`` runs the CLI
    (see :func:`run_cli`), may add to the report and returns the CLI's result; ``extra(name)``
    adds fields to the report before anything starts."""
    args = runner_parser(doc, scenarios, cli_option).parse_args(argv)
    check_isolated()
    bring_loopback_up()

    spec = scenarios[args.scenario]
    report: Report = {
        "scenario": args.scenario,
        "provider": spec[0],
        "prompt": spec[-1],
        "master_key": MASTER_KEY,
        "upstream_key": UPSTREAM_KEY,
        "gateway_url": None,
        "gateway_log": "",
        **(extra(args.scenario) if extra else {}),
    }
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=tmp_prefix)))
        fake = stack.enter_context(run_fake_upstream(require_key=UPSTREAM_KEY))
        gateway = None
        if spec[0] == "direct":
            target, base_url, api_key = (fake.host, fake.port), fake.base_url, UPSTREAM_KEY
        else:
            config = gateway_config(spec[0], fake)
            config.setdefault("tenancy", {}).setdefault("ledger_flush_seconds", FLUSH_SECONDS)
            gateway = stack.enter_context(run_gateway(config, master_key=MASTER_KEY))
            target, base_url, api_key = (gateway.host, gateway.port), gateway.base_url, MASTER_KEY
            report["gateway_url"] = gateway.base_url
        proxy = stack.enter_context(recording_proxy(*target)) if proxied else None
        stage = Stage(args, report, fake, tmp, tmp / "home", tmp / "project", base_url, api_key)
        if proxy is not None:
            stage.base_url = proxy.base_url
        make_dirs(stage.home / "tmp", stage.workdir)
        cli = launch(stage)
        if proxy is not None:
            cli["started_at"] = round(cli.pop("started") - proxy.started, 4)
            report["client_requests"] = proxy.records()
        report["cli"] = cli
        report["requests"] = fake.requests()
        if gateway is not None:
            report["request_log"] = read_request_log(gateway.base_url)
            report["gateway_log"] = gateway.output()
    emit(report)
    return 0


# --------------------------------------------------------------------------- pytest side


def fail(message: str) -> NoReturn:
    """Fail the current test with ``message`` and no traceback."""
    import pytest  # only the pytest side gets here

    pytest.fail(message, pytrace=False)


def check_namespace_tools() -> None:
    """Fail (never skip) with what to install when a loopback-only namespace cannot be made."""
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        fail(
            f"the end-to-end tests need {' and '.join(missing)} (packages util-linux and iproute2) "
            "to run real CLIs in a loopback-only network namespace"
        )
    probe = subprocess.run(["unshare", "-n", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        fail(
            "cannot create a network namespace (`unshare -n` failed: "
            f"{probe.stderr.strip()}); run the tests as root or with CAP_SYS_ADMIN"
        )


def cli_fixtures(
    binary: str, ensure: Callable[[], Path], runner: str, *, cli_timeout: float, scenario_timeout: float
) -> tuple[Any, Any]:
    """A test module's two session fixtures: ``binary`` (``<cli>_binary``: the pinned CLI,
    installed on first use; a missing tool or a failed install fails the tests) and
    ``scenario`` (run a scenario of the ``runner`` module once per session, return its report)."""
    import pytest  # only the pytest side gets here

    option = binary.removesuffix("_binary")

    @pytest.fixture(scope="session", name=binary)
    def binary_fixture() -> Path:
        check_namespace_tools()
        try:
            return ensure()
        except SetupError as exc:
            fail(str(exc))

    @pytest.fixture(scope="session", name="scenario")
    def scenario_fixture(request: pytest.FixtureRequest) -> Callable[[str], Report]:
        args = [f"--{option}", str(request.getfixturevalue(binary)), "--timeout", str(cli_timeout)]
        return scenario_runner(runner, args, timeout=scenario_timeout)

    return binary_fixture, scenario_fixture


def scenario_runner(module: str, args: list[str], *, timeout: float) -> Callable[[str], Report]:
    """``run(name)``: the report of ``python -m MODULE name *args`` in a fresh namespace, run once per name."""
    done: dict[str, Report] = {}

    def run(name: str) -> Report:
        if name not in done:
            cmd = ["unshare", "-n", "--", sys.executable, "-m", module, name, *args]
            try:
                proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                fail(f"scenario {name} did not finish in {timeout} s: {exc.stderr!r}")
            if proc.returncode != 0:
                fail(f"scenario {name} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
            lines = proc.stdout.strip().splitlines()
            if not lines:
                fail(f"scenario {name} printed no report:\n{proc.stderr[-5000:]}")
            done[name] = json.loads(lines[-1])
        return done[name]

    return run


def assert_cli_exited(report: Report) -> dict[str, Any]:
    """The report's ``cli``, after checking the CLI finished in time and exited 0."""
    cli = report["cli"]
    assert not cli["timed_out"], explain(report)
    assert cli["exit_code"] == 0, explain(report)
    return cli


def assert_gateway_log_clean(report: Report) -> None:
    """The gateway logged no exception."""
    for broken in ("Traceback", "Exception in ASGI application"):
        assert broken not in report["gateway_log"], explain(report)


def explain(report: Report) -> str:
    """What to show when an assertion fails: the CLI's output, the requests on both sides, the gateway's log."""
    cli = report["cli"]
    lines = [
        f"scenario {report['scenario']}: exit {cli['exit_code']}, timed out {cli['timed_out']}, {cli['elapsed']} s",
        f"stdout: {cli['stdout'][-3000:]}",
        f"stderr: {cli['stderr'][-3000:]}",
    ]
    if "client_requests" in report:
        lines.append("client requests (CLI → gateway; seconds since the proxy started):")
        for r in report["client_requests"]:
            lines.append(
                f"  {r['method']} {r['target']} → {r['status']} "
                f"sent {r['sent_at']} answered {r['response_at']} ended {r['ended_at']} (connection {r['conn']})"
            )
    lines.append("upstream requests:")
    for r in report["requests"]:
        body = r["body"] if isinstance(r["body"], dict) else {}
        lines.append(f"  {r['method']} {r['path']}?{r['query']} → {r['status']} model={body.get('model')}")
    lines.append(f"gateway log: {report['gateway_log'][-3000:]}")
    return "\n".join(lines)


def model_requests(report: Report, path: str) -> list[dict[str, Any]]:
    """The upstream requests for ``path``, after checking that no other path was asked for."""
    others = [(r["method"], r["path"]) for r in report["requests"] if r["path"] != path]
    assert not others, f"unexpected upstream requests {others}\n{explain(report)}"
    found = [r for r in report["requests"] if r["path"] == path]
    assert all(r["method"] == "POST" and r["status"] == 200 for r in found), explain(report)
    return found


def assert_no_master_key(report: Report) -> None:
    """No upstream request carried the master key, in a header or in a body."""
    for r in report["requests"]:
        assert MASTER_KEY not in json.dumps(r["headers"]), f"master key sent upstream in {r['headers']}"
        assert MASTER_KEY not in r["raw_body"], "master key sent upstream in a body"


def logged_requests(report: Report, user_agent: str, *, endpoint_id: str | None = None) -> list[dict[str, Any]]:
    """The run's records in the gateway's request log, after checking each was answered 200 and
    carries the CLI's ``user_agent`` and the endpoint it came through (``endpoint_id``)."""
    records: list[dict[str, Any]] = report["request_log"]["requests"]
    assert records, explain(report)
    got = [(r["status"], r["user_agent"], r["endpoint_id"], r["key_id"]) for r in records]
    assert got == [(200, user_agent, endpoint_id, None)] * len(records), got  # the master key has no key id
    return records


def logged_session(
    report: Report, session_id: str, user_agent: str, *, endpoint_id: str | None = None
) -> dict[str, Any]:
    """The run's one agent session in the request log: every record carries the CLI's own
    ``session_id`` (non-empty) and ``user_agent``, and the session's summary groups them all."""
    assert session_id, explain(report)
    records = logged_requests(report, user_agent, endpoint_id=endpoint_id)
    assert [r["session_id"] for r in records] == [session_id] * len(records), explain(report)
    sessions: list[dict[str, Any]] = report["request_log"]["sessions"]
    (session,) = sessions
    assert (session["session_id"], session["key_id"], session["errors"]) == (session_id, None, 0), session
    assert session["requests"] == len(records), session
    assert session["tool_calls"] == sum(r["tool_calls"] for r in records), session
    return session
