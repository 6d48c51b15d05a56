"""Start a fake upstream for a test or a benchmark, and talk to its control API.

A subprocess by default, so that a benchmark's client and the fake do not share
a CPU and an event loop; ``in_thread=True`` runs it in a background thread of
the current process instead (faster to start, easier to debug).
"""

from __future__ import annotations

import http.client
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import orjson

from modelgate.testing.script import Script


def wait_until_listening(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until a TCP connect to ``host:port`` succeeds (for any server a test starts)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.02)


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate ``proc`` (any server a test started), killing it if it outlives ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class FakeUpstream:
    """A running fake upstream plus a small client for its ``/_fake`` control API.

    Use :func:`run_fake_upstream` (a context manager) or ``start()``/``stop()``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_key: str | None = None,
        quirks: Any = (),
        coalesce_stream: bool = False,
        in_thread: bool = False,
        startup_timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.require_key = require_key
        self.quirks = quirks if isinstance(quirks, str) else ",".join(quirks)
        self.coalesce_stream = coalesce_stream
        self.in_thread = in_thread
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeUpstream:
        if self.in_thread:
            self._start_thread()
        else:
            self._start_process()
        wait_until_listening(self.host, self.port, self.startup_timeout)
        return self

    def _start_process(self) -> None:
        cmd = [sys.executable, "-m", "modelgate.testing.fake_upstream", "--host", self.host, "--port", str(self.port)]
        cmd += ["--announce", "--exit-with-parent"]
        if self.require_key:
            cmd += ["--require-key", self.require_key]
        if self.quirks:
            cmd += ["--quirks", self.quirks]
        if self.coalesce_stream:
            cmd.append("--coalesce-stream")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self.startup_timeout).decode()
        except queue.Empty:
            self.stop()
            raise TimeoutError("the fake upstream did not start in time") from None
        from modelgate.testing.fake_upstream import ANNOUNCE

        if not line.startswith(ANNOUNCE):
            code = self._proc.poll()
            self.stop()
            raise RuntimeError(f"the fake upstream failed to start (exit code {code}): {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def _start_thread(self) -> None:
        from modelgate.testing.fake_upstream import bind, build_server, create_app

        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = build_server(create_app(self.require_key, self.quirks, coalesce_stream=self.coalesce_stream))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-upstream", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake upstream thread did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                stop_process(proc, timeout=5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:P``: the Anthropic base URL (SDKs add ``/v1/messages``)."""
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:P/v1``: the OpenAI base URL (SDKs add ``/chat/completions``)."""
        return self.base_url + "/v1"

    # ------------------------------------------------------------------ control API

    def script(self, *scripts: Script | dict[str, Any], **fields: Any) -> int:
        """Queue scripts (dicts or keyword fields, see ``modelgate.testing.script``); returns the queue length."""
        items = [dict(s) if isinstance(s, dict) else _script_json(s) for s in scripts]
        if fields:
            items.append(fields)
        for item in items:
            Script.from_json(item)  # fail here, in the test, rather than in the server
        queued: int = self._call("POST", "/_fake/script", items)["pending"]
        return queued

    def pending(self) -> list[dict[str, Any]]:
        pending: list[dict[str, Any]] = self._call("GET", "/_fake/script")["pending"]
        return pending

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first; ``path`` keeps those whose path equals it."""
        records = self._call("GET", "/_fake/requests")["requests"]
        return [r for r in records if path is None or r["path"] == path]

    def last_request(self, path: str | None = None) -> dict[str, Any]:
        records = self.requests(path)
        if not records:
            raise LookupError(f"no request recorded{' for ' + path if path else ''}")
        return records[-1]

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change require_key, quirks, verify_signatures, coalesce_stream or max_body_bytes until the next reset."""
        config: dict[str, Any] = self._call("POST", "/_fake/config", options)
        return config

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            body = orjson.dumps(payload) if payload is not None else None
            headers = {"content-type": "application/json"} if body is not None else {}
            conn.request(method, quote(path), body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        result = orjson.loads(data) if data else None
        if resp.status >= 400:
            raise RuntimeError(f"fake upstream {method} {path} → {resp.status}: {data.decode(errors='replace')}")
        return result


def _script_json(s: Script) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("text", "words", "thinking", "break_after", "stop_reason"):
        if getattr(s, name) is not None:
            out[name] = getattr(s, name)
    for name in ("delay", "stall"):
        if getattr(s, name):
            out[name] = getattr(s, name)
    if s.tool_calls:
        out["tool_calls"] = [{"name": c.name, "input": c.input, **({"id": c.id} if c.id else {})} for c in s.tool_calls]
    if s.error is not None:
        e = s.error
        out["error"] = {
            k: v
            for k, v in (
                ("status", e.status),
                ("type", e.type),
                ("message", e.message),
                ("retry_after", e.retry_after),
                ("after", e.after),
                ("body", e.body),
            )
            if v is not None
        }
    for name in ("usage", "headers", "match"):
        if getattr(s, name):
            out[name] = dict(getattr(s, name))
    if s.quirks:
        out["quirks"] = sorted(s.quirks)
    if s.times != 1:
        out["times"] = s.times
    return out


@contextmanager
def run_fake_upstream(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    require_key: str | None = None,
    quirks: Any = (),
    coalesce_stream: bool = False,
    in_thread: bool = False,
) -> Iterator[FakeUpstream]:
    """Start a fake upstream (a subprocess unless ``in_thread``) for the ``with`` block."""
    fake = FakeUpstream(
        host=host,
        port=port,
        require_key=require_key,
        quirks=quirks,
        coalesce_stream=coalesce_stream,
        in_thread=in_thread,
    )
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
