"""The gateway against a direct call to the upstream, in one run, printed as ratios.

    make bench                                   # or: .venv/bin/python bench/gateway.py
    .venv/bin/python bench/gateway.py --seconds 5 --only stream

The upstream is modelgate's fake upstream (one write per SSE event, as real
providers flush). The gateway runs with one worker on CPU 0; wrk and the fake
share CPU 1 (see bench/harness.py). Each scenario is measured straight to the
fake ("direct") and through the gateway at concurrency 1 and 64:

- ``passthrough``: Anthropic Messages client → Anthropic upstream, JSON answer;
- ``passthrough-stream``: the same, streamed (SSE bytes forwarded as they arrive);
- ``translated``: OpenAI Chat client → Anthropic upstream through the IR, JSON answer;
- ``translated-stream``: the same, streamed (Anthropic events parsed, re-encoded as chunks);
- ``passthrough-vkey``, ``passthrough-stream-vkey``: the passthrough rows with a virtual key
  that has a weekly budget and an RPM limit (never reached), the ledger on: what tenancy
  costs beside the master key's rows.

The direct baseline of the translated rows is the Anthropic call the gateway
makes for them, so the ratio is the whole cost of translating.

``--records both`` measures what the request log costs: the passthrough rows through two
gateways started side by side, one with ``records.enabled`` and one without, alternately in
one run, with the CPU per request of each and their ratio (the bar: at most 1.10).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import LOAD_CPU, SUT_CPU, Load, Result, ensure_wrk, free_port, run_wrk, start, stop, wait_port

MASTER = "mg-bench-master-key"
UPSTREAM_KEY = "sk-bench-upstream-key-0001"
MODEL = "claude-sonnet-4-6"
PROMPT = (
    "I am planning a trip to Europe next spring. What is the capital of France, roughly how many people "
    "live there, which river runs through it, and can you name one museum worth a visit?"
)
SYSTEM = "You are a concise assistant. Answer in one sentence. Prefer plain words; no lists, no markdown."


def anthropic_body(stream: bool) -> bytes:
    body = {
        "model": MODEL,
        "max_tokens": 1024,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0.2,
        "metadata": {"user_id": "bench-user"},
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def chat_body(stream: bool) -> bytes:
    body = {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def scenarios(virtual_key: str | None = None) -> dict[str, tuple[Load, Load]]:
    """name → (direct load, gateway load); the ``-vkey`` rows only with a virtual key."""
    direct_headers = {"content-type": "application/json", "x-api-key": UPSTREAM_KEY, "anthropic-version": "2023-06-01"}
    anthropic_headers = {"content-type": "application/json", "x-api-key": MASTER, "anthropic-version": "2023-06-01"}
    chat_headers = {"content-type": "application/json", "authorization": f"Bearer {MASTER}"}
    out = {}
    for stream in (False, True):
        suffix = "-stream" if stream else ""
        direct = Load("/v1/messages", anthropic_body(stream), direct_headers)
        out["passthrough" + suffix] = (direct, Load("/v1/messages", anthropic_body(stream), anthropic_headers))
        out["translated" + suffix] = (direct, Load("/v1/chat/completions", chat_body(stream), chat_headers))
    if virtual_key is not None:
        for stream in (False, True):
            suffix = "-stream" if stream else ""
            headers = {**anthropic_headers, "x-api-key": virtual_key}
            direct = Load("/v1/messages", anthropic_body(stream), direct_headers)
            out["passthrough" + suffix + "-vkey"] = (direct, Load("/v1/messages", anthropic_body(stream), headers))
    return out


def make_virtual_key(data_dir: Path) -> str | None:
    """A virtual key with a weekly budget and an RPM limit that the bench never reaches, made in
    the store of a gateway about to start in ``data_dir``; None for a tree without tenancy."""
    try:
        from modelgate.policy.keys import digest, hint, new_secret
        from modelgate.store import Budget, Database, TenantStore, default_url, upgrade_sync
    except ImportError:
        return None
    url = default_url(data_dir)
    upgrade_sync(url)
    secret = new_secret()

    async def create() -> None:
        db = Database(url)
        try:
            budgets = [Budget("7d", usd=1e9)]
            tenants = TenantStore(db)
            await tenants.create_key("bench", key_hash=digest(secret), hint=hint(secret), budgets=budgets, rpm=10**9)
        finally:
            await db.close()

    asyncio.run(create())
    return secret


def fmt(r: Result) -> str:
    return f"{r.rps:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f}"


def gateway_config(tmp: Path, name: str, fake_port: int, records: bool) -> Path:
    """A config for a gateway of its own data directory in ``tmp`` (the request log on or off)."""
    config = {
        "server": {"data_dir": str(tmp / name)},
        "providers": [
            {
                "name": "anth",
                "type": "anthropic",
                "base_url": f"http://127.0.0.1:{fake_port}",
                "api_keys": [UPSTREAM_KEY],
            }
        ],
        "models": [{"name": MODEL, "provider": "anth"}],
        "records": {"enabled": records},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_gateway(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "modelgate", "serve", "--config", str(config), "--port", str(port)]
    return start([*command, "--log-level", "warning"], SUT_CPU, log, env={"MODELGATE_MASTER_KEY": MASTER})


def compare_records(
    wrk: str, tmp: Path, fake_port: int, log: Path, conns: list[int], seconds: int, rounds: int
) -> None:
    """The passthrough rows through a gateway with the request log and one without, in turn,
    ``rounds`` times each (on, off, on, off…): the medians, since one run's CPU time per request
    varies by a fifth on a shared machine."""
    ports = {True: free_port(), False: free_port()}
    keys, gateways = {}, {}
    for records, port in ports.items():
        name = "records-on" if records else "records-off"
        keys[records] = make_virtual_key(tmp / name)
        gateways[records] = start_gateway(gateway_config(tmp, name, fake_port, records), port, log)
    try:
        for records, port in ports.items():
            wait_port(port, gateways[records])
        print(f"{seconds} s per run, medians of {rounds} rounds; the request log on and off, on CPU {SUT_CPU}")
        print(f"{'scenario':24} {'conc':>4} | {'rps on':>8} {'rps off':>8} | {'cpu ms/req on':>13} {'off':>7} | on/off")
        on_rows, off_rows = scenarios(keys[True]), scenarios(keys[False])
        for name in on_rows:
            if not name.startswith("passthrough"):
                continue
            for c in conns:
                runs: dict[bool, list[Result]] = {True: [], False: []}
                for _ in range(rounds):
                    for records, rows in ((True, on_rows), (False, off_rows)):
                        pid = gateways[records].pid
                        runs[records].append(run_wrk(wrk, ports[records], rows[name][1], c, seconds, watch_pid=pid))
                rps = {r: statistics.median(x.rps for x in runs[r]) for r in runs}
                cpu = {r: statistics.median(x.cpu_ms_per_req or 0 for x in runs[r]) for r in runs}
                errors = sum(x.errors for r in runs for x in runs[r])
                print(
                    f"{name:24} {c:>4} | {rps[True]:8.0f} {rps[False]:8.0f} | {cpu[True]:13.3f} "
                    f"{cpu[False]:7.3f} | {cpu[True] / (cpu[False] or 1):6.3f}"
                    + (f"  errors: {errors}" if errors else ""),
                    flush=True,
                )
    finally:
        for gateway in gateways.values():
            stop(gateway)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    parser.add_argument("--conns", default="1,64", help="comma-separated concurrency levels")
    parser.add_argument("--records", choices=("on", "off", "both"), default="on", help="the request log (see above)")
    parser.add_argument("--rounds", type=int, default=3, help="with --records both: runs of each, on and off in turn")
    args = parser.parse_args()
    wrk = ensure_wrk()
    conns = [int(c) for c in args.conns.split(",")]
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp:
        log = Path(tmp) / "bench.log"
        fake_port, gw_port = free_port(), free_port()
        fake = start(
            [python, "-m", "modelgate.testing.fake_upstream", "--port", str(fake_port), "--require-key", UPSTREAM_KEY],
            LOAD_CPU,
            log,
        )
        if args.records == "both":
            try:
                wait_port(fake_port, fake)
                compare_records(wrk, Path(tmp), fake_port, log, conns, args.seconds, args.rounds)
            finally:
                stop(fake)
            return
        path = gateway_config(Path(tmp), "data", fake_port, args.records == "on")
        virtual_key = make_virtual_key(Path(tmp) / "data")
        gateway = start_gateway(path, gw_port, log)
        try:
            wait_port(fake_port, fake)
            wait_port(gw_port, gateway)
            print(
                f"{args.seconds} s per run; gateway: 1 worker on CPU {SUT_CPU}; wrk + fake upstream on CPU {LOAD_CPU}"
            )
            print(
                f"{'scenario':20} {'conc':>4} | {'direct rps':>10} {'p50':>7} {'p99':>7} | {'gateway rps':>11} "
                f"{'p50':>7} {'p99':>7} | {'rps ratio':>9} {'+p50 ms':>8} {'cpu ms/req':>10}"
            )
            for name, (direct, through) in scenarios(virtual_key).items():
                if args.only not in name:
                    continue
                for c in conns:
                    d = run_wrk(wrk, fake_port, direct, c, args.seconds)
                    g = run_wrk(wrk, gw_port, through, c, args.seconds, watch_pid=gateway.pid)
                    errors = f"  errors: direct {d.errors}, gateway {g.errors}" if d.errors or g.errors else ""
                    print(
                        f"{name:20} {c:>4} | {fmt(d):>26} | {fmt(g):>27} | {g.rps / d.rps:9.2f} "
                        f"{g.p50_ms - d.p50_ms:8.2f} {g.cpu_ms_per_req or 0:10.3f}{errors}",
                        flush=True,
                    )
        finally:
            stop(gateway)
            stop(fake)


if __name__ == "__main__":
    main()
