"""Measure server x upstream-client stacks on a minimal POST /v1/messages passthrough.

How to run (from the repo root; ~65 s per stack and repetition, ~13 min for all once):

    .venv/bin/pip install psutil                # optional clients: pyreqwest niquests
    .venv/bin/python bench/stacks/run.py                      # every stack, once
    .venv/bin/python bench/stacks/run.py --only aiohttp       # stacks whose name contains "aiohttp"
    .venv/bin/python bench/stacks/run.py --reps 3 --json /tmp/stacks.json   # median of 3 runs
    .venv/bin/python bench/stacks/run.py --check-only         # correctness checks only, no load
    .venv/bin/python bench/stacks/run.py --modes json-c64,sse-c64 --reps 5  # a subset of the loads

Needs Linux, taskset, 2+ cores, psutil, and wrk (installed with apt-get when missing and
run as root). Stacks whose client library is not installed are skipped with a message.

Layout (2 cores): the proxy runs with ONE worker pinned to CPU 0; the mock upstream
(mock_upstream.py), wrk (1 thread) and this script share CPU 1. Per stack it first
checks that the proxy is correct (same bytes as the upstream, status 200, x-api-key
set), that it streams incrementally (a paced upstream, 20 ms between SSE events: the
client must see the events arrive apart) and whether it drops the upstream connection
when its client leaves mid-stream; then it runs wrk (2 s warm-up, 10 s measured):

  json   c=1 and c=64   plain request, JSON answer (~550 B)
  sse    c=1 and c=64   "stream": true, 16 SSE events, each its own write upstream
  paced  c=256          SSE with 1 ms between events: every event is its own read
                        and write in the proxy, the per-event cost of real streams
                        (c=256 so that the proxy, not the pacing, is the limit)

Reported: requests/s (median run, [min-max] over --reps), p50/p99 latency (wrk), CPU
seconds of the proxy process (+ children, user+sys, psutil) per 1000 requests, and per
run the mock's count of new upstream connections (pooling check: ~0 expected) and how
busy the proxy core was. "mock" rows are wrk straight to the mock: the rig's ceiling
(their CPU column is the mock's).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import mock_upstream  # noqa: E402
from harness import ensure_wrk, stop, wait_port  # noqa: E402

PY = sys.executable
BIN = Path(PY).parent
MOCK_PORT, PROXY_PORT = 18001, 18010
PROXY_CPU, LOAD_CPU = "0", "1"

UVICORN = [
    PY,
    "-m",
    "uvicorn",
    "--factory",
    "--http",
    "httptools",
    "--loop",
    "uvloop",
    "--no-access-log",
    "--log-level",
    "warning",
    "--backlog",
    "2048",
    "--host",
    "127.0.0.1",
    "--port",
    str(PROXY_PORT),
]
GRANIAN = [
    str(BIN / "granian"),
    "--interface",
    "asgi",
    "--factory",
    "--workers",
    "1",
    "--runtime-threads",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "1",
    "--no-access-log",
    "--log-level",
    "warning",
    "--host",
    "127.0.0.1",
    "--port",
    str(PROXY_PORT),
]
AIOWEB = [PY, str(HERE / "proxies.py"), "aiohttp-web", "--port", str(PROXY_PORT)]

# name -> (command, client). The first four are the required stacks.
STACKS = {
    "uvicorn+starlette+httpx": ([*UVICORN, "proxies:starlette_app"], "httpx"),
    "uvicorn+starlette+aiohttp": ([*UVICORN, "proxies:starlette_app"], "aiohttp"),
    "granian+starlette+aiohttp": ([*GRANIAN, "proxies:starlette_app"], "aiohttp"),
    "aiohttp.web+aiohttp": (AIOWEB, "aiohttp"),
    "uvicorn+starlette-lean+aiohttp": ([*UVICORN, "proxies:starlette_lean_app"], "aiohttp"),
    "granian+starlette-lean+aiohttp": ([*GRANIAN, "proxies:starlette_lean_app"], "aiohttp"),
    "uvicorn+rawasgi+aiohttp": ([*UVICORN, "proxies:raw_asgi_app"], "aiohttp"),
    "granian+rawasgi+aiohttp": ([*GRANIAN, "proxies:raw_asgi_app"], "aiohttp"),
    "uvicorn+starlette+httpx2": ([*UVICORN, "proxies:starlette_app"], "httpx2"),
    "uvicorn+starlette+pyreqwest": ([*UVICORN, "proxies:starlette_app"], "pyreqwest"),
    "uvicorn+starlette+niquests": ([*UVICORN, "proxies:starlette_app"], "niquests"),
}

MODES = [("json", 1), ("json", 64), ("sse", 1), ("sse", 64), ("paced", 256)]


def request_body(kind: str) -> bytes:
    """A ~1 KB Anthropic Messages request; the kind is marked for the mock."""
    user = {"json": "user-1234", "sse": "user-1234", "paced": "pace-1ms", "flush": "pace-20ms"}[kind]
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are a concise assistant. Answer in one sentence. Prefer plain words; no lists, no markdown.",
        "messages": [
            {"role": "user", "content": "Hi! I am planning a trip to Europe next spring and I am collecting facts."},
            {"role": "assistant", "content": "Happy to help with your trip. What would you like to know first?"},
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "What is the capital of France, and roughly how many people live there? "
                        "Please also say which river runs through it and name one museum.",
                    }
                ],
            },
        ],
        "temperature": 0.2,
        "top_p": 0.95,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": user},
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city, in Celsius.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            }
        ],
    }
    if kind != "json":
        body["stream"] = True
    return orjson.dumps(body)


LUA = """wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.body = [==[%s]==]
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["x-api-key"] = "sk-client-test"
done = function(s, lat, req)
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"p50":%%d,"p99":%%d,"max":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\\n',
    s.requests, s.duration, lat:percentile(50), lat:percentile(99), lat.max,
    s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout))
end
"""


def port_free(port: int) -> None:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"port {port} is already in use: stop whatever listens there (ss -ltnp | grep {port})")


def start(cmd: list[str], cpu: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    f = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(["taskset", "-c", cpu, *cmd], cwd=HERE, env=env, stdout=f, stderr=f, start_new_session=True)


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


def raw_post(port: int, body: bytes) -> tuple[int, bytes, list[tuple[float, int]]]:
    """POST over a plain socket; returns status, de-chunked body and (time, bytes) per recv."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(5)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"x-api-key: sk-client-test\r\nanthropic-version: 2023-06-01\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    t0 = time.monotonic()
    s.sendall(head + body)
    data, arrivals = b"", []
    while chunk := s.recv(65536):
        arrivals.append((time.monotonic() - t0, len(chunk)))
        data += chunk
    s.close()
    hdr, _, rest = data.partition(b"\r\n\r\n")
    status = int(hdr.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in hdr.lower():
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2 :]
        rest = out
    return status, rest, arrivals


def check(port: int) -> str:
    """Correctness, incremental streaming, and disconnect handling; returns a note for the table."""
    st, body, _ = raw_post(port, request_body("json"))
    assert st == 200 and body == mock_upstream.JSON_BODY, (st, body[:200])
    st, body, _ = raw_post(port, request_body("sse"))
    assert st == 200 and body == mock_upstream.SSE_BODY, (st, body[:200])
    st, body, arrivals = raw_post(port, request_body("flush"))
    assert st == 200 and body == mock_upstream.SSE_BODY, (st, body[:200])
    # events are 20 ms apart upstream: count bursts of data separated by > 10 ms
    bursts, last = 0, -1.0
    for t, _ in arrivals:
        if t - last > 0.010:
            bursts += 1
        last = t
    # client leaves after the first event: does the proxy drop the upstream connection?
    aborted = mock_stats()["paced_aborted"]
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        body = request_body("flush")
        s.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: k\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
        )
        s.recv(65536)
    time.sleep(0.6)  # the whole paced stream takes 0.3 s
    dropped = mock_stats()["paced_aborted"] > aborted
    return (
        f"{bursts}/{len(mock_upstream.EVENTS)} events arrived separately, first after "
        f"{arrivals[0][0] * 1000:.0f} ms; client gone -> upstream {'dropped' if dropped else 'READ TO THE END'}"
    )


def core_times(cpu: str) -> list[int]:
    """Jiffies of one core from /proc/stat: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                return [int(x) for x in line.split()[1:9]]
    return [0] * 8


def mock_stats() -> dict:
    with socket.create_connection(("127.0.0.1", MOCK_PORT), 5) as s:
        s.sendall(b"GET /_stats HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"}"):
            data += s.recv(4096)
    return json.loads(data.partition(b"\r\n\r\n")[2])


def wrk_run(wrk: str, port: int, script: Path, conns: int, seconds: float, watch: list[int]) -> dict:
    cmd = [
        "taskset",
        "-c",
        LOAD_CPU,
        wrk,
        "-t1",
        f"-c{conns}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/v1/messages",
    ]
    st0 = mock_stats()
    cpu0 = [cpu_seconds(p) for p in watch]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core0 = core_times(PROXY_CPU)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    core1 = core_times(PROXY_CPU)
    cpu1 = [cpu_seconds(p) for p in watch]
    st1 = mock_stats()
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[8:])
    dur = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / dur
    r["errors"] = sum(r[k] for k in ("connect", "read", "write", "status", "timeout"))
    r["cpu"] = [b - a for a, b in zip(cpu0, cpu1, strict=True)]  # CPU seconds per watched process
    r["wrk_cpu"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    r["dur"] = dur
    d = [b - a for a, b in zip(core0, core1, strict=True)]
    # share of the proxy core spent idle / in softirq / stolen by the hypervisor during the run
    r["core_idle"], r["core_softirq"], r["core_steal"] = (x / max(sum(d), 1) for x in (d[3] + d[4], d[6], d[7]))
    r["upstream_new_conns"] = st1["connections"] - st0["connections"] - 1  # -1: the stats connection
    return r


def run_stack(name: str, wrk: str, scripts: dict, mock_pid: int, args, logdir: Path) -> dict:
    if name == "mock":
        port, proc, note = MOCK_PORT, None, "direct to the mock (rig ceiling)"
        watch = [mock_pid]
    else:
        cmd, client = STACKS[name]
        env = dict(
            os.environ,
            MG_CLIENT=client,
            MG_UPSTREAM=f"http://127.0.0.1:{MOCK_PORT}",
            PYTHONPATH=str(HERE),
            PYTHONUNBUFFERED="1",
        )
        proc = start(cmd, PROXY_CPU, env, logdir / f"{name}.log")
        wait_port(PROXY_PORT, proc)
        time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode}")
        port, watch = PROXY_PORT, [proc.pid, mock_pid]
    try:
        if proc is not None:
            note = check(port)
        res = {"note": note, "modes": {}}
        if args.check_only:
            print(f"  {name:30} {note}", flush=True)
            return res
        for kind, conns in args.modes:
            wrk_run(wrk, port, scripts[kind], conns, args.warmup, watch)
            r = wrk_run(wrk, port, scripts[kind], conns, args.duration, watch)
            r["cpu_per_1k"] = r["cpu"][0] / r["requests"] * 1000 if r["requests"] else float("nan")
            r["mock_util"] = r["cpu"][-1] / r["dur"]
            r["proxy_util"] = r["cpu"][0] / r["dur"]
            res["modes"][f"{kind}-c{conns}"] = r
            print(
                f"  {name:30} {kind:5} c={conns:<3} {r['rps']:8.0f} rps  p50 {r['p50'] / 1000:6.2f} ms"
                f"  p99 {r['p99'] / 1000:6.2f} ms  cpu/1k {r['cpu_per_1k']:.3f} s  util {r['proxy_util']:.2f}"
                f"  mock {r['mock_util']:.2f} wrk {r['wrk_cpu'] / r['dur']:.2f}  err {r['errors']}"
                f"  new-upstream-conns {r['upstream_new_conns']}  core{PROXY_CPU}: idle {r['core_idle']:.2f}"
                f" softirq {r['core_softirq']:.2f} steal {r['core_steal']:.2f}",
                flush=True,
            )
        return res
    finally:
        if proc is not None:
            stop(proc)


def median_run(runs: list[dict]) -> dict:
    """Per mode, the repetition with the median requests/s."""
    out = {"note": runs[0]["note"], "modes": {}}
    for mode in runs[0]["modes"]:
        rs = sorted((r["modes"][mode] for r in runs), key=lambda m: m["rps"])
        out["modes"][mode] = dict(rs[len(rs) // 2], rps_all=[round(m["rps"]) for m in rs])
    return out


def table(results: dict) -> str:
    """Markdown: one table for plain JSON, one for SSE; rps is the median run, [min-max] over runs."""

    def cells(m: dict, full: bool) -> str:
        spread = f" [{min(m['rps_all']):,}-{max(m['rps_all']):,}]" if len(m.get("rps_all", [])) > 1 else ""
        lat = f" | {m['p50'] / 1000:.2f} | {m['p99'] / 1000:.2f}" if full else ""
        return f"{m['rps']:,.0f}{spread}{lat} | {m['cpu_per_1k']:.2f}"

    out = []
    groups = [
        ("JSON (plain request)", [("json-c1", True), ("json-c64", True)]),
        ("SSE (stream: true)", [("sse-c1", True), ("sse-c64", True), ("paced-c256", False)]),
    ]
    measured = set().union(*(res["modes"] for res in results.values()))
    for title, cols in groups:
        cols = [(m, f) for m, f in cols if m in measured]
        if not cols:
            continue
        head = ["stack"]
        for mode, full in cols:
            head += [f"{mode} rps"] + (["p50 ms", "p99 ms"] if full else []) + ["CPU s/1k req"]
        out += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for name, res in results.items():
            if all(mode in res["modes"] for mode, _ in cols):
                out.append(f"| {name} | " + " | ".join(cells(res["modes"][m], f) for m, f in cols) + " |")
        out.append("")
    out += [f"- {name}: {res['note']}" for name, res in results.items()]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="run stacks whose name contains this (repeatable)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each measured run")
    ap.add_argument("--reps", type=int, default=1, help="repetitions; the median (by rps) is reported")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--no-mock-baseline", action="store_true")
    ap.add_argument("--check-only", action="store_true", help="only the correctness/streaming/disconnect checks")
    ap.add_argument(
        "--modes", default=",".join(f"{k}-c{c}" for k, c in MODES), help="comma-separated subset of: %(default)s"
    )
    args = ap.parse_args()
    args.modes = [(m.split("-c")[0], int(m.split("-c")[1])) for m in args.modes.split(",")]

    os.sched_setaffinity(0, {int(LOAD_CPU)})  # keep this orchestrator off the proxy's core
    wrk = ensure_wrk()
    if importlib.util.find_spec("psutil") is None:
        sys.exit("psutil is needed for the CPU figures: .venv/bin/pip install psutil")
    names = [n for n in STACKS if not args.only or any(o in n for o in args.only)]
    runnable = []
    for n in names:
        client = STACKS[n][1]
        if importlib.util.find_spec(client) is None:
            print(f"skip {n}: client '{client}' not installed (pip install {client})")
        else:
            runnable.append(n)
    if not args.no_mock_baseline:
        runnable.insert(0, "mock")

    tmp = Path(tempfile.mkdtemp(prefix="mg-stacks-"))
    scripts = {}
    for kind in ("json", "sse", "paced"):
        scripts[kind] = tmp / f"{kind}.lua"
        scripts[kind].write_text(LUA % request_body(kind).decode())
    print(f"body {len(request_body('json'))} B; logs in {tmp}; cores: proxy={PROXY_CPU}, mock+wrk={LOAD_CPU}")

    port_free(MOCK_PORT)
    port_free(PROXY_PORT)
    mock = start(
        [PY, str(HERE / "mock_upstream.py"), "--port", str(MOCK_PORT)], LOAD_CPU, dict(os.environ), tmp / "mock.log"
    )
    try:
        wait_port(MOCK_PORT, mock)
        time.sleep(0.5)
        if mock.poll() is not None:
            sys.exit(f"mock upstream died, see {tmp}/mock.log")
        all_runs: dict[str, list[dict]] = {n: [] for n in runnable}
        for rep in range(args.reps):
            for n in runnable:
                print(f"[rep {rep + 1}/{args.reps}] {n}", flush=True)
                try:
                    all_runs[n].append(run_stack(n, wrk, scripts, mock.pid, args, tmp))
                except Exception as e:  # keep going with the other stacks
                    print(f"  FAILED: {e!r} (see {tmp}/{n}.log)", flush=True)
        results = {n: median_run(r) for n, r in all_runs.items() if r}
    finally:
        stop(mock)
    if args.check_only:
        return
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "results": results}, indent=1))
        print(f"\nresults written to {args.json}")


if __name__ == "__main__":
    main()
