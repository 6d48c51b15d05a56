"""Start a real gateway process for a test, a benchmark or an end-to-end run.

The gateway runs as ``python -m modelgate serve`` in a subprocess, exactly as a
user starts it, with a config written to a temporary file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from modelgate.testing.runner import stop_process, wait_until_listening


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int, master_key: str, log: Path) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.master_key = master_key
        self.log = log

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def run_gateway(
    config: dict[str, Any],
    *,
    master_key: str = "mg-test-master-key",
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_level: str = "info",
) -> Iterator[GatewayProcess]:
    """Run ``modelgate serve`` with ``config`` (a dict written as YAML) until the block ends;
    its log (one line per request at ``info``) is in ``gateway.log``."""
    port = port or free_port(host)
    with tempfile.TemporaryDirectory(prefix="modelgate-") as tmp:
        config = {**config, "server": {"data_dir": str(Path(tmp) / "data"), **config.get("server", {})}}
        path = Path(tmp) / "modelgate.yaml"
        path.write_text(yaml.safe_dump(config))
        log = Path(tmp) / "gateway.log"
        cmd = [sys.executable, "-m", "modelgate", "serve", "--config", str(path)]
        cmd += ["--host", host, "--port", str(port), "--workers", str(workers), "--log-level", log_level]
        child_env = {**os.environ, "MODELGATE_MASTER_KEY": master_key, **(env or {})}
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env)
        gateway = GatewayProcess(proc, host, port, master_key, log)
        try:
            try:
                wait_until_listening(host, port, timeout=20)
            except TimeoutError:
                raise RuntimeError(f"gateway did not start:\n{gateway.output()}") from None
            yield gateway
        finally:
            stop_process(proc, timeout=10)
