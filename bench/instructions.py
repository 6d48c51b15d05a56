"""CPU instructions per request through the gateway, counted by callgrind: a figure that does
not move with the machine's load, for comparing two versions of the code in one run.

    .venv/bin/python bench/instructions.py                       # this tree
    .venv/bin/python bench/instructions.py --against a7e22d6     # and a baseline commit, beside it
    .venv/bin/python bench/instructions.py --only passthrough    # the ``-vkey`` rows: a virtual key's cost
    .venv/bin/python bench/instructions.py --routing             # and ``-routing`` rows beside each
    .venv/bin/python bench/instructions.py --records             # and ``-norecords`` rows (request log off)

The gateway (one worker) runs under ``valgrind --tool=callgrind`` with instrumentation off
while it starts and warms up; then N sequential requests of each scenario of
``bench/gateway.py`` are counted, and the total is divided by N. ``--against REV`` checks REV
out into a temporary git worktree and runs the same scenarios with that tree's ``src`` first
on ``PYTHONPATH`` (same interpreter, same dependencies, same fake upstream). Needs valgrind
(Debian package ``valgrind``). The counts include the interpreter's own work, so only ratios
between the two trees mean anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as g
from harness import LOAD_CPU, SUT_CPU, free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
#: Rows of this bench only: a scenario of ``bench/gateway.py`` with a provider setting changed
#: (left out for a tree that does not know the setting: its default is that row).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    # forced internal streaming off: the non-streamed passthrough as it was before it
    "passthrough-unforced": ("passthrough", {"force_stream": False}),
}


#: ``--routing``: the model served by two deployments of equal priority (drawn per request),
#: each provider with a pool of three keys, and a fallback model — every routing feature on,
#: on a happy path that never needs them.
ROUTING_PROVIDERS = ("anth", "anth-b")


def routing_config(fake_port: int, settings: dict[str, object]) -> dict[str, object]:
    base = f"http://127.0.0.1:{fake_port}"
    keys = [g.UPSTREAM_KEY] * 3
    return {
        "providers": [
            {"name": n, "type": "anthropic", "base_url": base, "api_keys": keys, **settings} for n in ROUTING_PROVIDERS
        ]
        + [{"name": "local", "type": "openai-compatible", "base_url": f"{base}/v1"}],
        "models": [
            {
                "name": g.MODEL,
                "deployments": [{"provider": n, "upstream_model": g.MODEL} for n in ROUTING_PROVIDERS],
                "fallbacks": ["local-model"],
            },
            {"name": "local-model", "provider": "local"},
        ],
    }


def count(src: Path | None, scenario: str, n: int, tmp: Path, routing: bool = False, records: bool = True) -> float:
    """Instructions per request of ``scenario`` for the code in ``src`` (None: this tree); with
    ``routing``, under :func:`routing_config`; without ``records``, with the request log off
    (``records.enabled: false``, for a tree that has one)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "MODELGATE_MASTER_KEY": g.MASTER}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    fake_port, gw_port = free_port(), free_port()
    data = tmp / f"data-{scenario}-{'baseline' if src is not None else 'this'}{'-routing' if routing else ''}"
    data = data.with_name(data.name + ("" if records else "-norecords"))
    scenario, settings = VARIANTS.get(scenario, (scenario, {}))
    config_source = ((src or ROOT / "src") / "modelgate" / "config.py").read_text()
    settings = {name: value for name, value in settings.items() if name in config_source}
    virtual_key = g.make_virtual_key(data) if scenario.endswith("-vkey") else None
    fake_cmd = [sys.executable, "-m", "modelgate.testing.fake_upstream", "--port", str(fake_port)]
    fake = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, *fake_cmd, "--require-key", g.UPSTREAM_KEY],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    config = {
        "server": {"data_dir": str(data)},
        "providers": [
            {
                "name": "anth",
                "type": "anthropic",
                "base_url": f"http://127.0.0.1:{fake_port}",
                "api_keys": [g.UPSTREAM_KEY],
                **settings,
            }
        ],
        "models": [{"name": g.MODEL, "provider": "anth"}],
        **(routing_config(fake_port, settings) if routing else {}),
        # Background work (the key cache's poll, the ledger's timed flush) costs per second, not
        # per request, and a gateway under callgrind serves a few requests a second: it would
        # swamp the count. The ledger is written every 100 rows instead, as a loaded gateway does.
    }
    if ((src or ROOT / "src") / "modelgate" / "policy" / "tenancy.py").exists():
        config["tenancy"] = {"key_refresh_seconds": 3600, "ledger_flush_seconds": 3600, "ledger_batch": 100}
    if not records and "class RecordsConfig" in config_source:
        config["records"] = {"enabled": False}
    (tmp / "modelgate.yaml").write_text(yaml.safe_dump(config))
    out = tmp / f"callgrind.{scenario}.out"
    serve = ["-m", "modelgate", "serve", "--config", str(tmp / "modelgate.yaml"), "--port", str(gw_port)]
    gateway = subprocess.Popen(
        [
            *("taskset", "-c", SUT_CPU, "valgrind", "--tool=callgrind", "--instr-atstart=no"),
            f"--callgrind-out-file={out}",
            sys.executable,
            *serve,
            *("--log-level", "warning"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(fake_port, fake)
        wait_port(gw_port, gateway, timeout=300)
        load = g.scenarios(virtual_key)[scenario][1]
        with httpx.Client(base_url=f"http://127.0.0.1:{gw_port}", timeout=120) as client:
            for i in range(n + 20):  # 20 to warm up, uncounted
                if i == 20:
                    subprocess.run(["callgrind_control", "-i", "on", str(gateway.pid)], check=True, capture_output=True)
                r = client.post(load.path, content=load.body, headers=load.headers)
                r.raise_for_status()
            subprocess.run(["callgrind_control", "-i", "off", str(gateway.pid)], check=True, capture_output=True)
    finally:
        gateway.send_signal(signal.SIGINT)
        gateway.wait(120)
        fake.terminate()
        fake.wait()
    total = 0
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            total = max(total, int(line.split()[1]))
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="counted requests per scenario")
    parser.add_argument("--only", default="", help="run scenarios whose name contains this")
    parser.add_argument("--against", help="a git revision to measure beside this tree")
    parser.add_argument("--routing", action="store_true", help="also count each scenario with routing on")
    parser.add_argument("--records", action="store_true", help="also count each scenario with the request log off")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mg-instr-") as tmp_name:
        tmp = Path(tmp_name)
        baseline: Path | None = None
        if args.against:
            baseline = tmp / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(baseline), args.against],
                           check=True, capture_output=True)  # fmt: skip
        try:
            head = f"{'scenario':20} | {'this tree':>12}"
            print(head + (f" | {args.against[:12]:>12} | {'ratio':>6}" if baseline else ""), flush=True)
            counted: dict[str, float] = {}
            for name in [*g.scenarios("sk-mg-"), *VARIANTS]:
                if args.only not in name:
                    continue
                counted[name] = now = count(None, name, args.requests, tmp)
                row = f"{name:20} | {now / 1e6:10.3f} M"
                if baseline is not None and not name.endswith("-vkey"):  # a virtual key: this tree only
                    before = count(baseline / "src", name, args.requests, tmp)
                    row += f" | {before / 1e6:10.3f} M | {now / before:6.3f}"
                print(row, flush=True)
                if args.routing and not name.endswith("-vkey"):
                    counted[f"{name}-routing"] = routed = count(None, name, args.requests, tmp, routing=True)
                    row = f"{name + '-routing':20} | {routed / 1e6:10.3f} M"
                    if baseline is not None:
                        before = count(baseline / "src", name, args.requests, tmp, routing=True)
                        row += f" | {before / 1e6:10.3f} M | {routed / before:6.3f}"
                    print(row, flush=True)
                if args.records:
                    counted[f"{name}-norecords"] = off = count(None, name, args.requests, tmp, records=False)
                    print(f"{name + '-norecords':20} | {off / 1e6:10.3f} M", flush=True)
            for name, now in counted.items():
                master = counted.get(name.removesuffix("-vkey"))
                if name.endswith("-vkey") and master:
                    print(f"{name} / {name.removesuffix('-vkey')}: {now / master:6.3f}", flush=True)
                plain = counted.get(name.removesuffix("-routing"))
                if name.endswith("-routing") and plain:
                    print(f"{name} / {name.removesuffix('-routing')}: {now / plain:6.3f}", flush=True)
                off = counted.get(f"{name}-norecords")
                if off:
                    print(f"{name} (request log on) / {name}-norecords: {now / off:6.3f}", flush=True)
        finally:
            if baseline is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False)


if __name__ == "__main__":
    main()
