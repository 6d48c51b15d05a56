"""What the benchmarks share: pinned processes, wrk runs with a POST body, CPU accounting.

Layout on a 2-core machine: the system under test on CPU 0, the load generator
(wrk, one thread) and the upstream on CPU 1, so the figures measure the proxy
and not the rig. wrk is installed with apt-get when missing (root only).
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

SUT_CPU, LOAD_CPU = "0", "1"

LUA = """wrk.method = "POST"
wrk.path = "%(path)s"
wrk.body = [==[%(body)s]==]
%(headers)s
done = function(s, lat, req)
  io.write(string.format('WRKJSON {"requests":%%d,"duration_us":%%d,"p50":%%d,"p99":%%d,' ..
    '"errors":%%d,"status_errors":%%d}\\n', s.requests, s.duration, lat:percentile(50), lat:percentile(99),
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, s.errors.status))
end
"""


@dataclass(slots=True)
class Load:
    """One wrk load: a POST of ``body`` to ``path`` with ``headers``."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_req: float | None = None


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    print("wrk not found: installing it with apt-get (Debian package 'wrk') ...", flush=True)
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is missing and could not be installed: run `sudo apt-get install -y wrk` and retry.")
    return wrk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], cpu: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        ["taskset", "-c", cpu, *cmd], stdout=out, stderr=out, env={**os.environ, **(env or {})}, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_wrk(wrk: str, port: int, load: Load, conns: int, seconds: int, watch_pid: int | None = None) -> Result:
    headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers.items())
    lua = LUA % {"path": load.path, "body": load.body.decode(), "headers": headers}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        cmd = ["taskset", "-c", LOAD_CPU, wrk, "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s"]
        cmd += ["-s", f.name, f"http://127.0.0.1:{port}{load.path}"]
        cpu0 = cpu_seconds(watch_pid) if watch_pid else 0.0
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        cpu1 = cpu_seconds(watch_pid) if watch_pid else 0.0
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[8:])
    rps = r["requests"] / (r["duration_us"] / 1e6)
    cpu = (cpu1 - cpu0) * 1000 / r["requests"] if watch_pid and r["requests"] else None
    return Result(rps, r["p50"] / 1000, r["p99"] / 1000, r["errors"] + r["status_errors"], cpu)
