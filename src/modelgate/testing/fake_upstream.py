"""The fake upstream: one ASGI app on one port that speaks Anthropic and OpenAI.

Run it::

    python -m modelgate.testing.fake_upstream --port 8790 [--host 127.0.0.1] [--require-key K] [--quirks no_usage]

Base URLs: Anthropic ``http://127.0.0.1:P``, OpenAI ``http://127.0.0.1:P/v1``.

Routes:

* ``POST /v1/messages``, ``POST /v1/messages/count_tokens`` (Anthropic, see ``fake_anthropic``);
* ``POST /v1/chat/completions`` (OpenAI, see ``fake_openai``);
* ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent``, ``:countTokens``
  and ``GET /v1beta/models[/{id}]`` (Gemini, see ``fake_gemini``);
* ``POST /v1/responses``, ``POST /v1/responses/compact`` (OpenAI, see ``fake_responses``);
* ``GET /v1/models`` and ``GET /v1/models/{id}``: Anthropic's shape when the
  request carries ``anthropic-version`` or ``x-api-key``, else OpenAI's;
* ``HEAD``/``GET`` ``/`` and ``/api/hello``: 200 (Claude Code probes them at start-up);
* control API (never recorded, no auth):
  ``POST /_fake/script`` (a script object or a list of them; see ``script``),
  ``GET /_fake/script`` (pending scripts), ``POST /_fake/reset`` (clears scripts and
  recordings, restores the start-up config), ``GET /_fake/requests`` (recorded
  requests: seq, method, path, query, headers, body (parsed JSON or null),
  raw_body (the exact bytes as text), protocol, status, broken, disconnected; the last 10,000),
  ``DELETE /_fake/requests``,
  ``GET|POST /_fake/config`` (require_key, quirks, verify_signatures, coalesce_stream, max_body_bytes),
  ``GET /_fake/health``.

Anything else answers 404 in the caller's protocol. Without ``require_key`` any
non-empty key is accepted. The fake only binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from modelgate.testing import fake_anthropic, fake_gemini, fake_openai, fake_responses
from modelgate.testing.http import (
    JSON,
    BodyTooLarge,
    BreakConnection,
    Incoming,
    Receive,
    Send,
    headers_dict,
    make_headers,
    read_body,
    send_body,
)
from modelgate.testing.script import QUIRKS, Script, ScriptError, ScriptQueue

ANNOUNCE = "modelgate fake upstream listening on"
DEFAULT_PORT = 8790

#: (id, display_name, created_at), newest first as Anthropic lists them.
ANTHROPIC_MODELS: tuple[tuple[str, str, str], ...] = (
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-01T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-14T00:00:00Z"),
)
#: (id, created, owned_by)
OPENAI_MODELS: tuple[tuple[str, int, str], ...] = (
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("o3-mini", 1737146383, "system"),
    ("gpt-5", 1754425777, "system"),
)

_CONTROL_BODY_LIMIT = 64 * 1024 * 1024
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(slots=True)
class FakeConfig:
    require_key: str | None = None
    quirks: frozenset[str] = frozenset()
    verify_signatures: bool = True
    #: Send each stream in one write (see ``http.send_stream``); default: one write per event.
    coalesce_stream: bool = False
    max_body_bytes: int = 32 * 1024 * 1024
    max_records: int = 10_000
    anthropic_models: tuple[tuple[str, str, str], ...] = ANTHROPIC_MODELS
    openai_models: tuple[tuple[str, int, str], ...] = OPENAI_MODELS


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


@dataclass(slots=True)
class Record:
    """One recorded request, kept raw; rendered as JSON only when asked for."""

    seq: int
    method: str
    path: str
    query: str
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    protocol: str | None = None
    status: int = 0
    broken: bool = False
    disconnected: bool = False

    def to_json(self) -> dict[str, Any]:
        try:
            parsed = orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            parsed = None
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers_dict(self.raw_headers),
            "body": parsed,
            "raw_body": self.body.decode("utf-8", errors="replace"),
            "protocol": self.protocol,
            "status": self.status,
            "broken": self.broken,
            "disconnected": self.disconnected,
        }


@dataclass(slots=True)
class FakeState:
    """Everything the fake remembers; owned by one app, so tests can run several side by side."""

    config: FakeConfig
    initial: FakeConfig
    queue: ScriptQueue = field(default_factory=ScriptQueue)
    records: deque[Record] = field(default_factory=deque)
    counter: int = 0
    seq: int = 0

    def ident(self, prefix: str, width: int = 22) -> str:
        """A deterministic, unique, real-looking id (``msg_01…``, ``toolu_01…``, ``req_…``)."""
        self.counter += 1
        n, digits = self.counter, []
        while n:
            n, r = divmod(n, 62)
            digits.append(_B62[r])
        return prefix + "".join(reversed(digits)).rjust(width, "0")

    def record(self, inc: Incoming, protocol: str | None) -> Record:
        self.seq += 1
        rec = Record(self.seq, inc.method, inc.path, inc.query, inc.raw_headers, inc.body, protocol)
        if self.config.max_records:
            if len(self.records) >= self.config.max_records:
                self.records.popleft()
            self.records.append(rec)
        return rec

    def reset(self) -> None:
        self.queue.clear()
        self.records.clear()
        self.counter = self.seq = 0
        self.config = replace(self.initial)


def is_anthropic(inc: Incoming) -> bool:
    h = inc.headers
    return inc.path.startswith("/v1/messages") or "anthropic-version" in h or "x-api-key" in h


class FakeUpstreamApp:
    """The ASGI application. ``app.state`` is the :class:`FakeState`, for in-process tests."""

    def __init__(self, config: FakeConfig | None = None) -> None:
        config = config or FakeConfig()
        self.state = FakeState(config=replace(config), initial=config)

    # The same control API as ``runner.FakeUpstream``, for in-process use (httpx.ASGITransport).

    def script(self, *scripts: dict[str, Any], **fields: Any) -> int:
        items = [*scripts, fields] if fields else list(scripts)
        parsed = [Script.from_json(item) for item in items]
        for script, item in zip(parsed, items, strict=True):
            self.state.queue.push(script, item)
        return len(self.state.queue)

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.state.records if path is None or r.path == path]

    def reset(self) -> None:
        self.state.reset()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        state = self.state
        path: str = scope["path"]
        raw_headers = scope["headers"]
        control = path.startswith("/_fake/")
        too_large = False
        try:
            body = await read_body(receive, _CONTROL_BODY_LIMIT if control else state.config.max_body_bytes)
        except BodyTooLarge:
            body, too_large = b"", True
        inc = Incoming(
            scope["method"], path, scope["query_string"].decode("latin-1"), headers_dict(raw_headers), raw_headers, body
        )
        if control:
            await self._control(inc, send)
            return
        protocol = "gemini" if fake_gemini.is_gemini(inc) else "anthropic" if is_anthropic(inc) else "openai"
        rec = state.record(inc, protocol)
        # Answer while watching the connection, so that a client (the gateway) that goes
        # away is noticed at once and recorded: tests use it to prove cancellation.
        answer = asyncio.ensure_future(self._route(inc, send, too_large))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        await asyncio.wait((answer, watcher), return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            rec.disconnected = True
            with contextlib.suppress(BaseException):
                await answer
            return
        watcher.cancel()
        try:
            rec.status = answer.result()
        except BreakConnection:
            rec.status, rec.broken = 200, True
            raise

    async def _route(self, inc: Incoming, send: Send, too_large: bool) -> int:
        state, method, path = self.state, inc.method, inc.path
        if fake_gemini.is_gemini(inc):
            return await fake_gemini.route(state, inc, send, too_large)
        anthropic = is_anthropic(inc)
        if too_large:
            if anthropic:
                return await fake_anthropic.send_error(
                    send, 413, fake_anthropic.ERROR_MESSAGES["request_too_large"], state.ident("req_011C")
                )
            return await fake_openai.send_error(send, 413, "Request too large.", state.ident("req_"))
        if method == "POST":
            if path == "/v1/messages":
                return await fake_anthropic.messages(state, inc, send)
            if path == "/v1/chat/completions":
                return await fake_openai.chat_completions(state, inc, send)
            if path == "/v1/responses":
                return await fake_responses.responses(state, inc, send)
            if path == "/v1/responses/compact":
                return await fake_responses.compact(state, inc, send)
            if path == "/v1/messages/count_tokens":
                return await fake_anthropic.count_tokens(state, inc, send)
        elif method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            model_id = (path[len("/v1/models/") :] or None) if path != "/v1/models" else None
            if anthropic:
                return await fake_anthropic.models(state, inc, send, model_id)
            return await fake_openai.models(state, inc, send, model_id)
        if method in ("GET", "HEAD") and path in ("/", "/api/hello"):
            await send_body(send, 200, b"" if method == "HEAD" else b"ok", make_headers(b"text/plain", None))
            return 200
        if anthropic:
            return await fake_anthropic.send_error(send, 404, "Not Found", state.ident("req_011C"))
        return await fake_openai.send_error(send, 404, f"Invalid URL ({method} {path})", state.ident("req_"))

    async def _control(self, inc: Incoming, send: Send) -> None:
        state, method, what = self.state, inc.method, inc.path[len("/_fake/") :]
        payload: dict[str, Any]
        status, payload = 200, {"ok": True}
        try:
            if what == "script" and method == "POST":
                raw = orjson.loads(inc.body)
                items = raw if isinstance(raw, list) else [raw]
                payload = {"queued": len(items), "pending": self.script(*items)}  # all or nothing
            elif what == "script" and method == "GET":
                payload = {"pending": state.queue.pending()}
            elif what == "reset" and method == "POST":
                state.reset()
            elif what == "requests" and method == "GET":
                payload = {"requests": [r.to_json() for r in state.records]}
            elif what == "requests" and method == "DELETE":
                state.records.clear()
            elif what == "config" and method in ("GET", "POST"):
                if method == "POST":
                    state.config = _configure(state.config, orjson.loads(inc.body))
                payload = _config_json(state.config)
            elif what == "health" and method in ("GET", "HEAD"):
                pass
            else:
                status, payload = 404, {"error": f"no control endpoint {method} {inc.path}"}
        except (ScriptError, orjson.JSONDecodeError, ValueError, TypeError) as exc:
            status, payload = 400, {"error": str(exc)}
        await send_body(send, status, orjson.dumps(payload), make_headers(JSON, None))


def _configure(config: FakeConfig, raw: Any) -> FakeConfig:
    if not isinstance(raw, dict):
        raise ValueError("config must be a JSON object")
    known = {"require_key", "quirks", "verify_signatures", "coalesce_stream", "max_body_bytes"}
    if set(raw) - known:
        raise ValueError(f"unknown config fields {sorted(set(raw) - known)}; known: {sorted(known)}")
    changes: dict[str, Any] = {}
    if "require_key" in raw:
        if raw["require_key"] is not None and not isinstance(raw["require_key"], str):
            raise ValueError("require_key: must be a string or null")
        changes["require_key"] = raw["require_key"] or None
    if "quirks" in raw:
        changes["quirks"] = parse_quirks(raw["quirks"])
    for flag in ("verify_signatures", "coalesce_stream"):
        if flag in raw:
            changes[flag] = bool(raw[flag])
    if "max_body_bytes" in raw:
        changes["max_body_bytes"] = int(raw["max_body_bytes"])
    return replace(config, **changes)


def _config_json(config: FakeConfig) -> dict[str, Any]:
    return {
        "require_key": config.require_key,
        "quirks": sorted(config.quirks),
        "verify_signatures": config.verify_signatures,
        "coalesce_stream": config.coalesce_stream,
        "max_body_bytes": config.max_body_bytes,
    }


def parse_quirks(quirks: Any) -> frozenset[str]:
    if isinstance(quirks, str):
        quirks = [q.strip() for q in quirks.split(",") if q.strip()]
    if not isinstance(quirks, (list, tuple, set, frozenset)):
        raise ValueError("quirks: must be a list of names")
    bad = sorted(set(quirks) - QUIRKS)
    if bad:
        raise ValueError(f"quirks: unknown {bad}; known: {sorted(QUIRKS)}")
    return frozenset(quirks)


def create_app(
    require_key: str | None = None,
    quirks: Any = (),
    *,
    coalesce_stream: bool = False,
    config: FakeConfig | None = None,
) -> FakeUpstreamApp:
    """A fresh fake upstream ASGI app (for ``httpx.ASGITransport`` or any ASGI server)."""
    if config is None:
        config = FakeConfig(
            require_key=require_key or None, quirks=parse_quirks(quirks), coalesce_stream=coalesce_stream
        )
    return FakeUpstreamApp(config)


# --------------------------------------------------------------------------- serving


class _DropBreaks(logging.Filter):
    """Hide the traceback uvicorn logs when a ``break`` script drops a connection on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], BreakConnection))


def quiet_breaks() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropBreaks) for f in logger.filters):
        logger.addFilter(_DropBreaks())


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen before the server starts, so a caller learns the port of ``port=0`` at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_server(app: FakeUpstreamApp, log_level: str = "warning") -> Any:
    import uvicorn  # imported here: the app itself needs no server

    config = uvicorn.Config(
        app,
        loop="auto",  # uvloop when installed
        http="auto",  # httptools when installed
        lifespan="off",
        access_log=False,
        log_level=log_level,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    quiet_breaks()
    return server


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    require_key: str | None = None,
    *,
    quirks: Any = (),
    coalesce_stream: bool = False,
    announce: bool = False,
    exit_with_parent: bool = False,
) -> None:
    """Run the fake upstream until interrupted (uvicorn, uvloop, no access log).

    ``announce`` prints ``modelgate fake upstream listening on http://HOST:PORT`` once the
    socket listens (how ``run_fake_upstream`` learns the port); ``exit_with_parent`` stops
    the server when stdin closes, so a crashed test run leaves no orphan behind.
    """
    app = create_app(require_key, quirks, coalesce_stream=coalesce_stream)
    sock = bind(host, port)
    server = build_server(app)
    if announce:
        print(f"{ANNOUNCE} {url_for(host, sock.getsockname()[1])}", flush=True)
    if exit_with_parent:

        def watch() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            server.should_exit = True

        threading.Thread(target=watch, name="fake-upstream-parent-watch", daemon=True).start()
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m modelgate.testing.fake_upstream", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--require-key", default=None, help="accept only this API key (default: any non-empty key)")
    parser.add_argument("--quirks", default="", help=f"comma-separated, from: {', '.join(sorted(QUIRKS))}")
    parser.add_argument("--coalesce-stream", action="store_true", help="send each stream in one write (benchmarks)")
    parser.add_argument("--announce", action="store_true", help="print the URL once listening")
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when stdin is closed")
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        args.require_key,
        quirks=args.quirks,
        coalesce_stream=args.coalesce_stream,
        announce=args.announce,
        exit_with_parent=args.exit_with_parent,
    )


if __name__ == "__main__":
    main()
